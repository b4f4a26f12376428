using System.Diagnostics;

namespace Snapshots.Snapbench;

/// <summary>The local disk cache on a filesystem far smaller than its budget (a tmpfs the scenario mounts and
/// unmounts itself): N VMs of several snapshots fill it while they fault; every page must be right, the full disk
/// dealt with (fills skipped, entries evicted), never a failed restore. Rounds: the cache on the ordinary disk
/// (baseline), the small cache empty, then a new daemon on the small cache left full restoring another snapshot.
/// </summary>
public sealed class DiskFullScenario() : FaultScenario("disk-full",
    "the disk cache on a 6 MiB tmpfs (--cache-size 1G, --cache-min-free 1M) filled by N VMs of fn1..fn4: every "
    + "page right, full-disk events and evictions as facts; baseline with the cache on the ordinary disk")
{
    private const string TmpfsSize = "6m";

    public override async Task RunAsync(Bench bench, ScenarioResult result, CancellationToken ct)
    {
        var s3 = await bench.S3Async(ct);
        var traces = await WalkTracesAsync(bench, result, "full", ct);
        string[] Args(string cache) => ["--store", s3.Address, "--cache-dir", cache, "--cache-size", "1G",
            "--cache-min-free", "1M"];

        var baseline = result.Add("baseline", "the cache on the ordinary disk, empty: room for every chunk");
        await RunRoundAsync(bench, result, baseline, "st.full.base", Args(bench.WorkPath("cache.full.base")),
            traces, ct);

        string small = bench.WorkPath("cache.full");
        Directory.CreateDirectory(small);
        await RunAsync("mount", "-t", "tmpfs", "-o", $"size={TmpfsSize}", "tmpfs", small);
        result.Facts["cache filesystem"] = $"tmpfs size={TmpfsSize} ({small})";
        try
        {
            var empty = result.Add("full-empty", $"the cache on the {TmpfsSize} tmpfs, empty: it fills while the "
                + "VMs fault (their chunks protected from eviction)");
            var figures = await RunRoundAsync(bench, result, empty, "st.full.empty", Args(small), traces, ct);
            NoteDisk(result, empty.Name, small, figures);
            // Another snapshot: the entries of the others' own layers are not protected by these restores.
            var again = result.Add("full-again", $"a new daemon on the tmpfs the last round left full, every VM on "
                + $"fn{Bench.Functions}: the other snapshots' entries evicted for its chunks");
            figures = await RunRoundAsync(bench, result, again, "st.full.again", Args(small), traces, ct,
                snapshotOf: _ => $"fn{Bench.Functions}");
            NoteDisk(result, again.Name, small, figures);
        }
        finally
        {
            // The round's daemon is stopped by then; lazily if something still holds it.
            try
            {
                await RunAsync("umount", small);
            }
            catch (InvalidOperationException)
            {
                await RunAsync("umount", "-l", small);
            }
        }
    }

    /// <summary>The filesystem's use after a round, and an error when the cache never met the full disk (nothing
    /// tested).</summary>
    private static void NoteDisk(ScenarioResult result, string round, string dir, RoundFigures figures)
    {
        var drive = new DriveInfo(dir);
        result.Facts[$"{round}: tmpfs used / size (KiB)"] =
            $"{(drive.TotalSize - drive.AvailableFreeSpace) >> 10} / {drive.TotalSize >> 10}";
        if (figures.Metric("snapd_cache_events_total{full_disk}") + figures.Metric("snapd_cache_events_total{fill_"
            + "skipped}") + figures.Metric("snapd_cache_evictions_total") == 0)
            result.Errors.Add($"{round}: no full disk met, no fill skipped, nothing evicted: nothing tested");
    }

    private static async Task RunAsync(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}");
        var err = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"{file} {string.Join(' ', args)}: exit {p.ExitCode}: {await err}");
    }
}
