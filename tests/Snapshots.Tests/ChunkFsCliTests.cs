using System.Diagnostics;
using System.Text;
using Snapshots.ChunkFs.Fuse;
using Snapshots.ChunkFs.Native;
using Snapshots.Prefetch;

namespace Snapshots.Tests;

/// <summary>`snapctl mount` as a process: ready line, SIGTERM, SIGKILL with a reader on the mount, the next mount
/// after a crash, and refusals.</summary>
[Trait("Category", Category.Process)]
public sealed class ChunkFsCliTests
{
    /// <summary>A running `snapctl mount` (SIGINT/SIGTERM at their defaults), its stderr collected as it comes.
    /// </summary>
    internal sealed class MountProcess : IDisposable
    {
        private readonly StringBuilder _stderr = new();
        public required Process Process { get; init; }
        public required Task<string> Stdout { get; init; }
        public required string MountPoint { get; init; }

        public static MountProcess Start(TestStore t, params string[] args)
        {
            var psi = new ProcessStartInfo("env")
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            };
            string[] argv = ["--default-signal=INT,TERM", "dotnet", Snapctl.Dll, "mount", "--json", .. args];
            foreach (var a in argv)
                psi.ArgumentList.Add(a);
            psi.Environment["SNAPSHOTS_STORE"] = t.StoreDir;
            psi.Environment["SNAPSHOTS_KEYRING"] = t.KeyringDir;
            var p = Process.Start(psi)!;
            var dir = args[Array.IndexOf(args, "--mountpoint") + 1];
            var m = new MountProcess { Process = p, Stdout = p.StandardOutput.ReadToEndAsync(), MountPoint = dir };
            p.ErrorDataReceived += (_, e) => { lock (m._stderr) m._stderr.AppendLine(e.Data); };
            p.BeginErrorReadLine();
            return m;
        }

        public string Stderr { get { lock (_stderr) return _stderr.ToString(); } }

        public async Task WaitReadyAsync()
        {
            var clock = Stopwatch.StartNew();
            while (!Stderr.Contains("snapctl: mounted ", StringComparison.Ordinal))
            {
                Assert.False(Process.HasExited, $"snapctl mount exited {SafeExit()}: {Stderr}");
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"no ready line in 60 s: {Stderr}");
                await Task.Delay(10);
            }
        }

        private int SafeExit() => Process.HasExited ? Process.ExitCode : -1;

        public async Task<int> ExitAsync(int signal)
        {
            LibC.kill(Process.Id, signal);
            using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await Process.WaitForExitAsync(limit.Token);
            return Process.ExitCode;
        }

        public void Dispose()
        {
            if (!Process.HasExited) Process.Kill();
            Process.WaitForExit(10_000);
            Process.Dispose();
            // A failed test must not leave a dead mount behind for the next run.
            if (!Kept && MountTable.Find(Path.GetFullPath(MountPoint)) is not null)
                LibC.umount2(MountPoint, LibC.MNT_DETACH);
        }

        /// <summary>Set by a test that checks the dead mount a kill leaves.</summary>
        public bool Kept { get; set; }
    }

    private static async Task<string> ImageAsync(TestStore t)
    {
        var img = t.Image("os.img", size: 32L << 20);
        await t.BuildAsync("os", img);
        return img;
    }

    [Fact]
    public async Task Mount_serves_until_SIGTERM_then_unmounts_writes_its_log_and_reports()
    {
        using var t = new TestStore();
        var img = await ImageAsync(t);
        var dir = Directory.CreateDirectory(t.Path_("mnt")).FullName;
        var log = t.Path_("os.log");
        using var m = MountProcess.Start(t, "--name", "os", "--mountpoint", dir, "--record", log);
        await m.WaitReadyAsync();
        Assert.Equal(File.ReadAllBytes(img), await File.ReadAllBytesAsync(Path.Combine(dir, "os")));
        Assert.Equal(0, await m.ExitAsync(15)); // SIGTERM is how a mount is stopped: a clean exit
        Assert.Null(MountTable.Find(dir));
        Assert.Empty(Directory.GetFileSystemEntries(dir));
        var json = System.Text.Json.JsonDocument.Parse(await m.Stdout).RootElement;
        var file = json.GetProperty("files")[0];
        Assert.Equal("os", file.GetProperty("name").GetString());
        Assert.Equal(new FileInfo(img).Length, file.GetProperty("readBytes").GetInt64());
        Assert.Equal(0, json.GetProperty("readAheadBytes").GetInt32()); // recording reads page-exact
        var recorded = AccessLog.Load(log);
        Assert.Equal(new FileInfo(img).Length / 4096, recorded.Touches.Length); // every page read once
    }

    [Fact]
    public async Task A_killed_mount_fails_its_reader_and_the_next_mount_clears_it()
    {
        using var t = new TestStore();
        var img = await ImageAsync(t);
        var dir = Directory.CreateDirectory(t.Path_("mnt")).FullName;
        try
        {
            await KillWithAReaderAsync(t, dir);
            Assert.Equal("fuse.chunkfs", MountTable.Find(dir)?.FsType); // left behind, dead
            using var again = MountProcess.Start(t, "--name", "os", "--mountpoint", dir);
            await again.WaitReadyAsync();
            Assert.Contains("cleared a dead ChunkFs mount", again.Stderr, StringComparison.Ordinal);
            Assert.Equal(File.ReadAllBytes(img), await File.ReadAllBytesAsync(Path.Combine(dir, "os")));
            Assert.Equal(0, await again.ExitAsync(15));
            Assert.Null(MountTable.Find(dir));
        }
        finally
        {
            if (MountTable.Find(dir) is not null) LibC.umount2(dir, LibC.MNT_DETACH);
        }
    }

    private static async Task KillWithAReaderAsync(TestStore t, string dir)
    {
        using (var m = MountProcess.Start(t, "--name", "os", "--mountpoint", dir, "--read-ahead", "0"))
        {
            m.Kept = true;
            await m.WaitReadyAsync();
            // A reader that keeps reading pages it has not read yet, as a VM faulting on new memory does.
            var psi = new ProcessStartInfo("/usr/bin/python3")
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            };
            foreach (var a in (string[])["-c", """
                import os, sys, time
                fd = os.open(sys.argv[1], os.O_RDONLY)
                off = 0
                while True:
                    try:
                        os.pread(fd, 4096, off)
                    except OSError as e:
                        print("error", e.errno, flush=True); sys.exit(3)
                    print("read", off, flush=True)
                    off = (off + 4096 * 7) % (32 << 20)
                    time.sleep(0.002)
                """, Path.Combine(dir, "os")])
                psi.ArgumentList.Add(a);
            using var reader = Process.Start(psi)!;
            var output = reader.StandardOutput.ReadToEndAsync();
            var errors = reader.StandardError.ReadToEndAsync();
            await Task.Delay(300);
            Assert.False(reader.HasExited, "the reader stopped before the mount was killed");
            await m.ExitAsync(9);
            using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            await reader.WaitForExitAsync(limit.Token); // an error, never a hang
            Assert.True(reader.ExitCode == 3, $"reader exited {reader.ExitCode}: {await errors}");
            Assert.Contains("read ", await output, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task An_unknown_snapshot_or_a_missing_mountpoint_is_an_error_naming_it_and_nothing_is_mounted()
    {
        using var t = new TestStore();
        await ImageAsync(t);
        var dir = Directory.CreateDirectory(t.Path_("mnt")).FullName;
        var r = await Snapctl.RunAsync(t, "mount", "--name", "nope", "--mountpoint", dir);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("'nope'", r.Stderr, StringComparison.Ordinal);
        Assert.Null(MountTable.Find(dir));
        r = await Snapctl.RunAsync(t, "mount", "--name", "os", "--mountpoint", t.Path_("missing"));
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("does not exist", r.Stderr, StringComparison.Ordinal);
        r = await Snapctl.RunAsync(t, "mount", "--name", "os", "--mountpoint", dir, "--read-ahead", "5000");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--read-ahead", r.Stderr, StringComparison.Ordinal);
    }
}
