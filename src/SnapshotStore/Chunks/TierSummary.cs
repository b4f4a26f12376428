namespace Snapshots.Store.Chunks;

/// <summary>What one tier did for an operation, as reported by every front end (JSON, metrics, benchmarks):
/// counts since the reader was made, the tier's share of all hits (0-1), and hit latency in microseconds.</summary>
public sealed record TierSummary(string Tier, long Hits, double HitRatio, long Misses, long Bytes, long Corrupt,
    long Errors, long Timeouts, long Skipped, long FillErrors, TierLatency LatencyUs)
{
    /// <summary>One summary per tier of <paramref name="reader"/>, nearest first, the origin last.</summary>
    public static IReadOnlyList<TierSummary> Of(ChunkReader reader)
    {
        var counters = reader.Counters;
        long total = 0;
        foreach (var c in counters) total += c.Hits;
        var rows = new TierSummary[counters.Count];
        for (int i = 0; i < rows.Length; i++)
        {
            var s = counters[i].Snapshot();
            rows[i] = new TierSummary(s.Tier, s.Hits, total == 0 ? 0 : s.Hits / (double)total, s.Misses, s.Bytes,
                s.Corrupt, s.Errors, s.Timeouts, s.Skipped, s.FillErrors,
                new TierLatency(s.P50Us, s.P99Us, s.P999Us, s.MaxUs));
        }
        return rows;
    }
}

/// <summary>Hit latency percentiles of a tier, in microseconds (0 before the first hit).</summary>
public sealed record TierLatency(long P50, long P99, long P999, long Max);
