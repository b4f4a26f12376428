namespace Snapshots.Store.Chunks;

/// <summary>What one tier did for an operation, as reported by every front end (JSON, metrics, benchmarks):
/// counts since the reader was made, the bytes it served, its share of all hits (0-1), and its hit latency in
/// seconds (docs/cli.md: one unit per quantity).</summary>
public sealed record TierSummary(string Tier, long Hits, double HitRatio, long Misses, long Bytes, long Corrupt,
    long Errors, long Timeouts, long Skipped, long FillErrors, Percentiles LatencySeconds)
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
                new Percentiles(Percentiles.FromMicroseconds(s.P50Us), Percentiles.FromMicroseconds(s.P99Us))
                {
                    P999 = Percentiles.FromMicroseconds(s.P999Us), Max = Percentiles.FromMicroseconds(s.MaxUs),
                });
        }
        return rows;
    }
}
