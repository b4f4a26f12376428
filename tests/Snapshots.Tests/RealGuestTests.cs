using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Snapshots.ChunkFs.Fuse;
using Snapshots.ChunkFs.Native;
using Xunit.Abstractions;

namespace Snapshots.Tests;

/// <summary>The real-guest test runs alone, after the parallel tests: it keeps both cores busy with QEMU (TCG),
/// and its kills and mounts must not meet another test's processes.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class RealGuestCollection
{
    public const string Name = "real-guest";
}

/// <summary>
/// guest/real-guest-test.sh: a Debian guest with a Python function resumed lazily by both loaders (userfaultfd
/// through qemu-uffd, ChunkFs through a FUSE file), balloon cycles, concurrent restores from one mount, prefetch
/// from merged real recordings, kills of QEMU, of the mount and of the uffd handler, and both restore modes through
/// snapd (the daemon), whose SIGKILL and restart the running VM survives (taken back). The script writes every
/// figure and check into one JSON; this test asserts each field by name, so a failure names what broke, and
/// prints the end of the script's output. It never skips: no QEMU or no /dev/fuse is a failure.
/// </summary>
[Trait("Category", Category.Process)]
[Collection(RealGuestCollection.Name)]
public sealed class RealGuestTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(20);

    [Fact]
    public async Task A_real_guest_resumes_lazily_through_both_loaders_with_prefetch_balloon_and_kills()
    {
        Assert.True(Path.Exists("/dev/fuse"), "/dev/fuse is missing: ChunkFs cannot mount (modprobe fuse)");
        Assert.True(OnPath("qemu-system-x86_64"),
            "qemu-system-x86_64 is not installed (scripts/test.sh installs qemu-system-x86)");
        var root = RepoRoot();
        var work = Path.Combine(root, ".work", "real-guest-test");
        Directory.CreateDirectory(work);
        var results = Path.Combine(work, "results.json");
        File.Delete(results);
        // snapctl and snapd as the other process tests run them: the build under test, not a published copy that
        // may be older (exec: the script stops and SIGKILLs snapd by the pid it started).
        var snapctl = await WrapperAsync(work, "snapctl", Snapctl.Dll);
        var snapd = await WrapperAsync(work, "snapd", SnapdProcess.Dll);

        var (exit, log) = await RunScriptAsync(Path.Combine(root, "guest", "real-guest-test.sh"), work, results,
            snapctl, snapd);
        var tail = Tail(log, 60);
        Assert.True(File.Exists(results), $"the script (exit {exit}) wrote no {results}\n{tail}");
        var text = await File.ReadAllTextAsync(results);
        output.WriteLine(text);
        var r = new Results(JsonDocument.Parse(text).RootElement, tail);

        r.Null("error"); // the step that could not go on, named by the script

        r.Less("build.fn.zeroChunks", "build.fn.chunks"); // RAM in the memory file, not in the migration stream
        r.Positive("build.fn.inheritedChunks");

        // userfaultfd: the placeholder QEMU was given is zeros, so every byte the guest saw came from the handler.
        foreach (var f in (string[])["ping", "work", "workAfterBalloon", "heapOk", "churnOk"]) r.True("uffd." + f);
        r.Equal("uffd.balloonDropMiB", 64);
        r.Equal("uffd.outcome", "exited");
        r.Equal("uffd.handlerExitCode", 0);
        r.Positive("uffd.faults");
        r.Positive("uffd.removeEvents");
        r.True("uffd.vmmPidIsQemu");
        r.True("uffd.placeholderStillZero");
        foreach (var f in (string[])["work", "work2", "heapOk"]) r.True("uffd.second." + f);

        // ChunkFs: QEMU maps DIR/fn MAP_PRIVATE.
        foreach (var f in (string[])["ping", "work", "workAfterBalloon", "heapOk", "churnOk"]) r.True("chunkfs." + f);
        r.Equal("chunkfs.balloonDropMiB", 64);
        r.Positive("chunkfs.reads");
        r.Equal("chunkfs.readErrors", 0);
        r.Equal("chunkfs.readAheadBytes", 0);
        r.Equal("chunkfs.mountExitCode", 0);
        r.True("chunkfs.unmounted");
        foreach (var f in (string[])["work", "work2", "heapOk"]) r.True("chunkfs.second." + f);
        r.Equal("chunkfs.second.readErrors", 0);
        r.True("chunkfs.plainQemu.work");
        r.True("chunkfs.plainQemu.heapOk");

        // Concurrent restores of one snapshot from one mount.
        foreach (var f in (string[])["bothRunning", "work1", "work2", "heapOk1", "heapOk2"]) r.True("concurrent." + f);
        r.Equal("concurrent.readErrors", 0);
        r.Equal("concurrent.mountExitCode", 0);

        // Prefetch from the plan merged out of the recorded runs, on both loaders.
        r.Positive("prefetch.plan.pages");
        foreach (var f in (string[])["work", "work2", "heapOk"]) r.True("prefetch.uffd." + f);
        r.Equal("prefetch.uffd.outcome", "exited");
        r.Positive("prefetch.uffd.prefetchedPages");
        r.Less("prefetch.uffd.faults", "prefetch.uffd.faultsWithout");
        foreach (var f in (string[])["work", "work2", "heapOk"]) r.True("prefetch.chunkfs." + f);
        r.Equal("prefetch.chunkfs.readErrors", 0);
        r.Positive("prefetch.chunkfs.prefetchedPages");
        r.Less("prefetch.chunkfs.reads", "prefetch.chunkfs.readsWithout");

        // (i) QEMU SIGKILLed under `snapctl restore`: the handler exits by itself.
        r.True("kills.qemuKilled.handlerExited");
        r.Below("kills.qemuKilled.handlerExitMs", 10_000);
        r.Equal("kills.qemuKilled.outcome", "exited");
        // (ii) `snapctl mount` SIGKILLed while QEMU is invoked: errors, never a hang; the next mount serves.
        r.True("kills.mountKilled.work");
        r.That(r.Bool("kills.mountKilled.qemuDiedByItself") || r.Bool("kills.mountKilled.inflightInvokeFailed")
               || r.Text("kills.mountKilled.nextInvoke") == "failed",
            "kills.mountKilled", "QEMU died (SIGBUS) or an invocation failed after the mount was killed");
        r.That(r.Text("kills.mountKilled.nextInvoke") != "answered", "kills.mountKilled.nextInvoke",
            "no answer from a VM whose memory server is dead");
        r.Below("kills.mountKilled.inflightInvokeMs", 40_000);
        r.Below("kills.mountKilled.nextInvokeMs", 40_000);
        r.Equal("kills.mountKilled.dStateTasks", 0);
        r.True("kills.mountKilled.deadMountErrors");
        r.Below("kills.mountKilled.deadMountStatMs", 5_000);
        r.True("kills.mountKilled.qemuGone");
        r.True("kills.mountKilled.nextMountCleared");
        r.True("kills.mountKilled.nextRestoreWork");
        // (iii) `snapctl restore` SIGKILLed: the VM freezes in its next fault, SIGKILL ends it, the next one works.
        r.True("kills.handlerKilled.work");
        r.True("kills.handlerKilled.invokeTimedOut");
        r.True("kills.handlerKilled.qemuAliveFrozen");
        r.Equal("kills.handlerKilled.dStateTasks", 0);
        r.True("kills.handlerKilled.qemuGoneAfterSigkill");
        r.True("kills.handlerKilled.nextRestoreWork");

        // snapd, the daemon: a uffd and a file restore through its API, then a VM that outlives a SIGKILLed snapd.
        r.Positive("snapd.startMs");
        foreach (var f in (string[])["ping", "work", "work2", "heapOk", "vmmPidIsQemu"]) r.True("snapd.uffd." + f);
        r.Equal("snapd.uffd.createdState", "ready");
        r.Below("snapd.uffd.readySeconds", 10);
        r.Equal("snapd.uffd.stateWhileRunning", "serving");
        r.Positive("snapd.uffd.faultsWhileRunning");
        r.Equal("snapd.uffd.state", "exited");
        r.Null("snapd.uffd.reason");
        r.Positive("snapd.uffd.faults");
        r.Below("snapd.uffd.endedAfterQuitMs", 15_000);
        foreach (var f in (string[])["ping", "work", "work2", "heapOk", "mountedWhenReady", "unmounted",
            "unknownAfterDelete"]) r.True("snapd.file." + f);
        r.Below("snapd.file.readySeconds", 10);
        r.Equal("snapd.file.stateWhileRunning", "serving");
        r.Equal("snapd.file.deletedState", "exited");
        r.Null("snapd.file.reason");
        foreach (var f in (string[])["workCold", "workBefore", "qemuAliveAfterKill", "pidChanged",
            "takenBackWhileServing", "inflightInvokeAnswered", "inflightChurnOk", "workAfter", "heapOk", "takenBack",
            "vmmPidIsQemu"]) r.True("snapd.restart." + f);
        r.Positive("snapd.restart.faultsBeforeKill");
        r.Equal("snapd.restart.stateAfterRestart", "serving");
        r.Positive("snapd.restart.faultsAfterRestart"); // the new daemon served the VM's faults
        r.Equal("snapd.restart.state", "exited");
        r.Null("snapd.restart.reason");
        r.Positive("snapd.restart.restartToAnswerMs");
        r.Positive("snapd.restart.killToServingMs");
        r.Positive("snapd.restart.invokeBeforeMs");
        r.Positive("snapd.restart.invokeAfterMs");
        r.Below("snapd.restart.inflightInvokeMs", 60_000);
        r.Equal("snapd.stopExitCode", 0);
        r.Equal("snapd.mountsLeft", 0);

        r.Equal("cleanup.leftBehind", 0);
        r.That(r.Get("failedChecks").GetArrayLength() == 0, "failedChecks", "none of the script's own checks failed");
        r.True("passed");
        Assert.True(exit == 0, $"the script exited {exit} although its results passed\n{tail}");
        Assert.True(MountTable.Find(Path.Combine(work, "mnt", "victim")) is null, "a mount was left behind");
    }

    private static async Task<string> WrapperAsync(string work, string name, string dll)
    {
        var path = Path.Combine(work, name);
        await File.WriteAllTextAsync(path, $"#!/bin/sh\nexec dotnet '{dll}' \"$@\"\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    private static async Task<(int Exit, string Log)> RunScriptAsync(string script, string work, string results,
        string snapctl, string snapd)
    {
        // SIGINT/SIGTERM at their defaults: a test host may ignore them, children inherit that, and the script
        // stops its mounts with SIGTERM.
        var psi = new ProcessStartInfo("env")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in (string[])["--default-signal=INT,TERM", "bash", script, work, results])
            psi.ArgumentList.Add(a);
        psi.Environment["SNAPCTL"] = snapctl;
        psi.Environment["SNAPD"] = snapd;
        var log = new StringBuilder();
        using var p = new Process { StartInfo = psi };
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.AppendLine(e.Data); };
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        using var limit = new CancellationTokenSource(Limit);
        try
        {
            await p.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            // SIGTERM first: the script's trap stops every QEMU, snapctl and mount it started.
            LibC.kill(p.Id, 15);
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(90));
            try { await p.WaitForExitAsync(grace.Token); }
            catch (OperationCanceledException) { p.Kill(entireProcessTree: true); }
            lock (log) Assert.Fail($"the script did not finish within {Limit}\n{Tail(log.ToString(), 60)}");
        }
        p.WaitForExit(); // the output readers drain
        lock (log) return (p.ExitCode, log.ToString());
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "guest", "real-guest-test.sh"))) return dir.FullName;
        throw new FileNotFoundException("guest/real-guest-test.sh not found above " + AppContext.BaseDirectory);
    }

    private static bool OnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':')
            .Any(d => d.Length > 0 && File.Exists(Path.Combine(d, program)));

    private static string Tail(string log, int lines)
    {
        var all = log.Split('\n');
        return "--- the script's output, last lines ---\n" + string.Join('\n', all[Math.Max(0, all.Length - lines)..]);
    }

    /// <summary>The results JSON, read by dotted paths; every failed assertion names its path and value and
    /// carries the script's output tail.</summary>
    private sealed class Results(JsonElement root, string tail)
    {
        public JsonElement Get(string path)
        {
            var e = root;
            foreach (var part in path.Split('.'))
            {
                if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(part, out e))
                    Assert.Fail($"{path} is missing from the results\n{tail}");
            }
            return e;
        }

        public void That(bool ok, string path, string expected)
        {
            if (!ok) Assert.Fail($"{path}: expected {expected}; the results say {Get(path).GetRawText()}\n{tail}");
        }

        public bool Bool(string path) => Get(path).ValueKind == JsonValueKind.True;
        public string? Text(string path) =>
            Get(path) is { ValueKind: JsonValueKind.String } e ? e.GetString() : Get(path).GetRawText();
        private double Number(string path) => Get(path) is { ValueKind: JsonValueKind.Number } e
            ? e.GetDouble() : double.NaN;

        public void True(string path) => That(Bool(path), path, "true");
        public void Null(string path) => That(Get(path).ValueKind == JsonValueKind.Null, path, "null");
        public void Equal(string path, string want) => That(Text(path) == want, path, $"\"{want}\"");
        public void Equal(string path, long want) => That(Number(path) == want, path,
            want.ToString(CultureInfo.InvariantCulture));
        public void Positive(string path) => That(Number(path) > 0, path, "> 0");
        public void Below(string path, long limit) => That(Number(path) < limit, path,
            "< " + limit.ToString(CultureInfo.InvariantCulture));
        public void Less(string a, string b) => That(Number(a) < Number(b), a, $"< {b} ({Get(b).GetRawText()})");
    }
}
