using System.Diagnostics;
using Snapshots.ChunkFs.Native;

namespace Snapshots.Tests;

/// <summary>SIGINT and SIGTERM in the middle of snapctl's long commands: exit 130 or 143 with one line, no stack
/// trace, never 134, and nothing half-written (no manifest, no output file, no temp file, no socket).</summary>
[Trait("Category", Category.Process)]
public class CliSignalTests
{
    private static string RandomImage(TestStore t, long size)
    {
        var path = t.Path_("random.img");
        var rng = new Random(7);
        var block = new byte[1 << 20];
        using var f = File.Create(path);
        for (long done = 0; done < size; done += block.Length)
        {
            rng.NextBytes(block);
            f.Write(block);
        }
        return path;
    }

    /// <summary>Starts snapctl with SIGINT and SIGTERM at their defaults (a test host may run with SIGINT
    /// ignored, and children inherit that), waits until <paramref name="underWay"/> says the work has begun, then
    /// signals it. Null when the command finished before the signal could land.</summary>
    private static async Task<Snapctl.Result> InterruptAsync(TestStore t, int signal, Func<bool> underWay,
        params string[] args) => (await InterruptTimedAsync(t, signal, _ => underWay(), args)).Result;

    /// <summary>As <see cref="InterruptAsync"/>, <paramref name="underWay"/> given snapctl's pid; also says how
    /// long snapctl took to exit after the signal.</summary>
    private static async Task<(Snapctl.Result Result, TimeSpan AfterSignal)> InterruptTimedAsync(TestStore t,
        int signal, Func<int, bool> underWay, params string[] args)
    {
        var psi = new ProcessStartInfo("env")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in (string[])["--default-signal=INT,TERM", "dotnet", Snapctl.Dll, .. args])
            psi.ArgumentList.Add(a);
        psi.Environment["SNAPSHOTS_STORE"] = t.StoreDir;
        psi.Environment["SNAPSHOTS_KEYRING"] = t.KeyringDir;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        var clock = Stopwatch.StartNew();
        while (!p.HasExited && !underWay(p.Id) && clock.Elapsed < TimeSpan.FromSeconds(60)) await Task.Delay(1);
        // env execs dotnet in place: the pid is snapctl's. A command that already finished cannot be signalled.

        LibC.kill(p.Id, signal);
        var signalled = Stopwatch.StartNew();
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await p.WaitForExitAsync(limit.Token);
        var afterSignal = signalled.Elapsed;
        return (new Snapctl.Result(p.ExitCode, await stdout, await stderr), afterSignal);
    }

    /// <summary>True while process <paramref name="pid"/> holds a chunk file of the store open: its chunk loop is
    /// under way (and not yet done).</summary>
    private static bool ReadingChunks(TestStore t, int pid)
    {
        var chunks = Path.Combine(t.StoreDir, "chunks") + "/";
        try
        {
            foreach (var fd in Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd"))
            {
                try
                {
                    if (new FileInfo(fd).LinkTarget?.StartsWith(chunks, StringComparison.Ordinal) == true) return true;
                }
                catch (IOException) { } // closed meanwhile
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return false;
    }

    /// <summary>Either the command finished before the signal (exit 0) or it stopped at it: 128 + the signal, one
    /// line, no stack trace. Never 134.</summary>
    private static bool Interrupted(Snapctl.Result r, int signal)
    {
        Assert.DoesNotContain("   at ", r.Stderr);
        if (r.ExitCode == 0) return false;
        Assert.Equal(128 + signal, r.ExitCode);
        Assert.Equal("snapctl: error: interrupted", r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]);
        return true;
    }

    private static string[] TempFiles(string dir) =>
        Directory.GetFiles(dir, "*.tmp*", SearchOption.AllDirectories);

    [Theory]
    [InlineData(2)]
    [InlineData(15)]
    public async Task Build_export_and_a_waiting_restore_stop_cleanly(int signal)
    {
        using var t = new TestStore();
        var img = RandomImage(t, 512L << 20);
        string Leases() => Path.Combine(t.StoreDir, "leases");

        var build = await InterruptAsync(t, signal,
            () => Directory.Exists(Leases()) && Directory.GetFiles(Leases()).Length > 0,
            "build", "--name", "victim", "--layer", "os", "--memory", img);
        // Nothing half-written: interrupted, no manifest; finished first, a whole one.
        Assert.Equal(!Interrupted(build, signal), await t.Catalog.ExistsAsync("victim"));
        Assert.Empty(TempFiles(t.StoreDir));

        await t.BuildAsync("whole", img);
        var target = t.Path_("whole.out");
        var export = await InterruptAsync(t, signal,
            () => Directory.GetFiles(t.Dir, "whole.out*").Length > 0,
            "export", "--name", "whole", "--out", target);
        if (Interrupted(export, signal)) Assert.Empty(Directory.GetFiles(t.Dir, "whole.out*"));
        else Assert.True(TestStore.SameBytes(img, target));
        Assert.Empty(TempFiles(t.Dir));

        // A restore waiting for its VMM is always mid-way.
        var socket = t.Path_("wait.sock");
        var restore = await InterruptAsync(t, signal, () => File.Exists(socket),
            "restore", "--name", "whole", "--uffd-socket", socket);
        Assert.True(Interrupted(restore, signal));
        Assert.False(File.Exists(socket));
    }

    // Found by a reviewer: export, verify and warm ignored SIGINT and SIGTERM (their chunk loops never looked at the
    // token): they ran to the end, printed success and exited 0; export with --cache-dir hit the 10 s forced stop,
    // printed nothing on stdout despite --json and left its temp file. Signalled while their chunk loop runs (a
    // chunk file open), each must stop promptly with 130/143 and one JSON error document, leaving no temp file.
    [Fact]
    public async Task Export_verify_and_warm_stop_promptly_in_their_chunk_loops()
    {
        using var t = new TestStore();
        var img = RandomImage(t, 512L << 20);
        await t.BuildAsync("big", img);
        var target = t.Path_("big.out");
        // Under way: a chunk file of the store open, or the export's temp file or the warm-up's first cache entry
        // there (each made just before the chunk loop starts, or in it).
        bool Began(int pid) => ReadingChunks(t, pid) || Directory.GetFiles(t.Dir, "big.out.*").Length > 0
            || (Directory.Exists(t.Path_("cache-w"))
                && Directory.EnumerateFiles(t.Path_("cache-w"), "*", SearchOption.AllDirectories).Any());
        var cases = new (int Signal, string[] Args)[]
        {
            (2, ["export", "--name", "big", "--out", target, "--json"]),
            (15, ["export", "--name", "big", "--out", target, "--cache-dir", t.Path_("cache-e"), "--json"]),
            (2, ["verify", "--name", "big", "--json"]),
            (15, ["warm", "--name", "big", "--cache-dir", t.Path_("cache-w"), "--json"]),
        };
        foreach (var (signal, args) in cases)
        {
            var (r, afterSignal) = await InterruptTimedAsync(t, signal, Began, args);
            var what = $"{string.Join(' ', args)}: exit {r.ExitCode} {afterSignal.TotalSeconds:F2} s after "
                + $"signal {signal}\n{r.Stderr}";
            Assert.True(r.ExitCode == 128 + signal, what);
            Assert.True(Interrupted(r, signal), what);
            Assert.True(afterSignal < TimeSpan.FromSeconds(3), what); // the forced stop is at 10 s
            var error = r.Json.GetProperty("error");
            Assert.Equal("interrupted", error.GetProperty("kind").GetString());
            Assert.Empty(Directory.GetFiles(t.Dir, "big.out*"));
            Assert.Empty(TempFiles(t.Dir));
        }
    }
}
