using Snapshots.Store.Chunks;

namespace Snapshots.Snapctl.Commands;

/// <summary>What each tier did for a command: for --json, and a few lines for people.</summary>
public static class TierReport
{
    public static List<object> Of(ChunkReader reader)
    {
        var rows = new List<object>();
        long total = 0;
        foreach (var c in reader.Counters) total += c.Hits;
        foreach (var c in reader.Counters)
        {
            var s = c.Snapshot();
            rows.Add(new
            {
                tier = s.Tier, hits = s.Hits, hitRatio = total == 0 ? 0 : s.Hits / (double)total, misses = s.Misses,
                bytes = s.Bytes, corrupt = s.Corrupt, errors = s.Errors, timeouts = s.Timeouts, skipped = s.Skipped,
                fillErrors = s.FillErrors,
                latencyUs = new { p50 = s.P50Us, p99 = s.P99Us, p999 = s.P999Us, max = s.MaxUs },
            });
        }
        return rows;
    }

    public static void Print(ChunkReader reader)
    {
        long total = 0;
        foreach (var c in reader.Counters) total += c.Hits;
        foreach (var c in reader.Counters)
        {
            var s = c.Snapshot();
            Console.WriteLine($"  {s.Tier}: {s.Hits} hits ({(total == 0 ? 0 : 100.0 * s.Hits / total):F1} %), " +
                $"{s.Misses} misses, {Output.Bytes(s.Bytes)}, {s.Corrupt} corrupt dropped, {s.Errors} errors, " +
                $"{s.Timeouts} timeouts; hit latency p50 {s.P50Us} us, p99 {s.P99Us} us, p99.9 {s.P999Us} us");
        }
        if (reader.SharedFetches > 0)
            Console.WriteLine($"  {reader.SharedFetches} reads shared another reader's fetch");
    }
}
