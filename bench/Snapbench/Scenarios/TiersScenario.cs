using System.Diagnostics;
using Snapshots.Snapbench.Services;

namespace Snapshots.Snapbench;

/// <summary>The same workload with its chunks in each tier: the local disk cache warm, Redis warm with the local
/// cache cold, the origin (s3rver) alone; each without and with prefetch, each restore on a daemon started for it
/// (nothing resident in memory). The ceiling and the naive peer run beside them for the ratios.</summary>
public sealed class TiersScenario() : Scenario("tiers",
    "per tier (local cache warm; Redis warm, local cold; s3rver origin only) x (prefetch off, on), a fresh snapd "
    + "per restore, beside the resident ceiling and the minimal handler")
{
    private const string Snapshot = "fn1";

    public override async Task RunAsync(Bench bench, ScenarioResult result, CancellationToken ct)
    {
        var s3 = await bench.S3Async(ct);
        await using var redis = await RedisCluster.StartAsync(bench, "redis.tiers", Bench.RedisPort, 3, 0);
        long touch = bench.Pages / (bench.Quick ? 4 : 2);
        var workload = Vmm.Random(touch, bench.Seed);
        result.Facts["snapshot"] = Snapshot;
        result.Facts["workload"] = $"--touch random:{touch}:{bench.Seed} (the same every restore)";
        result.Facts["origin"] = $"s3rver on 127.0.0.1:{s3.Port} (no added delay)";
        result.Facts["redis"] = "3 masters, no replicas";
        result.Ceiling = "resident";
        result.Naive = "minimal";
        var resident = result.Add("resident", "replay-vmm --mode resident (the ceiling)", "local file", "resident");
        var minimal = result.Add("minimal", "replay-vmm --mode minimal: the minimal C handler on the local file",
            "local file", "minimal C handler");

        string warmCache = bench.WorkPath("cache.tiers.warm");
        string[] store = ["--store", s3.Address];
        await RecordPlanAsync(bench, result, [.. store, "--cache-dir", warmCache, "--redis", redis.Address], ct);

        // One long-lived daemon per tier, as on a worker host. A restore's memory is released when it ends (no
        // other restore of the chain holds it), so each restore starts with nothing resident; one discarded
        // restore first warms each daemon's code paths (JIT), not its data.
        var tiers = new (string Name, string State, string Tier, string What, string[] Args)[]
        {
            ("local-warm", "st.tiers.local", "local disk warm",
                "the local disk cache holding every chunk (filled by the recorded restore)",
                [.. store, "--cache-dir", warmCache]),
            ("redis-warm", "st.tiers.redis", "Redis warm", "Redis holding every chunk, no local disk cache",
                [.. store, "--redis", redis.Address]),
            ("origin", "st.tiers.origin", "origin only", "no cache: every chunk from s3rver", store),
        };
        var rows = new List<(StrategyResult S, SnapdDaemon Snapd, bool Prefetch)>();
        foreach (var (name, state, tier, what, args) in tiers)
        {
            var snapd = await bench.StartSnapdAsync(state, args);
            var warmup = new StrategyResult("warm-up", "");
            await RestoreAsync(bench, snapd, warmup, Snapshot, true, workload, $"{name}.warm-up", ct);
            if (!warmup.Ok) result.Errors.AddRange(warmup.Errors);
            rows.Add((result.Add(name, $"snapd, prefetch off: {what}", tier, "snapd uffd"), snapd, false));
            rows.Add((result.Add(name + "-prefetch", $"snapd, prefetch on (the recorded plan): {what}", tier,
                "snapd uffd + prefetch"), snapd, true));
        }
        for (int i = 0; i < bench.Restores; i++)
        {
            var r = await Vmm.RunAsync(bench, bench.Image(Snapshot), "resident", null, workload, $"resident.{i}", ct);
            resident.Add(r, r.WallUs);
            r = await Vmm.RunAsync(bench, bench.Image(Snapshot), "minimal", null, workload, $"minimal.{i}", ct);
            minimal.Add(r, r.WallUs);
            foreach (var (s, snapd, prefetch) in rows)
                await RestoreAsync(bench, snapd, s, Snapshot, prefetch, workload, $"{s.Name}.{i}", ct,
                    timeline: i == 0 && s.Name.StartsWith("origin", StringComparison.Ordinal)
                        ? result.AddTimeline(s, $"{s.Name}.0") : null);
        }
        foreach (var (name, _, _, _, _) in tiers)
            await NoteMetricsAsync(rows.First(x => x.S.Name == name).Snapd, result, $"{name} daemon");
    }

    /// <summary>One restore with record: true on a daemon of every tier: it warms the local cache and Redis, and
    /// its access log becomes the plan (attached in the s3rver store) the prefetch rows follow.</summary>
    private static async Task RecordPlanAsync(Bench bench, ScenarioResult result, string[] args,
        CancellationToken ct)
    {
        var snapd = await bench.StartSnapdAsync("st.tiers", [.. args, "--plan-merge-logs", "1"]);
        await NoteVersionAsync(snapd, result);
        // Set-up, not a strategy: one restore with record: true through every tier (cold) fills the local cache and
        // Redis, and its access log becomes the plan.
        var recorder = new StrategyResult("record", "");
        await RestoreAsync(bench, snapd, recorder, Snapshot, false,
            Vmm.Random(bench.Pages / (bench.Quick ? 4 : 2), bench.Seed), "record", ct, record: true);
        var clock = Stopwatch.StartNew();
        while (await PlansPublishedAsync(snapd) < 1 && clock.Elapsed < TimeSpan.FromSeconds(60))
            await Task.Delay(50, ct);
        if (await PlansPublishedAsync(snapd) < 1) result.Errors.Add("no plan published within 60 s of the record");
        if (!recorder.Ok) result.Errors.AddRange(recorder.Errors);
        await bench.StopSnapdAsync(snapd);
    }
}
