using System.Diagnostics;

namespace Snapshots.Prefetch;

/// <summary>Caps prefetch bandwidth so it cannot crowd out demand fetches or other VMs on the host.</summary>
public sealed class TokenBucket(long bytesPerSecond, long burstBytes)
{
    private readonly Lock _lock = new();
    private double _tokens = burstBytes;
    private long _last = Stopwatch.GetTimestamp();

    public static TokenBucket? Unlimited => null;

    public async ValueTask TakeAsync(long bytes, CancellationToken ct)
    {
        while (true)
        {
            TimeSpan wait;
            lock (_lock)
            {
                long now = Stopwatch.GetTimestamp();
                double refill = Stopwatch.GetElapsedTime(_last, now).TotalSeconds * bytesPerSecond;
                _tokens = Math.Min(burstBytes, _tokens + refill);
                _last = now;
                if (_tokens >= bytes || _tokens >= burstBytes) { _tokens -= bytes; return; }
                wait = TimeSpan.FromSeconds((bytes - _tokens) / bytesPerSecond);
            }
            await Task.Delay(wait < TimeSpan.FromMilliseconds(1) ? TimeSpan.FromMilliseconds(1) : wait, ct);
        }
    }
}
