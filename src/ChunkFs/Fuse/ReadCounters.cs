using System.Diagnostics;

namespace Snapshots.ChunkFs.Fuse;

/// <summary>A file's read figures, updated by every reader thread without locks.</summary>
internal sealed class ReadCounters
{
    public long Reads, Bytes, Misses, Errors, Opens, StoredPages, StoreFailures;
    private const int Timed = 4096;
    private readonly long[] _ticks = new long[Timed];
    private long _timed;

    public void Time(long startTimestamp)
    {
        long slot = (Interlocked.Increment(ref _timed) - 1) % Timed;
        _ticks[slot] = Stopwatch.GetTimestamp() - startTimestamp;
    }

    /// <summary>Service time of the last 4,096 reads, request read to reply written, in microseconds.</summary>
    public (double P50, double P99, double Max) Latency()
    {
        int n = (int)Math.Min(Interlocked.Read(ref _timed), Timed);
        if (n == 0) return (0, 0, 0);
        var sorted = _ticks.AsSpan(0, n).ToArray();
        Array.Sort(sorted);
        double Us(long t) => t * 1_000_000.0 / Stopwatch.Frequency;
        return (Us(sorted[n / 2]), Us(sorted[Math.Min(n - 1, (int)(n * 0.99))]), Us(sorted[n - 1]));
    }
}
