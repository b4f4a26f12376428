using System.Diagnostics;
using Snapshots.Store.Cache;
using Snapshots.Store.Chunks;
using Snapshots.Store.Tiers;

namespace Snapshots.TierBench;

/// <summary>A restore-shaped load: N chunks fetched with bounded concurrency through disk -> redis -> s3rver,
/// with a cold local cache and a warm Redis; total time and where the chunks came from.</summary>
public static class RestoreScenario
{
    public static async Task<string> RunAsync(Setup s, int chunks, int parallelism)
    {
        var names = new ChunkName[chunks];
        Console.Error.WriteLine($"filling {chunks} chunks into s3rver and redis (whole and striped)");
        var fill = new ChunkReader(Setup.Options(Setup.RedisTier, Setup.RedisTier), s.Origin, s.Whole, s.Striped);
        int next = -1;
        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            for (int i = Interlocked.Increment(ref next); i < chunks; i = Interlocked.Increment(ref next))
            {
                var bytes = BenchChunks.Bytes(2, i);
                names[i] = BenchChunks.NameOf(bytes);
                await s.Origin.PutIfAbsentAsync(names[i], bytes);
                await s.Whole.PutAsync(names[i], bytes);
                await s.Striped.PutAsync(names[i], bytes);
            }
        })));
        await s.Whole.FlushFillsAsync(TimeSpan.FromSeconds(30));
        await s.Striped.FlushFillsAsync(TimeSpan.FromSeconds(30));

        if (s.Whole.SkippedFills + s.Striped.SkippedFills + s.Whole.FailedFills + s.Striped.FailedFills > 0)
            throw new InvalidOperationException("the redis fill was incomplete: rerun on a quieter machine");
        var sb = new System.Text.StringBuilder();
        sb.AppendLine($"### Restore-shaped load: {chunks} chunks of 512 KiB, {parallelism} at a time, "
            + "cold local disk cache").AppendLine();
        sb.AppendLine("| tiers | total s | MiB/s | disk hits | redis hits | origin hits "
            + "| redis p50 / p99 / p99.9 ms | origin p50 / p99 ms |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---|---|");
        // Untimed warm-up of every path (JIT, thread pool, connections), then each configuration twice, alternating.
        var few = names[..Math.Min(100, names.Length)];
        foreach (var cache in new IChunkCache?[] { s.Striped, s.Whole, null })
            await Run(null, s, "", few, parallelism, cache);
        for (int round = 0; round < 2; round++)
        {
            await Run(sb, s, "disk -> redis whole -> s3rver", names, parallelism, s.Whole);
            await Run(sb, s, "disk -> redis striped 4-of-5 -> s3rver", names, parallelism, s.Striped);
        }
        await Run(sb, s, "disk -> s3rver (no distributed cache)", names, parallelism, null);

        // The same restore with one of the masters stalled (SIGSTOP) for the whole run.
        int stalledPort = s.Services.RedisBase + 1;
        Console.Error.WriteLine($"stalling redis node {stalledPort} (SIGSTOP)");
        s.Services.Signal(stalledPort, "STOP");
        try
        {
            await Run(sb, s, "**one master stalled:** disk -> redis whole -> s3rver", names, parallelism, s.Whole);
            await Run(
                sb, s, "**one master stalled:** disk -> redis striped 4-of-5 -> s3rver", names, parallelism, s.Striped);
        }
        finally { s.Services.Signal(stalledPort, "CONT"); }
        return sb.ToString();
    }

    private static async Task Run(
        System.Text.StringBuilder? sb, Setup s, string label, ChunkName[] names, int parallelism, IChunkCache? redis)
    {
        var dir = Path.Combine(s.DiskDir, Guid.NewGuid().ToString("N")[..8]);
        var disk = new DiskChunkCache(dir, 4L << 30);
        var reader = redis is null ? s.Reader(disk) : s.Reader(disk, redis);
        var clock = Stopwatch.StartNew();
        var result = await CacheWarmer.WarmAsync(reader, "restore", names, parallelism);
        double secs = clock.Elapsed.TotalSeconds;
        var c = reader.Counters;
        var r = redis is null ? null : c[1].Snapshot();
        var o = c[^1].Snapshot();
        long total = result.Chunks;
        string Pct(long h) => $"{h} ({100.0 * h / total:0.#} %)";
        if (sb is null) { Directory.Delete(dir, recursive: true); return; }
        string redisLatency = r is null ? "-"
            : $"{r.P50Us / 1000.0:0.00} / {r.P99Us / 1000.0:0.00} / {r.P999Us / 1000.0:0.00}";
        string originLatency = o.Hits == 0 ? "-" : $"{o.P50Us / 1000.0:0.0} / {o.P99Us / 1000.0:0.0}";
        sb.AppendLine($"| {label} | {secs:0.00} | {result.Bytes / secs / (1 << 20):0} | {Pct(c[0].Hits)} " +
            $"| {(r is null ? "-" : Pct(r.Hits))} | {Pct(o.Hits)} | {redisLatency} | {originLatency} |");
        Console.Error.WriteLine($"{label}: {secs:0.00} s");
        Directory.Delete(dir, recursive: true);
    }
}
