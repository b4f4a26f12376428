using HdrHistogram;

namespace Snapshots.Store.Chunks;

/// <summary>What one tier did for a reader: hits, misses, bytes, corrupt entries dropped, errors, deadlines
/// missed, reads skipped (tier busy), failed fill-backs, and the latency of its hits (HdrHistogram, in
/// microseconds, 1 us .. 60 s at 3 significant digits).</summary>
public sealed class TierCounters(string tier)
{
    private long _hits, _misses, _bytes, _corrupt, _errors, _timeouts, _skipped, _fillErrors;
    private readonly LongConcurrentHistogram _latency = new(1, 60_000_000, 3);

    public string Tier { get; } = tier;
    public long Hits => Interlocked.Read(ref _hits);
    public long Misses => Interlocked.Read(ref _misses);
    public long Bytes => Interlocked.Read(ref _bytes);
    public long Corrupt => Interlocked.Read(ref _corrupt) + (ExternalCorrupt?.Invoke() ?? 0);
    public long Errors => Interlocked.Read(ref _errors);
    public long Timeouts => Interlocked.Read(ref _timeouts);
    public long Skipped => Interlocked.Read(ref _skipped);
    public long FillErrors => Interlocked.Read(ref _fillErrors);

    /// <summary>Corrupt entries a tier that verifies its own reads dropped (it reports them as misses).</summary>
    public Func<long>? ExternalCorrupt { get; set; }

    public void Hit(int bytes) { Interlocked.Increment(ref _hits); Interlocked.Add(ref _bytes, bytes); }

    public void Hit(int bytes, long startTimestamp)
    {
        Hit(bytes);
        long us = (long)System.Diagnostics.Stopwatch.GetElapsedTime(startTimestamp).TotalMicroseconds;
        _latency.RecordValue(Math.Clamp(us, 1, 60_000_000));
    }

    public void Miss() => Interlocked.Increment(ref _misses);
    public void CorruptEntry() => Interlocked.Increment(ref _corrupt);
    public void Error() => Interlocked.Increment(ref _errors);
    public void Timeout() => Interlocked.Increment(ref _timeouts);
    public void Skip() => Interlocked.Increment(ref _skipped);
    public void FillError() => Interlocked.Increment(ref _fillErrors);

    /// <summary>Hit latency at a percentile (0-100), in microseconds; 0 before the first hit.</summary>
    public long LatencyUs(double percentile) =>
        _latency.TotalCount == 0 ? 0 : _latency.GetValueAtPercentile(percentile);

    /// <summary>The counters now. Safe while reads record: the percentiles come from a copy of the histogram (a
    /// percentile walk over one being recorded into throws), so a daemon's scrape never fails a restore's.</summary>
    public TierStats Snapshot()
    {
        var latency = _latency.Copy();
        long Us(double p) => latency.TotalCount == 0 ? 0 : latency.GetValueAtPercentile(p);
        return new(Tier, Hits, Misses, Bytes, Corrupt, Errors, Timeouts, Skipped, FillErrors,
            Us(50), Us(99), Us(99.9), latency.TotalCount == 0 ? 0 : latency.GetMaxValue());
    }
}

/// <summary>A tier's counters at one moment, for --json and the benchmarks.</summary>
public sealed record TierStats(
    string Tier, long Hits, long Misses, long Bytes, long Corrupt, long Errors, long Timeouts, long Skipped,
    long FillErrors, long P50Us, long P99Us, long P999Us, long MaxUs);
