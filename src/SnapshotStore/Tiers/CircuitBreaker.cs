using System.Diagnostics;

namespace Snapshots.Store.Tiers;

/// <summary>
/// Keeps a reader away from a node that just failed or missed its deadline: after
/// <see cref="FailureThreshold"/> consecutive failures it opens for <see cref="Cooldown"/>; then exactly one
/// request may probe (half-open); its success closes the breaker, its failure opens it again. So a dead or
/// stalled node costs one deadline per cooldown, not one per read, and is never hammered with retries.
/// </summary>
public sealed class CircuitBreaker(int failureThreshold, TimeSpan cooldown)
{
    private readonly Lock _lock = new();
    private int _failures;
    private long _openUntil; // Stopwatch timestamp; 0 = closed
    private bool _probing;
    private long _opened;

    public int FailureThreshold { get; } = failureThreshold;
    public TimeSpan Cooldown { get; } = cooldown;
    public long TimesOpened => Interlocked.Read(ref _opened);
    public bool IsOpen { get { lock (_lock) return _openUntil != 0; } }

    /// <summary>True when a request may go to the node now (closed, or this caller is the half-open probe).</summary>
    public bool TryEnter()
    {
        lock (_lock)
        {
            if (_openUntil == 0) return true;
            if (_probing || Stopwatch.GetTimestamp() < _openUntil) return false;
            _probing = true;
            return true;
        }
    }

    public void Success()
    {
        lock (_lock) { _failures = 0; _openUntil = 0; _probing = false; }
    }

    public void Failure()
    {
        lock (_lock)
        {
            bool probeFailed = _probing;
            _probing = false;
            if (++_failures < FailureThreshold && _openUntil == 0) return;
            if (_openUntil == 0 || probeFailed) Interlocked.Increment(ref _opened);
            _openUntil = Stopwatch.GetTimestamp() + (long)(Cooldown.TotalSeconds * Stopwatch.Frequency);
        }
    }
}
