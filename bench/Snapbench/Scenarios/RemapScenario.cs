using System.Globalization;

namespace Snapshots.Snapbench;

/// <summary>Random scripts of what a VMM does to guest memory (read, write, free, remap, drop its uffd, several
/// vCPUs at once; <see cref="RemapScripts"/>), each one restore through snapd (one script per replay-vmm run: each
/// restore has its own socket), every page read checked against replay-vmm's model. The same scripts with guest memory
/// resident (copied in first, no uffd: the kernel alone answers frees and remaps) are the control: a script that
/// fails there too points at the script or the model, not snapd. (Not the minimal C handler: it ignores REMOVE
/// events, so it serves snapshot bytes where a freed page must read zeros; the model catches it at once.) A failing
/// script is kept in the output directory and named by its seed.</summary>
public sealed class RemapScenario() : Scenario("remap",
    "random VMM scripts from the seed (read/write/free/remap/drop-uffd on several vCPUs, two regions with a gap), one "
    + "restore each through snapd, checked against replay-vmm's model; the same scripts resident as the control")
{
    public override async Task RunAsync(Bench bench, ScenarioResult result, CancellationToken ct)
    {
        const string Snapshot = "fn2";
        int scripts = bench.Restores * 2, steps = bench.Quick ? 24 : 60, vcpus = Vmm.Vcpus + 1;
        // Two regions with a hole between them in the host's address space, as a VM with memory above a PCI hole:
        // a handler that ignores a region's base gets the second one wrong.
        long half = bench.ImageSize / 2;
        string[] regions = ["--regions", $"{half >> 10}K,2M,{(bench.ImageSize - half) >> 10}K"];
        result.Facts["snapshot"] = Snapshot;
        result.Facts["scripts"] = $"{scripts} per strategy, {steps} lines each, up to {vcpus} ops (vCPUs) a line, "
            + $"seeds {bench.Seed * 1000}..{(bench.Seed * 1000) + scripts - 1}";
        result.Facts["regions"] = string.Join(' ', regions);
        var snapd = result.Add("snapd", "each script one snapd restore (uffd, prefetch: false): replay-vmm --script "
            + "--mode handler on the restore's socket");
        var resident = result.Add("resident", "the same scripts, guest memory copied in first and no uffd (the "
            + "control: the kernel alone)");
        (snapd.Loader, resident.Loader, snapd.Tier, resident.Tier) =
            ("snapd uffd", "resident copy", "disk cache", "local file");
        // 2N scripts, not --restores: the progress bars' denominators.
        (snapd.Planned, resident.Planned) = (scripts, scripts);
        var daemon = await bench.StartSnapdAsync("st.remap", "--cache-dir", bench.WorkPath("cache.remap"));
        await NoteVersionAsync(daemon, result);
        var ops = new Dictionary<string, int>();
        for (int i = 0; i < scripts; i++)
        {
            int seed = (bench.Seed * 1000) + i;
            var (text, counts) = RemapScripts.Generate(seed, (int)bench.Pages, vcpus, steps);
            foreach (var (k, v) in counts) ops[k] = ops.GetValueOrDefault(k) + v;
            string file = bench.WorkPath($"remap-{seed}.script");
            await File.WriteAllTextAsync(file, text, ct);
            string[] workload = ["--script", file, .. regions];
            var (run, _) = await RestoreAsync(bench, daemon, snapd, Snapshot, false, workload, $"remap.{seed}", ct);
            if (run is { Right: false }) await KeepAsync(bench, result, "snapd", seed, text, run, ct);
            var control = await Vmm.RunAsync(bench, bench.Image(Snapshot), "resident", null, workload,
                $"remap-resident.{seed}", ct);
            resident.Add(control, control.WallUs);
            if (!control.Right) await KeepAsync(bench, result, "resident", seed, text, control, ct);
        }
        result.Facts["ops (all scripts)"] = string.Join(", ", ops.OrderBy(o => o.Key, StringComparer.Ordinal)
            .Select(o => string.Create(CultureInfo.InvariantCulture, $"{o.Key} {o.Value}")));
        await NoteMetricsAsync(daemon, result, "snapd");
    }

    /// <summary>Keeps a failing script as DIR/remap-SEED.script and names it, with replay-vmm's first bad page.
    /// </summary>
    private static async Task KeepAsync(Bench bench, ScenarioResult result, string strategy, int seed, string text,
        VmmRun run, CancellationToken ct)
    {
        string kept = Path.Combine(bench.Out, $"remap-{seed}.script");
        await File.WriteAllTextAsync(kept, text, ct);
        string first = run.Json is { } j && j.TryGetProperty("firstBad", out var f) ? f.ToString() : "";
        result.Errors.Add($"{strategy}: script of seed {seed} ({kept}) failed: {run.Summary}"
            + (first.Length > 0 ? $"; first bad: {first}" : ""));
    }
}
