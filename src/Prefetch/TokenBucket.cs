using System.Diagnostics;

namespace Snapshots.Prefetch;

/// <summary>
/// Caps prefetch bandwidth so it cannot crowd out demand fetches or other VMs on the host. One bucket may be shared
/// by every restore's prefetcher (<see cref="PrefetchOptions.Bucket"/>): takes are granted strictly in arrival
/// order, so a prefetcher that waits is never passed by another's later takes, and prefetchers of equal
/// concurrency get equal shares. Thread-safe; a take that is cancelled leaves the queue.
/// </summary>
public sealed class TokenBucket
{
    private readonly Lock _lock = new();
    private readonly long _bytesPerSecond, _burstBytes;
    private readonly LinkedList<Waiter> _queue = new();
    private double _tokens;
    private long _last = Stopwatch.GetTimestamp();
    private bool _pumping;

    /// <param name="bytesPerSecond">The sustained rate, bytes per second (more than 0).</param>
    /// <param name="burstBytes">Tokens that may accumulate while idle, bytes (more than 0); the bucket starts
    /// full.</param>
    public TokenBucket(long bytesPerSecond, long burstBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytesPerSecond);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(burstBytes);
        _bytesPerSecond = bytesPerSecond;
        _burstBytes = burstBytes;
        _tokens = burstBytes;
    }

    public static TokenBucket? Unlimited => null;

    /// <summary>Takes waiting now.</summary>
    public int Waiting { get { lock (_lock) return _queue.Count; } }

    /// <summary>Completes once <paramref name="bytes"/> may be sent, after every take that arrived earlier. A take
    /// larger than the burst is granted when the bucket is full (and leaves it in debt).</summary>
    public async ValueTask TakeAsync(long bytes, CancellationToken ct)
    {
        Waiter waiter;
        lock (_lock)
        {
            RefillLocked();
            if (_queue.Count == 0 && TryTakeLocked(bytes)) return;
            waiter = new Waiter(bytes);
            waiter.Node = _queue.AddLast(waiter);
            if (!_pumping)
            {
                _pumping = true;
                _ = Task.Run(PumpAsync, CancellationToken.None);
            }
        }
        try
        {
            await waiter.Granted.Task.WaitAsync(ct);
        }
        catch (OperationCanceledException)
        {
            lock (_lock)
            {
                if (waiter.Node is { } node)
                {
                    _queue.Remove(node);
                    waiter.Node = null;
                    throw;
                }
                // Granted at the same moment: give the tokens back to those still waiting.
                _tokens = Math.Min(_burstBytes, _tokens + bytes);
            }
            throw;
        }
    }

    /// <summary>Grants queued takes in order as tokens accrue; ends when the queue is empty.</summary>
    private async Task PumpAsync()
    {
        while (true)
        {
            TimeSpan wait;
            lock (_lock)
            {
                RefillLocked();
                while (_queue.First is { } first && TryTakeLocked(first.Value.Bytes))
                {
                    _queue.RemoveFirst();
                    first.Value.Node = null;
                    first.Value.Granted.TrySetResult();
                }
                if (_queue.First is not { } head)
                {
                    _pumping = false;
                    return;
                }
                double missing = Math.Min(head.Value.Bytes, _burstBytes) - _tokens;
                wait = TimeSpan.FromSeconds(missing / _bytesPerSecond);
            }
            await Task.Delay(wait < TimeSpan.FromMilliseconds(1) ? TimeSpan.FromMilliseconds(1) : wait);
        }
    }

    private void RefillLocked()
    {
        long now = Stopwatch.GetTimestamp();
        double refill = Stopwatch.GetElapsedTime(_last, now).TotalSeconds * _bytesPerSecond;
        _tokens = Math.Min(_burstBytes, _tokens + refill);
        _last = now;
    }

    private bool TryTakeLocked(long bytes)
    {
        if (_tokens < bytes && _tokens < _burstBytes) return false;
        _tokens -= bytes;
        return true;
    }

    private sealed class Waiter(long bytes)
    {
        public readonly long Bytes = bytes;
        public readonly TaskCompletionSource Granted = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public LinkedListNode<Waiter>? Node;
    }
}
