using System.Diagnostics;
using System.Globalization;
using Snapshots.ChunkFs.Memory;
using Snapshots.ChunkFs.Uffd;
using Snapshots.Store.Chunks;
using Xunit.Abstractions;

namespace Snapshots.Tests;

/// <summary>A handler stops mid-restore (detached, its copy of the uffd closed: what a daemon's SIGKILL leaves) and
/// a new session takes the uffd back from native/bin/replay-vmm with pidfd_getfd and serves the rest; replay-vmm
/// checks every page it reads. And every way a take-back is refused, each named.</summary>
[Trait("Category", Category.Process)]
public sealed class TakeBackTests(ITestOutputHelper output)
{
    private const int Pages = 8192;

    /// <summary>A 32 MiB snapshot of random bytes: every page differs from zeros, so a freed page served from the
    /// snapshot instead of as zeros shows.</summary>
    private static async Task<(TestStore T, string Image)> SnapshotAsync()
    {
        var t = new TestStore();
        var image = t.Path_("data.img");
        var bytes = new byte[Pages * ChunkGeometry.PageSize];
        new Random(11).NextBytes(bytes);
        await File.WriteAllBytesAsync(image, bytes);
        await t.BuildAsync("data", image);
        return (t, image);
    }

    /// <summary>Runs the handler on its own thread, as RestoreSession does.</summary>
    private static Task<RestoreStats> RunAsync(UffdHandler handler)
    {
        var done = new TaskCompletionSource<RestoreStats>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try { done.SetResult(handler.Run(CancellationToken.None)); }
            catch (Exception ex) { done.SetException(ex); }
        })
        { IsBackground = true };
        thread.Start();
        return done.Task;
    }

    private static async Task<(int Exit, string Out, string Err)> ExitAsync(Process vmm, Task<string> o, Task<string> e)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await vmm.WaitForExitAsync(cts.Token);
        return (vmm.ExitCode, await o, await e);
    }

    /// <summary>replay-vmm replays every page once, in random order, 300 us apart on each of 2 vCPUs (about 1.2 s
    /// of faulting), with <paramref name="extra"/> options; handler A serves it for 400 ms and is detached, its
    /// copy of the uffd closed; handler B, on a session from TakeBack, serves the rest.</summary>
    private static async Task<(int Exit, string Out, RestoreStats A, RestoreStats B)> SwitchMidRestoreAsync(
        params string[] extra)
    {
        var (t, image) = await SnapshotAsync();
        using var scope = t;
        var trace = t.Path_("all.trace");
        var order = Enumerable.Range(0, Pages).ToArray();
        new Random(3).Shuffle(order);
        await File.WriteAllLinesAsync(trace, order.Select(p => $"{(long)p * ChunkGeometry.PageSize} 300"));
        var chain = await t.OpenAsync("data");
        var socket = t.Path_("tb.sock");
        using var listener = new HandshakeListener(socket);
        using var vmm = Loader.StartVmm(
        [
            "--image", image, "--socket", socket, "--trace", trace, "--sleep-gaps", "--vcpus", "2",
            "--timeout", "60", .. extra,
        ]);
        var vout = vmm.StandardOutput.ReadToEndAsync();
        var verr = vmm.StandardError.ReadToEndAsync();
        var removed = t.Path_("removed.bits");

        var first = await listener.AcceptAsync(chain.ImageSize, TimeSpan.FromSeconds(10), CancellationToken.None);
        Assert.Equal(vmm.Id, first.VmmPid);
        Assert.True(first.VmmUffdFd >= 0, "the VMM's own number for its uffd was not found");
        Assert.Equal(VmmProcess.StartTime(vmm.Id), first.VmmStartTime);
        RestoreStats a;
        using (var memoryA = new ResidentChunks(chain, t.Reader(), 1L << 30))
        using (first)
        {
            var handlerA = new UffdHandler(first, memoryA, new UffdHandlerOptions { RemovedPagesPath = removed });
            var runA = RunAsync(handlerA);
            await Task.Delay(400);
            handlerA.Detach();
            a = await runA;
        } // our copy of the uffd is closed: all the VMM has left is its own
        Assert.Equal(RestoreStats.DetachedOutcome, a.Outcome);
        Assert.True(a.Faults > 0, "the first handler served nothing");
        Assert.False(vmm.HasExited, "the VMM finished before the switch: the test proves nothing");

        using var back = UffdSession.TakeBack(first.VmmPid, first.VmmStartTime, first.VmmUffdFd, first.Regions);
        using var memoryB = new ResidentChunks(chain, t.Reader(), 1L << 30);
        using var handlerB = new UffdHandler(back, memoryB, new UffdHandlerOptions { RemovedPagesPath = removed });
        var runB = RunAsync(handlerB);
        var (exit, stdout, stderr) = await ExitAsync(vmm, vout, verr);
        var b = await runB;
        Assert.Equal(RestoreStats.ExitedOutcome, b.Outcome);
        Assert.True(b.Faults > 0, "the second handler served nothing");
        return (exit, stdout + stderr, a, b);
    }

    [Fact]
    public async Task A_new_session_takes_the_uffd_back_and_serves_the_rest_of_the_restore()
    {
        var (exit, vmmOutput, a, b) = await SwitchMidRestoreAsync();
        output.WriteLine($"faults {a.Faults} + {b.Faults}, existing {b.ExistingPages} after the switch");
        Assert.True(exit == 0, $"replay-vmm exited {exit}: {vmmOutput}");
        Assert.Contains("\"bad\":0,", vmmOutput, StringComparison.Ordinal);
        Assert.True(a.Faults + b.Faults + a.PrefetchedPages + b.PrefetchedPages >= Pages / 4,
            $"{a.Faults} + {b.Faults} faults for {Pages} pages");
    }

    [Fact]
    public async Task A_balloon_freeing_and_touching_pages_across_the_switch_reads_zeros_throughout()
    {
        // The balloon thread frees its pages and touches them again, over and over, while the vCPUs replay: REMOVE
        // events race with the switch (read by A and marked in the file, or left pending for B).
        var (exit, vmmOutput, a, b) = await SwitchMidRestoreAsync("--balloon", "512:150");
        output.WriteLine($"REMOVE events: {a.RemoveEvents} before the switch, {b.RemoveEvents} after; "
            + $"faults {a.Faults} + {b.Faults}");
        Assert.True(exit == 0, $"replay-vmm exited {exit}: {vmmOutput}");
        Assert.Contains("\"balloonBad\":0}", vmmOutput, StringComparison.Ordinal);
        Assert.True(a.RemoveEvents > 0, "no REMOVE before the switch");
        Assert.True(b.RemoveEvents > 0, $"no REMOVE after the switch ({a.RemoveEvents} before it)");
    }

    [Fact]
    public async Task A_fault_the_dead_handler_read_but_never_served_is_asked_again()
    {
        // The worst moment to die: a fault's message read off the uffd, its page not yet installed. The kernel never
        // delivers that message again; the vCPU sleeps until woken, and TakeBack wakes it to fault again.
        var (t, image) = await SnapshotAsync();
        using var scope = t;
        var chain = await t.OpenAsync("data");
        var socket = t.Path_("lost.sock");
        using var listener = new HandshakeListener(socket);
        using var vmm = Loader.StartVmm(["--image", image, "--socket", socket, "--touch", "all", "--timeout", "30"]);
        var vout = vmm.StandardOutput.ReadToEndAsync();
        var verr = vmm.StandardError.ReadToEndAsync();
        var first = await listener.AcceptAsync(chain.ImageSize, TimeSpan.FromSeconds(10), CancellationToken.None);
        using (first)
        {
            var messages = new ChunkFs.Native.UffdMsg[1];
            var clock = Stopwatch.StartNew();
            int read = 0;
            while (read == 0 && clock.Elapsed < TimeSpan.FromSeconds(10))
            {
                read = first.Uffd.ReadEvents(messages, out _);
                if (read == 0) await Task.Delay(5);
            }
            Assert.Equal(1, read);
            Assert.Equal(ChunkFs.Native.UffdAbi.UFFD_EVENT_PAGEFAULT, messages[0].Event);
        }
        using var back = UffdSession.TakeBack(first.VmmPid, first.VmmStartTime, first.VmmUffdFd, first.Regions);
        using var memory = new ResidentChunks(chain, t.Reader(), 1L << 30);
        using var handler = new UffdHandler(back, memory, new UffdHandlerOptions());
        var run = RunAsync(handler);
        var (exit, stdout, stderr) = await ExitAsync(vmm, vout, verr);
        Assert.True(exit == 0, $"replay-vmm exited {exit}: {stdout} {stderr}");
        Assert.Equal(RestoreStats.ExitedOutcome, (await run).Outcome);
    }

    /// <summary>Pages freed (REMOVE) while the first handler served, read after the second took over: zeros only if
    /// the second handler has the first one's removed-pages file.</summary>
    private static async Task<(int Exit, string Out, RestoreStats A, RestoreStats B)> RemoveAcrossTakeBackAsync(
        bool shareRemovedPages)
    {
        var (t, image) = await SnapshotAsync();
        using var scope = t;
        var script = t.Path_("remove.script");
        await File.WriteAllTextAsync(script, string.Join('\n',
            "read 0 512 | read 2048 512",
            "free 100 300 | free 2100 200",
            "pause 2500",
            "read 100 300 | read 2100 200",
            "read 512 512 | read 2560 512") + "\n");
        var chain = await t.OpenAsync("data");
        var socket = t.Path_("rm.sock");
        using var listener = new HandshakeListener(socket);
        using var vmm = Loader.StartVmm(
            ["--image", image, "--socket", socket, "--script", script, "--no-fork", "--timeout", "60"]);
        var vout = vmm.StandardOutput.ReadToEndAsync();
        var verr = vmm.StandardError.ReadToEndAsync();
        var removedA = t.Path_("removed-a.bits");

        var first = await listener.AcceptAsync(chain.ImageSize, TimeSpan.FromSeconds(10), CancellationToken.None);
        RestoreStats a;
        using (var memoryA = new ResidentChunks(chain, t.Reader(), 1L << 30))
        using (first)
        {
            var handlerA = new UffdHandler(first, memoryA, new UffdHandlerOptions { RemovedPagesPath = removedA });
            var runA = RunAsync(handlerA);
            // The frees are done once their REMOVE events are read and their bits are in the file: switch during
            // the pause that follows them, before the guest reads those pages again.
            var clock = Stopwatch.StartNew();
            while (SetBits(removedA) < 500 && clock.Elapsed < TimeSpan.FromSeconds(30) && !runA.IsCompleted)
                await Task.Delay(10);
            handlerA.Detach();
            a = await runA;
        }
        Assert.Equal(RestoreStats.DetachedOutcome, a.Outcome);
        Assert.Equal(500, a.RemovedPages);
        Assert.False(vmm.HasExited, "the VMM finished before the switch: the test proves nothing");

        using var back = UffdSession.TakeBack(first.VmmPid, first.VmmStartTime, first.VmmUffdFd, first.Regions);
        using var memoryB = new ResidentChunks(chain, t.Reader(), 1L << 30);
        var options = new UffdHandlerOptions { RemovedPagesPath = shareRemovedPages ? removedA : null };
        using var handlerB = new UffdHandler(back, memoryB, options);
        var runB = RunAsync(handlerB);
        var (exit, stdout, stderr) = await ExitAsync(vmm, vout, verr);
        return (exit, stdout + stderr, a, await runB);
    }

    /// <summary>The bits set in a removed-pages file, read with plain open and read: .NET's own readers take a
    /// shared flock, which the live handler's exclusive one refuses.</summary>
    private static unsafe long SetBits(string path)
    {
        int fd = ChunkFs.Native.LibC.open(path, 0); // O_RDONLY
        if (fd < 0) return 0;
        try
        {
            var buffer = new byte[PageBitmap.Words(Pages) * 8];
            long n = 0;
            fixed (byte* p = buffer)
            {
                nint got = ChunkFs.Native.LibC.read(fd, p, (nuint)buffer.Length);
                for (int i = 0; i < got; i++) n += byte.PopCount(buffer[i]);
            }
            return n;
        }
        finally
        {
            ChunkFs.Native.LibC.close(fd);
        }
    }

    [Fact]
    public async Task Pages_freed_before_a_take_back_read_zeros_after_it()
    {
        var (exit, vmmOutput, a, b) = await RemoveAcrossTakeBackAsync(shareRemovedPages: true);
        Assert.True(exit == 0, $"replay-vmm exited {exit}: {vmmOutput}");
        Assert.Equal(0, a.ZeroPages); // the first handler served no freed page: the second one did
        Assert.True(b.ZeroPages >= 500, $"{b.ZeroPages} zero pages served after the take-back");
        Assert.Equal(RestoreStats.ExitedOutcome, b.Outcome);
    }

    [Fact]
    public async Task Without_the_removed_pages_file_a_taken_back_vm_reads_stale_pages()
    {
        // The control for the test above: the script and the switch do catch a handler that forgot the frees.
        var (exit, vmmOutput, _, b) = await RemoveAcrossTakeBackAsync(shareRemovedPages: false);
        Assert.True(exit == 1, $"replay-vmm exited {exit}: {vmmOutput}");
        Assert.Equal(0, b.ZeroPages);
    }

    private static readonly GuestRegion[] SomeRegions = [new(0x7f0000000000, 1 << 20, 0, 4096)];

    private static Process Sleeper()
    {
        var psi = new ProcessStartInfo("sleep", "60")
        {
            RedirectStandardOutput = true, RedirectStandardInput = true, UseShellExecute = false,
        };
        return Process.Start(psi)!;
    }

    private static TakeBackRefusedException Refused(int pid, ulong startTime, int fd, TakeBackFailure reason)
    {
        var ex = Assert.Throws<TakeBackRefusedException>(() => UffdSession.TakeBack(pid, startTime, fd, SomeRegions));
        Assert.Equal(reason, ex.Reason);
        Assert.Equal(pid, ex.VmmPid);
        Assert.Equal("take-back-refused", ex.Kind);
        Assert.Contains($"VMM pid {pid.ToString(CultureInfo.InvariantCulture)}:", ex.Message, StringComparison.Ordinal);
        return ex;
    }

    [Fact]
    public async Task A_vmm_that_exited_is_refused()
    {
        using var p = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!;
        await p.WaitForExitAsync();
        var ex = Refused(p.Id, 1, 3, TakeBackFailure.Exited);
        Assert.Contains("it has exited", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_pid_with_another_start_time_is_refused_and_left_running()
    {
        using var p = Sleeper();
        try
        {
            ulong started = VmmProcess.StartTime(p.Id)!.Value;
            var ex = Refused(p.Id, started + 1, 1, TakeBackFailure.PidReused);
            Assert.Contains("the pid was reused", ex.Message, StringComparison.Ordinal);
            Assert.Contains($"started at tick {started}", ex.Message, StringComparison.Ordinal);
            Assert.False(p.HasExited, "TakeBack must never kill anything");
        }
        finally
        {
            p.Kill();
        }
    }

    [Fact]
    public void A_descriptor_the_vmm_does_not_have_or_that_is_not_a_uffd_is_refused()
    {
        using var p = Sleeper();
        try
        {
            ulong started = VmmProcess.StartTime(p.Id)!.Value;
            var none = Refused(p.Id, started, 200, TakeBackFailure.NoDescriptor);
            Assert.Contains("it has no descriptor 200", none.Message, StringComparison.Ordinal);
            var pipe = Refused(p.Id, started, 1, TakeBackFailure.NotUserfaultFd); // its stdout: a pipe
            Assert.Contains("its descriptor 1 is not a userfaultfd (pipe:[", pipe.Message, StringComparison.Ordinal);
            var unrecorded = Refused(p.Id, started, -1, TakeBackFailure.NoDescriptor);
            Assert.Contains("no descriptor of its uffd was recorded", unrecorded.Message, StringComparison.Ordinal);
            Assert.False(p.HasExited, "TakeBack must never kill anything");
        }
        finally
        {
            p.Kill();
        }
    }

    [Fact]
    public async Task A_vmm_that_closed_its_copy_of_the_uffd_is_refused()
    {
        var (t, image) = await SnapshotAsync();
        using var scope = t;
        var script = t.Path_("drop.script");
        await File.WriteAllTextAsync(script, "drop-uffd\npause 3000\n");
        var chain = await t.OpenAsync("data");
        var socket = t.Path_("drop.sock");
        using var listener = new HandshakeListener(socket);
        using var vmm = Loader.StartVmm(
            ["--image", image, "--socket", socket, "--script", script, "--no-fork", "--timeout", "60"]);
        using var session =
            await listener.AcceptAsync(chain.ImageSize, TimeSpan.FromSeconds(10), CancellationToken.None);
        var clock = Stopwatch.StartNew();
        // The VMM may drop its copy before or after accept looked for it.
        while (session.VmmUffdFd >= 0 && VmmProcess.FdTarget(vmm.Id, session.VmmUffdFd) is not null
               && clock.Elapsed < TimeSpan.FromSeconds(10))
            await Task.Delay(10);
        var ex = Refused(vmm.Id, session.VmmStartTime, session.VmmUffdFd, TakeBackFailure.NoDescriptor);
        Assert.True(ex.Message.Contains("(it closed its copy of the uffd)", StringComparison.Ordinal)
            || ex.Message.Contains("(it kept no copy after the handshake)", StringComparison.Ordinal), ex.Message);
        await vmm.WaitForExitAsync();
    }
}
