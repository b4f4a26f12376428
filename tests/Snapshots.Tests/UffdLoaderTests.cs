using System.Diagnostics;
using Snapshots.Store.Chunks;

namespace Snapshots.Tests;

/// <summary>`snapctl restore` serving native/bin/replay-vmm over userfaultfd: every page the VMM touches is
/// checked against the memory file.</summary>
[Trait("Category", Category.Process)]
public class UffdLoaderTests
{
    private static async Task<(TestStore T, string Image)> SnapshotAsync(long size = 32L << 20)
    {
        var t = new TestStore();
        await t.BuildAsync("os", t.Image("os.img", size: size));
        var img = t.Image("rt.img", runtime: 2, size: size);
        await t.BuildAsync("rt", img, parent: "os");
        return (t, img);
    }

    [Fact]
    public async Task Serves_every_page_of_a_layered_snapshot_correctly()
    {
        var (t, img) = await SnapshotAsync();
        using var scope = t;
        var run = await Loader.RestoreAsync(
            t, ["--name", "rt", "--cache-dir", t.Path_("cache")], ["--image", img, "--touch", "all"]);
        Assert.Equal(0, run.VmmExit);
        Assert.Equal(8192, run.Vmm.GetProperty("pages").GetInt32());
        Assert.Equal(0, run.Vmm.GetProperty("bad").GetInt32());
        Assert.Equal(0, run.Handler.ExitCode);
        Assert.Equal("exited", run.Stats.GetProperty("outcome").GetString());
        Assert.True(run.Stats.GetProperty("pagesCopied").GetInt64() > 0);
        Assert.True(run.Stats.GetProperty("zeroPages").GetInt64() > 0);
        string[] fields =
            ["faults", "pagesCopied", "zeroPages", "prefetchedPages", "faultLatencySeconds", "tiers"];
        foreach (var field in fields)
            Assert.True(run.Stats.TryGetProperty(field, out _), field);
    }

    [Fact]
    public async Task Fault_around_saves_faults_and_is_off_while_recording()
    {
        var (t, img) = await SnapshotAsync();
        using var scope = t;
        var one = await Loader.RestoreAsync(
            t, ["--name", "rt", "--fault-around", "1"], ["--image", img, "--touch", "all"]);
        var four = await Loader.RestoreAsync(t, ["--name", "rt"], ["--image", img, "--touch", "all"]);
        Assert.Equal(0, four.Vmm.GetProperty("bad").GetInt32());
        Assert.True(four.Stats.GetProperty("faults").GetInt64() < one.Stats.GetProperty("faults").GetInt64() / 2,
            $"{four.Stats.GetProperty("faults")} faults with fault-around, {one.Stats.GetProperty("faults")} without");
        var log = t.Path_("rec.log");
        var recorded = await Loader.RestoreAsync(
            t, ["--name", "rt", "--record", log], ["--image", img, "--touch", "all"]);
        Assert.Equal(one.Stats.GetProperty("faults").GetInt64(), recorded.Stats.GetProperty("faults").GetInt64());
        Assert.Equal(
            recorded.Stats.GetProperty("faults").GetInt64(), Snapshots.Prefetch.AccessLog.Load(log).Touches.Length);
    }

    [Fact]
    public async Task Two_regions_with_a_gap_and_removed_pages_read_correctly()
    {
        var (t, img) = await SnapshotAsync();
        using var scope = t;
        var run = await Loader.RestoreAsync(t, ["--name", "rt"],
            ["--image", img, "--touch", "random:3000:7", "--regions", "12M,4M,20M", "--remove", "200"]);
        Assert.Equal(0, run.VmmExit);
        Assert.Equal(0, run.Vmm.GetProperty("bad").GetInt32());
        Assert.Equal(200, run.Vmm.GetProperty("removedPages").GetInt32());
        Assert.Equal(0, run.Vmm.GetProperty("removedBad").GetInt32());
        Assert.Equal(2, run.Stats.GetProperty("regions").GetInt32());
        Assert.True(run.Stats.GetProperty("removeEvents").GetInt64() > 0);
    }

    [Fact]
    public async Task Remove_events_racing_with_faults_never_leave_stale_data()
    {
        var (t, img) = await SnapshotAsync();
        using var scope = t;
        var run = await Loader.RestoreAsync(
            t, ["--name", "rt"], ["--image", img, "--touch", "all", "--balloon", "512:20"]);
        Assert.Equal(0, run.VmmExit);
        Assert.Equal(0, run.Vmm.GetProperty("bad").GetInt32());
        Assert.Equal(0, run.Vmm.GetProperty("balloonBad").GetInt32());
        Assert.True(run.Stats.GetProperty("removeEvents").GetInt64() >= 512 * 20);
    }

    [Fact]
    public async Task A_recorded_log_lists_each_page_once_when_freed_pages_fault_again()
    {
        // A balloon frees pages the guest touched (REMOVE) and the guest touches them again: the second fault is
        // not a first touch. The real guest's balloon cycle recorded such pages twice, and merge refused the log.
        var (t, img) = await SnapshotAsync();
        using var scope = t;
        var log = t.Path_("balloon.log");
        var run = await Loader.RestoreAsync(
            t, ["--name", "rt", "--record", log], ["--image", img, "--touch", "all", "--balloon", "512:4"]);
        Assert.Equal(0, run.Vmm.GetProperty("bad").GetInt32());
        Assert.True(run.Stats.GetProperty("removeEvents").GetInt64() > 0);
        Assert.Equal(0, run.Vmm.GetProperty("balloonBad").GetInt32());
        var touches = Snapshots.Prefetch.AccessLog.Load(log).Touches; // refuses a page listed twice
        Assert.InRange(touches.Length, 1, 8192);
    }

    [Fact]
    public async Task Record_merge_attach_then_prefetch_avoids_most_faults()
    {
        // The traces keep 50 us of guest work between touches, as recorded ones do: a VM faulting back to back on
        // new chunks keeps a demand fetch in flight all the time, and prefetch (which yields to demand) may then
        // install nothing before the VM has touched everything.
        var (t, img) = await SnapshotAsync(64L << 20);
        using var scope = t;
        var traces = new List<string>();
        for (int v = 1; v <= 4; v++)
        {
            var log = t.Path_($"synth{v}.log");
            var trace = t.Path_($"trace{v}.txt");
            var synth = await Snapctl.RunAsync(
                t, "log", "synth", "--image", img, "--pages", "3000", "--seed", "5", "--variant", $"{v}",
                "--gap-us", "50", "--out", log, "--trace", trace);
            Assert.Equal(0, synth.ExitCode);
            traces.Add(trace);
        }
        var recorded = new List<string>();
        for (int v = 0; v < 3; v++)
        {
            var rec = t.Path_($"rec{v}.log");
            var run = await Loader.RestoreAsync(
                t, ["--name", "rt", "--no-prefetch", "--record", rec], ["--image", img, "--trace", traces[v]]);
            Assert.Equal(0, run.Vmm.GetProperty("bad").GetInt32());
            Assert.True(new FileInfo(rec).Length > 0);
            recorded.Add(rec);
        }
        var plan = t.Path_("plan.bin");
        Assert.Equal(0, (await Snapctl.RunAsync(t, ["log", "merge", "--out", plan, .. recorded])).ExitCode);
        Assert.Equal(0, (await Snapctl.RunAsync(t, "log", "attach", "--name", "rt", plan)).ExitCode);

        var pack = (await Snapctl.RunAsync(t, "inspect", "--name", "rt.pack", "--json")).Json.GetProperty("chain")[0];
        Assert.True(pack.GetProperty("imageBytes").GetInt64() is > 0 and <= 3000L * 4096,
            "the pack holds the planned pages, no more");

        var cold = await Loader.RestoreAsync(
            t, ["--name", "rt", "--no-prefetch"], ["--image", img, "--trace", traces[3]]);
        var warm = await Loader.RestoreAsync(t, ["--name", "rt", "--prefetch"], ["--image", img, "--trace", traces[3]]);
        Assert.Equal(0, warm.Vmm.GetProperty("bad").GetInt32());
        Assert.Contains("working-set pack chunks loaded", warm.Stats.GetProperty("prefetch").GetString());
        Assert.True(warm.Stats.GetProperty("prefetchedPages").GetInt64() > 0, warm.Handler.Stdout);
        Assert.True(warm.Stats.GetProperty("faults").GetInt64() < cold.Stats.GetProperty("faults").GetInt64(),
            $"warm: {warm.Handler.Stdout}\ncold: {cold.Handler.Stdout}");

        // The same plan without a pack prefetches the snapshot's own chunks, just as correctly.
        Assert.Equal(0, (await Snapctl.RunAsync(t, "log", "attach", "--name", "rt", "--no-pack", plan)).ExitCode);
        var chunks = await Loader.RestoreAsync(
            t, ["--name", "rt", "--prefetch"], ["--image", img, "--trace", traces[3]]);
        Assert.Equal(0, chunks.Vmm.GetProperty("bad").GetInt32());
        Assert.Contains("snapshot chunks loaded", chunks.Stats.GetProperty("prefetch").GetString());
        Assert.True(chunks.Stats.GetProperty("prefetchedPages").GetInt64() > 0);
    }

    [Fact]
    public async Task A_vmm_that_dies_mid_restore_ends_the_handler_cleanly()
    {
        var (t, img) = await SnapshotAsync();
        using var scope = t;
        var socket = t.Path_("die.sock");
        using var handler = Snapctl.Start(
            t, "restore", "--json", "--name", "rt", "--uffd-socket", socket, "--accept-timeout", "60");
        var hout = handler.StandardOutput.ReadToEndAsync();
        while (!File.Exists(socket)) await Task.Delay(20);
        var trace = t.Path_("slow.txt");
        File.WriteAllLines(trace, Enumerable.Range(0, 4000).Select(i => $"{i * 4096L} 2000")); // 8 s of "work"
        using var vmm = Loader.StartVmm(["--image", img, "--socket", socket, "--trace", trace]);
        await Task.Delay(1500);
        vmm.Kill(); // SIGKILL mid-restore
        var clock = Stopwatch.StartNew();
        await handler.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(40)).Token);
        // Noticed by its pidfd, not by the 60 s accept timeout or the 10 s fault deadline; the bound leaves room for
        // a loaded CI machine (9 s seen with both CPUs busy: the handler was still starting when the VMM died).
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"handler took {clock.Elapsed} to notice");
        Assert.Equal(0, handler.ExitCode);
        Assert.Contains("\"outcome\": \"exited\"", await hout);
    }

    [Fact]
    public async Task A_tier_failing_mid_restore_fails_the_vm_with_the_reason()
    {
        var (t, img) = await SnapshotAsync();
        using var scope = t;
        // Remove every stored chunk of the runtime layer: the origin now lacks them.
        var m = await t.Catalog.LoadAsync("rt");
        foreach (var e in m.Entries) File.Delete(Path.Combine(t.StoreDir, OriginChunkStore.KeyOf(e.Name)));
        var run = await Loader.RestoreAsync(
            t, ["--name", "rt", "--fault-deadline", "5"], ["--image", img, "--touch", "all"]);
        Assert.Equal(1, run.Handler.ExitCode);
        Assert.Equal("failed", run.Stats.GetProperty("outcome").GetString());
        Assert.StartsWith("chunk", run.Stats.GetProperty("reason").GetString());
        Assert.Contains("missing", run.Stats.GetProperty("reason").GetString());
        Assert.Contains("failing VM pid", run.Handler.Stderr);
        Assert.Equal(128 + 9, run.VmmExit); // killed by SIGKILL, before it could read a wrong byte
    }

    [Fact]
    public async Task A_stalled_tier_fails_the_vm_at_the_fault_deadline_not_later()
    {
        var (t, img) = await SnapshotAsync();
        using var scope = t;
        // A FIFO in place of a chunk: opening it would block forever, like a stalled origin. The store refuses it
        // (not a regular file) and the reader retries until the fault's deadline: the VM is failed then, not later.
        var m = await t.Catalog.LoadAsync("rt");
        var victim = Path.Combine(t.StoreDir, OriginChunkStore.KeyOf(m.Entries[0].Name));
        File.Delete(victim);
        using (var mk = Process.Start("mkfifo", victim)!) { await mk.WaitForExitAsync(); Assert.Equal(0, mk.ExitCode); }
        var offset = (long)m.Entries[0].Index * ChunkGeometry.ChunkSize;
        var trace = t.Path_("one.txt");
        File.WriteAllText(trace, $"{offset} 0\n");
        var clock = Stopwatch.StartNew();
        var run = await Loader.RestoreAsync(
            t, ["--name", "rt", "--fault-deadline", "2"], ["--image", img, "--trace", trace]);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"took {clock.Elapsed}");
        Assert.Equal(1, run.Handler.ExitCode);
        Assert.Equal("failed", run.Stats.GetProperty("outcome").GetString());
        var reason = run.Stats.GetProperty("reason").GetString()!;
        Assert.True(reason.Contains("could not be fetched within 2.0 s", StringComparison.Ordinal)
            || reason.Contains("not a regular file", StringComparison.Ordinal), reason);
        Assert.NotEqual(0, run.VmmExit);
        File.Delete(victim); // unblock nothing: the FIFO has no writer; removing it frees the test dir
    }
}
