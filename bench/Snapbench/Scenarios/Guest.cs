using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Snapshots.Snapbench;

/// <summary>What a script said: exit code (-1: killed at its deadline), stdout, stderr.</summary>
public sealed record ScriptRun(int Code, string Out, string Err)
{
    public string Tail => string.Join(" | ", Err.Split('\n', StringSplitOptions.RemoveEmptyEntries).TakeLast(3));
}

/// <summary>The real guest of guest/ (a Debian kernel, busybox and python3 under QEMU microvm, TCG here): its
/// assets (guest/build.sh) and its os and function snapshots (guest/vm.sh make-snapshots), made with the repository's
/// own scripts. The snapshots are kept in .work/snapbench-guest beside the assets and made again only when the
/// assets or vm.sh change: a boot and the runtime's start are most of a quick run's cost otherwise.</summary>
public sealed class GuestSnapshots
{
    private GuestSnapshots(string dir) => Dir = dir;

    public string Dir { get; }
    public string Os => Path.Combine(Dir, "os");
    public string Function => Path.Combine(Dir, "function");

    /// <summary>True when the snapshots of an earlier run were reused.</summary>
    public bool Reused { get; private set; }
    public double BuildMs { get; private set; }
    public double SnapshotsMs { get; private set; }

    public static string VmScript(Bench bench) => Path.Combine(bench.Tools.Root, "guest", "vm.sh");

    public static async Task<GuestSnapshots> PrepareAsync(Bench bench, CancellationToken ct)
    {
        string root = bench.Tools.Root;
        string assets = Environment.GetEnvironmentVariable("GUEST_ASSETS") ?? Path.Combine(root, ".work", "guest");
        var g = new GuestSnapshots(Path.Combine(root, ".work", "snapbench-guest"));
        var clock = Stopwatch.StartNew();
        // build.sh skips when its .debs and inputs are unchanged (about 1 s); a clean machine downloads them once.
        var build = await Script.RunAsync(bench, Path.Combine(root, "guest", "build.sh"), [assets], null,
            TimeSpan.FromMinutes(20), ct);
        if (build.Code != 0) throw new InvalidOperationException($"guest/build.sh exited {build.Code}: {build.Tail}");
        g.BuildMs = clock.Elapsed.TotalMilliseconds;
        Directory.CreateDirectory(g.Dir);
        // Two runs on one machine share the cache: one makes the snapshots, the other waits for them.
        using var lockFile = await LockAsync(Path.Combine(g.Dir, ".lock"), TimeSpan.FromMinutes(10), ct);
        // The QEMU too: a device state saved by another version may not load.
        var qemu = await Script.RunAsync(bench, "qemu-system-x86_64", ["--version"], null, TimeSpan.FromSeconds(30),
            ct);
        if (qemu.Code != 0) throw new InvalidOperationException($"qemu-system-x86_64 --version: {qemu.Tail}");
        string key = Key(assets, VmScript(bench), qemu.Out);
        string keyFile = Path.Combine(g.Dir, "key");
        bool complete = ((string[])[g.Os, g.Function]).All(d =>
            ((string[])["memory", "vmstate", "meta.json"]).All(f => File.Exists(Path.Combine(d, f))));
        if (complete && File.Exists(keyFile) && await File.ReadAllTextAsync(keyFile, ct) == key)
        {
            g.Reused = true;
            return g;
        }
        File.Delete(keyFile);
        clock.Restart();
        string run = Path.Combine(g.Dir, "run");
        var env = new Dictionary<string, string> { ["GUEST_ASSETS"] = assets };
        ScriptRun made;
        try
        {
            made = await Script.RunAsync(bench, VmScript(bench), ["make-snapshots", g.Dir], env,
                TimeSpan.FromMinutes(10), ct);
        }
        finally
        {
            // make-snapshots stops its QEMU itself, unless it was killed at its deadline.
            GuestVm.Kill(run);
        }
        if (made.Code != 0)
            throw new InvalidOperationException($"vm.sh make-snapshots exited {made.Code}: {made.Tail}");
        File.Delete(Path.Combine(run, "ram.mem"));
        g.SnapshotsMs = clock.Elapsed.TotalMilliseconds;
        await File.WriteAllTextAsync(keyFile, key, ct);
        return g;
    }

    /// <summary>QEMU's version, the assets' and vm.sh's contents (the snapshots' kernel, initramfs and command line
    /// come from them).</summary>
    private static string Key(string assets, string vmScript, string qemuVersion)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(Encoding.UTF8.GetBytes(qemuVersion));
        foreach (var f in (string[])[Path.Combine(assets, "vmlinux"), Path.Combine(assets, "initramfs.cpio.gz"),
            vmScript])
        {
            sha.AppendData(Encoding.UTF8.GetBytes(f + "\n"));
            sha.AppendData(File.ReadAllBytes(f));
        }
        return Convert.ToHexString(sha.GetHashAndReset());
    }

    private static async Task<FileStream> LockAsync(string path, TimeSpan limit, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (clock.Elapsed < limit)
            {
                await Task.Delay(200, ct);
            }
        }
    }
}

/// <summary>A script run as a process of the bench's own, with a deadline: past it the process is killed.</summary>
public static class Script
{
    public static async Task<ScriptRun> RunAsync(Bench bench, string file, string[] args,
        IReadOnlyDictionary<string, string>? env, TimeSpan limit, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        var p = bench.Start(psi);
        var stdout = p.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderr = p.StandardError.ReadToEndAsync(CancellationToken.None);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(limit);
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            // Its children (python, QEMU's launch) have deadlines of their own; QEMU is the caller's to kill.
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync(CancellationToken.None);
            ct.ThrowIfCancellationRequested();
            return new ScriptRun(-1, await stdout, $"{await stderr}\nkilled after {limit.TotalSeconds} s");
        }
        return new ScriptRun(p.ExitCode, await stdout, await stderr);
    }
}

/// <summary>One restored guest: its QEMU (daemonized by vm.sh, so not a child of the bench) found by the pidfile
/// of its run directory and killed only if its command line names that directory's QMP socket; requests to the
/// function over the serial socket, as guest/serial.py sends them, timed here without a Python start.</summary>
public static class GuestVm
{
    private const string Answer = "@@ANSWER ";
    private const string Exited = "@@INIT runtime exited";

    /// <summary>The QEMU of RUNDIR if it runs (a zombie or a recycled pid is not it).</summary>
    public static int? Pid(string runDir)
    {
        try
        {
            if (!int.TryParse(File.ReadAllText(Path.Combine(runDir, "qemu.pid")).Trim(), out int pid)) return null;
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            if (stat[(stat.LastIndexOf(')') + 2)..].StartsWith('Z')) return null;
            string cmd = File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ');
            return cmd.Contains(Path.Combine(runDir, "qmp.sock"), StringComparison.Ordinal) ? pid : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>SIGKILL the QEMU of RUNDIR, if it runs.</summary>
    public static void Kill(string runDir)
    {
        if (Pid(runDir) is not { } pid) return;
        try
        {
            using var p = Process.GetProcessById(pid);
            p.Kill();
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
        {
            // Gone meanwhile.
        }
    }

    /// <summary>vm.sh stop (QMP quit, SIGKILL when QEMU does not answer), then SIGKILL by the pidfile whatever
    /// vm.sh did; until the process is gone (a QEMU frozen in a fault ignores everything but SIGKILL).</summary>
    public static async Task StopAsync(Bench bench, string runDir, CancellationToken ct)
    {
        if (Pid(runDir) is null) return;
        await Script.RunAsync(bench, GuestSnapshots.VmScript(bench), ["stop", runDir], null,
            TimeSpan.FromSeconds(20), ct);
        var clock = Stopwatch.StartNew();
        while (Pid(runDir) is not null && clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            Kill(runDir);
            await Task.Delay(50, CancellationToken.None);
        }
    }

    /// <summary>One request to the function (JSON with an "id"); the answer with that id. Throws
    /// <see cref="TimeoutException"/> past LIMIT, or when the runtime is gone or the socket closes.</summary>
    public static async Task<JsonElement> RequestAsync(string runDir, string json, TimeSpan limit,
        CancellationToken ct)
    {
        long id = JsonDocument.Parse(json).RootElement.GetProperty("id").GetInt64();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(limit);
        try
        {
            return await RequestAsync(Path.Combine(runDir, "serial.sock"), json, id, cts.Token);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TimeoutException($"no answer within {limit.TotalSeconds} s");
        }
    }

    private static async Task<JsonElement> RequestAsync(string sock, string json, long id, CancellationToken ct)
    {
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        // The chardev takes one client at a time: connect, send, read the answer, close.
        while (true)
        {
            try
            {
                await s.ConnectAsync(new UnixDomainSocketEndPoint(sock), ct);
                break;
            }
            catch (SocketException)
            {
                await Task.Delay(20, ct);
            }
        }
        await s.SendAsync(Encoding.UTF8.GetBytes(json + "\n"), ct);
        var buf = new byte[65536];
        var line = new StringBuilder();
        while (true)
        {
            int n = await s.ReceiveAsync(buf, ct);
            if (n == 0) throw new TimeoutException("QEMU closed the serial socket");
            line.Append(Encoding.UTF8.GetString(buf, 0, n));
            string text = line.ToString();
            int nl;
            while ((nl = text.IndexOf('\n', StringComparison.Ordinal)) >= 0)
            {
                string l = text[..nl].TrimEnd('\r');
                text = text[(nl + 1)..];
                if (l.Contains(Exited, StringComparison.Ordinal))
                    throw new TimeoutException($"the runtime is gone: {l.Trim()}");
                int i = l.IndexOf(Answer, StringComparison.Ordinal);
                if (i < 0) continue;
                try
                {
                    var a = JsonDocument.Parse(l[(i + Answer.Length)..]).RootElement.Clone();
                    if (a.ValueKind == JsonValueKind.Object && a.TryGetProperty("id", out var got)
                        && got.TryGetInt64(out long v) && v == id)
                        return a;
                }
                catch (JsonException)
                {
                    // A kernel message cut into the line: not ours to judge (serial.py does the same).
                }
            }
            line.Clear().Append(text);
        }
    }

    /// <summary>The number after "launch->running " in vm.sh restore's line (ms), if it says one.</summary>
    public static double? LaunchMs(string stdout)
    {
        const string Key = "launch->running ";
        int i = stdout.IndexOf(Key, StringComparison.Ordinal);
        if (i < 0) return null;
        var digits = new string([.. stdout[(i + Key.Length)..].TakeWhile(char.IsDigit)]);
        return double.TryParse(digits, CultureInfo.InvariantCulture, out var ms) ? ms : null;
    }
}
