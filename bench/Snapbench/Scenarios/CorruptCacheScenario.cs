using Snapshots.Snapbench.Services;

namespace Snapshots.Snapbench;

/// <summary>Corrupt entries planted in a warm cache behind the daemon's back: every page must still be right, the
/// corrupt entries counted and their chunks fetched again. The local disk cache (bytes flipped in every other
/// chunk file once the daemon has opened it, with --verify-cache-at-start false, so only the read path can catch
/// them) and Redis (values overwritten on every master: every stripe of half the chunks, one stripe of the rest);
/// each with a baseline round on the same warm cache before the corruption.</summary>
public sealed class CorruptCacheScenario() : FaultScenario("corrupt-cache",
    "corrupt entries planted in a warm local disk cache (bytes flipped) and in a warm Redis (values overwritten): "
    + "every page right, corrupt entries counted, their chunks refetched; baselines on the intact caches")
{
    public override async Task RunAsync(Bench bench, ScenarioResult result, CancellationToken ct)
    {
        var s3 = await bench.S3Async(ct);
        var traces = await WalkTracesAsync(bench, result, "corrupt", ct);
        await DiskAsync(bench, result, s3, traces, ct);
        await RedisAsync(bench, result, s3, traces, ct);
    }

    private static async Task DiskAsync(Bench bench, ScenarioResult result, S3Origin s3, string[] traces,
        CancellationToken ct)
    {
        string cache = bench.WorkPath("cache.corrupt");
        string[] args = ["--store", s3.Address, "--cache-dir", cache, "--verify-cache-at-start", "false"];
        await WarmAsync(bench, result, "st.corrupt.dwarm", args, ct);
        var baseline = result.Add("disk-baseline", "the local disk cache warm and intact (every chunk in it)");
        var sums = await RunRoundAsync(bench, result, baseline, "st.corrupt.db", args, traces, ct);
        if (sums.Hits("disk") == 0) result.Errors.Add("disk-baseline: the disk cache served nothing: it was not warm");

        var corrupt = result.Add("disk-corrupt", "the same cache, a byte flipped in every other chunk file once the "
            + "daemon had opened it (--verify-cache-at-start false)");
        int planted = 0;
        sums = await RunRoundAsync(bench, result, corrupt, "st.corrupt.dc", args, traces, ct, before: _ =>
        {
            (planted, int entries) = Corruption.FlipDiskEntries(cache);
            result.Facts["disk-corrupt: chunk files corrupted / in the cache"] = $"{planted} / {entries}";
            return Task.CompletedTask;
        });
        if (planted == 0) result.Errors.Add("disk-corrupt: no chunk file to corrupt: nothing tested");
        else if (sums.Metric("snapd_cache_events_total{corrupt_dropped}") < planted)
            result.Errors.Add($"disk-corrupt: {planted} entries corrupted, fewer dropped (corrupt_dropped)");
        else if (sums.TierErrors("disk", "corrupt") == 0)
            result.Errors.Add($"disk-corrupt: {planted} entries corrupted, none counted corrupt");
    }

    private static async Task RedisAsync(Bench bench, ScenarioResult result, S3Origin s3, string[] traces,
        CancellationToken ct)
    {
        await using var redis = await RedisCluster.StartAsync(bench, "redis.corrupt", Bench.RedisPort, 3, 0);
        string[] args = ["--store", s3.Address, "--redis", redis.Address];
        result.Facts["redis"] = "3 masters, no replicas, default layout (auto: striped, 2 data + 1 parity)";
        await WarmAsync(bench, result, "st.corrupt.rwarm", args, ct);
        var baseline = result.Add("redis-baseline", "Redis warm and intact (every chunk in it), no disk cache");
        var sums = await RunRoundAsync(bench, result, baseline, "st.corrupt.rb", args, traces, ct);
        if (sums.Hits("redis") == 0) result.Errors.Add("redis-baseline: Redis served nothing: it was not warm");

        var (whole, overwritten, keys) = await Corruption.CorruptRedisAsync(
            Enumerable.Range(redis.BasePort, redis.Nodes));
        result.Facts["redis-corrupt: chunks with every stripe corrupt; keys overwritten / keys"] =
            $"{whole}; {overwritten} / {keys}";
        var corrupt = result.Add("redis-corrupt", "the same Redis, every stripe of the chunks whose name ends in an "
            + "even digit overwritten, the first stripe of the others");
        sums = await RunRoundAsync(bench, result, corrupt, "st.corrupt.rc", args, traces, ct);
        if (whole > 0 && sums.TierErrors("redis", "corrupt") == 0)
            result.Errors.Add($"redis-corrupt: {whole} chunks corrupted in every stripe, none counted corrupt");
    }
}
