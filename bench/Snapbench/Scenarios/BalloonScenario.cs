using System.Text.Json;

namespace Snapshots.Snapbench;

/// <summary>A balloon inflating and deflating while the vCPUs fault: replay-vmm's --balloon thread reads the last
/// PAGES pages (each checked against the image), then ITERATIONS times frees them (MADV_DONTNEED: snapd gets
/// UFFD_EVENT_REMOVE) and touches them again, each of which must read zeros, while the vCPUs replay the workload
/// on the rest; so REMOVE events race with page faults in snapd's handler. The same workload without the balloon
/// is the baseline.</summary>
public sealed class BalloonScenario() : Scenario("balloon",
    "snapd (uffd) restores with replay-vmm --balloon PAGES:ITERATIONS freeing and re-touching pages while 2 vCPUs "
    + "fault (REMOVE events racing faults); every page verified, freed ones as zeros; a baseline without it")
{
    public override async Task RunAsync(Bench bench, ScenarioResult result, CancellationToken ct)
    {
        const string Snapshot = "fn1";
        long touch = bench.Pages / 4;
        long pages = bench.Pages / 16;
        int iterations = bench.Quick ? 4 : 16;
        var workload = Vmm.Random(touch, bench.Seed);
        string balloon = $"{pages}:{iterations}";
        result.Facts["snapshot"] = Snapshot;
        result.Facts["workload"] = $"--touch random:{touch}:{bench.Seed} on {Vmm.Vcpus} vCPUs (accesses to the "
            + "balloon's pages left out)";
        result.Facts["balloon"] = $"--balloon {balloon}: the last {pages} pages, {iterations} inflate/deflate rounds";
        var baseline = result.Add("no-balloon", "the same workload, no balloon (the baseline)");
        var ballooned = result.Add("balloon", $"--balloon {balloon}: a third thread frees (MADV_DONTNEED) and "
            + "re-touches the balloon's pages while the vCPUs fault; each must read zeros after a free");
        (baseline.Loader, ballooned.Loader) = ("snapd uffd", "snapd uffd");
        (baseline.Tier, ballooned.Tier) = ("disk cache", "disk cache");
        var snapd = await bench.StartSnapdAsync("st.balloon", "--cache-dir", bench.WorkPath("cache.balloon"));
        await NoteVersionAsync(snapd, result);
        long zeroBaseline = 0, zeroBalloon = 0;
        for (int i = 0; i < bench.Restores; i++)
        {
            var (_, doc) = await RestoreAsync(bench, snapd, baseline, Snapshot, false, workload, $"no-balloon.{i}", ct);
            zeroBaseline += ZeroPages(doc);
            (_, doc) = await RestoreAsync(bench, snapd, ballooned, Snapshot, false, [.. workload, "--balloon", balloon],
                $"balloon.{i}", ct);
            zeroBalloon += ZeroPages(doc);
        }
        // A page touched again after its REMOVE is served as a zero page: more of them than the baseline's is the
        // proof that the frees reached snapd while it served (the VMM checks the zeros themselves).
        result.Facts["zero pages snapd installed: no-balloon / balloon (all restores)"] =
            $"{zeroBaseline} / {zeroBalloon}";
        if (ballooned.Completed > 0 && zeroBalloon <= zeroBaseline)
            result.Errors.Add("the balloon restores installed no more zero pages than the baseline: no REMOVE served");
        await NoteMetricsAsync(snapd, result, "snapd");
    }

    private static long ZeroPages(JsonElement? doc) =>
        doc is { ValueKind: JsonValueKind.Object } d && d.TryGetProperty("zeroPages", out var z)
            && z.ValueKind == JsonValueKind.Number ? z.GetInt64() : 0;
}
