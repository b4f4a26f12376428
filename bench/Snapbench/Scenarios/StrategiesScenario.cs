using System.Diagnostics;
using System.Text.Json;

namespace Snapshots.Snapbench;

/// <summary>The same workload through six loaders, one restore at a time, interleaved.</summary>
public sealed class StrategiesScenario() : Scenario("strategies",
    "resident ceiling, minimal C handler (naive peer), snapd uffd and ChunkFs file restores, each without and with "
    + "prefetch (a plan recorded first), the same workload side by side")
{
    public override async Task RunAsync(Bench bench, ScenarioResult result, CancellationToken ct)
    {
        const string Snapshot = "fn1";
        long touch = bench.Pages / (bench.Quick ? 4 : 2);
        var workload = Vmm.Random(touch, bench.Seed);
        result.Facts["snapshot"] = Snapshot;
        result.Facts["workload"] = $"--touch random:{touch}:{bench.Seed} (the same every restore)";
        result.Ceiling = "resident";
        result.Naive = "minimal";
        var resident = result.Add("resident", "replay-vmm --mode resident: the image copied in before the first "
            + "access, no fault at all (the ceiling); restore time = the process's whole run");
        var minimal = result.Add("minimal", "replay-vmm --mode minimal: the minimal C uffd handler copying from the "
            + "local image file (the naive peer)");
        var plain = result.Add("snapd",
            "snapd, prefetch: false: every page on demand (memory empty at each start, disk cache warm after the "
            + "first)");
        var prefetch = result.Add("snapd-prefetch", "snapd, prefetch: true, following the plan recorded from one "
            + "restore of the same workload (record: true, --plan-merge-logs 1)");
        (resident.Loader, minimal.Loader, plain.Loader, prefetch.Loader) =
            ("resident copy", "minimal C handler", "snapd uffd", "snapd uffd + prefetch");
        (resident.Tier, minimal.Tier, plain.Tier, prefetch.Tier) =
            ("local file", "local file", "disk cache warm", "disk cache warm");

        var chunkfs = result.Add("chunkfs", "snapd mode: file, prefetch: false: replay-vmm --mode file maps the "
            + "ChunkFs memory file MAP_PRIVATE (QEMU's memory-backend-file share=off); DELETE unmounts it after");
        var chunkfsPrefetch = result.Add("chunkfs-prefetch", "snapd mode: file, prefetch: true: the ChunkFs file "
            + "following the same plan");
        (chunkfs.Loader, chunkfsPrefetch.Loader) = ("snapd ChunkFs file", "snapd ChunkFs file + prefetch");
        (chunkfs.Tier, chunkfsPrefetch.Tier) = ("disk cache warm", "disk cache warm");

        var snapd = await bench.StartSnapdAsync("st.strategies", "--cache-dir", bench.WorkPath("cache.strategies"),
            "--plan-merge-logs", "1");
        await NoteVersionAsync(snapd, result);
        var recorder = result.Add("snapd-record", "snapd, one restore with record: true: its access log becomes "
            + "the plan snapd-prefetch follows");
        (recorder.Planned, recorder.Loader, recorder.Tier) = (1, "snapd uffd", "origin, cache cold");
        var (_, doc) = await RestoreAsync(bench, snapd, recorder, Snapshot, false, workload, "record", ct,
            record: true);
        var clock = Stopwatch.StartNew();
        while (await PlansPublishedAsync(snapd) < 1 && clock.Elapsed < TimeSpan.FromSeconds(60))
            await Task.Delay(50, ct);
        int plans = await PlansPublishedAsync(snapd);
        result.Facts["plan published (s after the recorded VM ended)"] = Math.Round(clock.Elapsed.TotalSeconds, 2);
        if (plans < 1) result.Errors.Add("no plan published within 60 s of the recorded restore");

        long planned = 0, prefetched = 0;
        for (int i = 0; i < bench.Restores; i++)
        {
            var r = await Vmm.RunAsync(bench, bench.Image(Snapshot), "resident", null, workload, $"resident.{i}", ct);
            resident.Add(r, r.WallUs);
            r = await Vmm.RunAsync(bench, bench.Image(Snapshot), "minimal", null, workload, $"minimal.{i}", ct);
            minimal.Add(r, r.WallUs);
            // The first restore of each snapd strategy is sampled while it runs: the timeline plot.
            await RestoreAsync(bench, snapd, plain, Snapshot, false, workload, $"snapd.{i}", ct,
                timeline: i == 0 ? result.AddTimeline(plain, $"snapd.{i}") : null);
            (_, doc) = await RestoreAsync(bench, snapd, prefetch, Snapshot, true, workload, $"snapd-prefetch.{i}", ct,
                timeline: i == 0 ? result.AddTimeline(prefetch, $"snapd-prefetch.{i}") : null);
            if (doc is { ValueKind: JsonValueKind.Object } d && d.TryGetProperty("prefetch", out var p)
                && p.ValueKind == JsonValueKind.Object)
            {
                planned += p.GetProperty("plannedPages").GetInt64();
                prefetched += p.GetProperty("prefetchedPages").GetInt64();
            }
            await FileRestoreAsync(bench, snapd, chunkfs, Snapshot, false, workload, $"chunkfs.{i}", ct);
            await FileRestoreAsync(bench, snapd, chunkfsPrefetch, Snapshot, true, workload, $"chunkfs-prefetch.{i}",
                ct);
        }
        result.Facts["snapd-prefetch planned / prefetched pages (all restores)"] = $"{planned} / {prefetched}";
        await NoteMetricsAsync(snapd, result, "snapd");
        if (plans >= 1 && planned == 0) result.Errors.Add("snapd-prefetch restores followed no plan (plannedPages 0)");
    }

    /// <summary>One file restore: POST (mode file), replay-vmm --mode file on the mounted memory file, then DELETE,
    /// which unmounts it and answers the restore as it ended. A file restore serves until released, so it never
    /// reaches `exited` while its VMM runs: the DELETE's answer is its end, and a good one says `exited` (a mount
    /// that failed says `failed`, with the reason). Restore time: POST to the VMM's exit.</summary>
    private static async Task FileRestoreAsync(Bench bench, SnapdDaemon snapd, StrategyResult strategy,
        string snapshot, bool prefetch, string[] workload, string label, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        string id, file;
        JsonElement posted;
        try
        {
            (id, file, posted) = await snapd.CreateDocAsync(snapshot, prefetch, mode: "file");
        }
        catch (Exception ex) when (ex is InvalidOperationException or HttpRequestException)
        {
            strategy.AddFailure($"{label}: {ex.Message}", clock.Elapsed.TotalMilliseconds, ex.Message);
            return;
        }
        var run = await Vmm.RunAsync(bench, bench.Image(snapshot), "file", file, workload, label, ct);
        double us = clock.Elapsed.TotalMicroseconds;
        var (status, doc) = await snapd.SendAsync(HttpMethod.Delete, "v1/restores/" + id);
        string? problem = status == System.Net.HttpStatusCode.OK ? Problem(label, id, doc)
            : $"{label}: DELETE /v1/restores/{id}: {(int)status} {doc}";
        if (status == System.Net.HttpStatusCode.OK && doc.ValueKind == JsonValueKind.Object)
            strategy.Tiers.Add(posted, doc);
        strategy.Add(run, us, problem, reason: Reason(doc));
    }
}
