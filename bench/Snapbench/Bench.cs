using System.Diagnostics;
using Snapshots.Host;
using Snapshots.Snapbench.Services;
using Snapshots.Store.Images;
using Snapshots.Store.Keys;
using Snapshots.Store.Layers;
using Snapshots.Store.Manifests;
using Snapshots.Store.Origin;

namespace Snapshots.Snapbench;

/// <summary>One `snapbench run`: its output directory, its store (built in-process through the host library), the
/// tools it starts (replay-vmm, snapd) and every process it started, killed by pid when it ends.</summary>
public sealed class Bench : IAsyncDisposable
{
    public const string Tenant = "acme";

    /// <summary>The function snapshots (fn1..fnK on the os layer), tenant <see cref="Tenant"/>.</summary>
    public const int Functions = 4;

    private readonly List<Process> _children = [];
    private readonly List<SnapdDaemon> _daemons = [];
    private FileBlobStore? _blobs;
    private S3Origin? _s3;

    public Bench(string output, bool quick, int restores, int seed)
    {
        Out = output;
        Quick = quick;
        Restores = restores;
        Seed = seed;
        Work = Path.Combine(output, "work");
        Tools = Tools.Find();
        // snapd refuses a state directory whose restore sockets would pass the 107-byte limit of Unix socket paths
        // (33 bytes of socket name under it): a long --out puts the daemons' state in a short directory of its own.
        // That directory is made now, under a random name, owner-only (a fixed /tmp name could be made first by
        // another user, who would then own the daemons' sockets).
        StateRoot = Work.Length + 1 + MaxStateName + 33 <= 107 ? Work
            : Directory.CreateTempSubdirectory("snapbench-").FullName;
    }

    public string Out { get; }
    public string Work { get; }

    /// <summary>Where the daemons' state directories are: <see cref="Work"/>, or a short directory in /tmp when
    /// the output directory's path is too long for snapd's sockets.</summary>
    public string StateRoot { get; }

    /// <summary>The longest state directory name a scenario gives <see cref="StartSnapdAsync"/>.</summary>
    public const int MaxStateName = 20;
    public bool Quick { get; }
    public int Restores { get; }
    public int Seed { get; }
    public Tools Tools { get; }
    public string StoreDir => Path.Combine(Work, "store");
    public string KeyringDir => Path.Combine(Work, "keyring");

    /// <summary>Size of every image: small with --quick.</summary>
    public long ImageSize => Quick ? 16L << 20 : 64L << 20;

    public long Pages => ImageSize / 4096;

    public string Image(string snapshot) => Path.Combine(Work, snapshot + ".img");

    public string WorkPath(string name) => Path.Combine(Work, name);

    /// <summary>The file in <see cref="Work"/> saying snapbench made it: only such a directory is ever deleted.
    /// </summary>
    public const string WorkMarker = ".snapbench-work";

    /// <summary>Why DIR cannot be a run's output directory (null: it can): not a directory, or a DIR/work that
    /// snapbench did not make (a run deletes DIR/work at its start and end: never someone's own files).</summary>
    public static string? RefuseOutput(string dir)
    {
        if (File.Exists(dir) || (Path.Exists(dir) && !Directory.Exists(dir))) return "exists and is not a directory";
        string work = Path.Combine(dir, "work");
        if (Path.Exists(work) && !File.Exists(Path.Combine(work, WorkMarker)))
            return $"{work} exists and was not made by snapbench (a run deletes it): choose another --out";
        return null;
    }

    /// <summary>A run killed with SIGKILL (a CI timeout, the OOM killer) could not stop its services: s3rver and
    /// Redis nodes keep running, their pid files in the old work directory. Before that directory goes, the
    /// services' own scripts stop them, by those pid files (each checks the pid is still alive).</summary>
    private async Task StopLeftoverServicesAsync()
    {
        var stops = new List<(string Script, Dictionary<string, string> Env)>();
        if (File.Exists(Path.Combine(Work, "s3rver", "s3rver.pid")))
            stops.Add(("s3rver.sh", new() { ["S3_STATE"] = Path.Combine(Work, "s3rver") }));
        foreach (var dir in Directory.GetDirectories(Work, "redis.*"))
            stops.Add(("redis-cluster.sh", new() { ["REDIS_STATE"] = dir }));
        foreach (var (script, env) in stops)
        {
            try
            {
                Log($"stopping what an earlier run left: {script} ({env.Values.First()})");
                await ServiceScript.RunAsync(this, script, "stop", env, TimeSpan.FromSeconds(60));
            }
            catch (Exception ex) when (ex is InvalidOperationException or TimeoutException)
            {
                Log($"could not stop {script}: {ex.Message}");
            }
        }
        // Its daemons and VMMs: the processes whose arguments name a path in that work directory (--state-dir,
        // --image): no one else's.
        foreach (var proc in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(proc), out int pid) || pid == Environment.ProcessId) continue;
            string[] args;
            try
            {
                args = File.ReadAllText(Path.Combine(proc, "cmdline")).Split('\0');
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                continue; // gone meanwhile
            }
            if (!args.Any(a => a.StartsWith(Work + "/", StringComparison.Ordinal))) continue;
            Log($"killing pid {pid} an earlier run left: {string.Join(' ', args).Trim()}");
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
    }

    public async Task<int> RunAsync(IReadOnlyList<Scenario> scenarios, CancellationToken ct)
    {
        if (Directory.Exists(Work))
        {
            await StopLeftoverServicesAsync();
            Directory.Delete(Work, recursive: true);
        }
        Directory.CreateDirectory(Work);
        await File.WriteAllTextAsync(Path.Combine(Work, WorkMarker), "made by snapbench: deleted by its runs\n", ct);
        if (StateRoot != Work)
        {
            Directory.CreateDirectory(StateRoot,
                UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            Log($"snapd state in {StateRoot} ({Work} is too long a path for snapd's sockets)");
        }
        var report = new Report(this);
        Log($"snapbench: {string.Join(", ", scenarios.Select(s => s.Name))} into {Out} (restores {Restores}, "
            + $"seed {Seed}{(Quick ? ", quick" : "")})");
        try
        {
            await BuildStoreAsync(ct);
            await LiveProgress.RunAsync(Restores, async progress =>
            {
                foreach (var s in scenarios) await RunScenarioAsync(s, report, progress, ct);
            });
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            report.Errors.Add($"{ex.GetType().Name}: {ex.Message}");
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            report.Errors.Add("interrupted (SIGINT or SIGTERM): the figures are partial");
        }
        await report.WriteAsync();
        Log($"snapbench: {(report.Ok ? "ok" : "FAILED")}; {Path.Combine(Out, "report.md")}");
        return ct.IsCancellationRequested ? 130 : report.Ok ? 0 : 1;
    }

    private async Task RunScenarioAsync(Scenario s, Report report, LiveProgress progress, CancellationToken ct)
    {
        var result = new ScenarioResult(s.Name, s.Description);
        report.Scenarios.Add(result);
        progress.Scenario(result);
        var clock = Stopwatch.StartNew();
        Log($"scenario {s.Name}: {s.Description}");
        try
        {
            await s.RunAsync(this, result, ct);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            result.Errors.Add($"{ex.GetType().Name}: {ex.Message}");
        }
        catch (OperationCanceledException)
        {
            result.Errors.Add("interrupted");
            KillChildren(); // the VMMs first: a draining snapd would wait for them
            throw;
        }
        finally
        {
            await StopDaemonsAsync();
            result.Seconds = clock.Elapsed.TotalSeconds; // an interrupted or failed scenario's time too
        }
        progress.Ended(result);
        Log($"scenario {s.Name}: {(result.Ok ? "ok" : "FAILED")} in {result.Seconds:F1} s"
            + string.Concat(result.Errors.Take(5).Select(e => "\n  " + e)));
    }

    /// <summary>A file store of an os layer and <see cref="Functions"/> function layers on it (tenant acme), from
    /// generated VM-like images, as the tests' TestStore builds them.</summary>
    private async Task BuildStoreAsync(CancellationToken ct)
    {
        _blobs = new FileBlobStore(StoreDir, create: true);
        await StoreMarker.InitAsync(_blobs, ct);
        var host = new SnapshotHost(_blobs, new LocalKeyring(KeyringDir));
        VmImageGenerator.Write(new VmImageSpec { Size = ImageSize, OsSeed = 1 }, Image("os"), null, ct);
        await host.BuildAsync(
            new BuildRequest { Name = "os", MemoryPath = Image("os"), Layer = LayerKind.Os }, null, ct);
        for (int k = 1; k <= Functions; k++)
        {
            string name = "fn" + k;
            VmImageGenerator.Write(new VmImageSpec
            {
                Size = ImageSize, OsSeed = 1, RuntimeSeed = 1, FunctionSeed = k + (Seed * 100),
            }, Image(name), null, ct);
            await host.BuildAsync(new BuildRequest
            {
                Name = name, MemoryPath = Image(name), Parent = "os", Tenant = Tenant, HolesAreZero = true,
                Layer = LayerKind.Function,
            }, null, ct);
        }
        Log($"store: os + fn1..fn{Functions} ({ImageSize >> 20} MiB images) in {StoreDir}");
    }

    /// <summary>Builds one more layer into the run's store (the real guest's), as <see cref="BuildStoreAsync"/>
    /// builds the generated ones: every snapd this run starts reads it.</summary>
    public async Task<BuildResult> BuildLayerAsync(BuildRequest request, CancellationToken ct)
    {
        var blobs = _blobs ?? throw new InvalidOperationException("the store is not built yet");
        var host = new SnapshotHost(blobs, new LocalKeyring(KeyringDir));
        return await host.BuildAsync(request, null, ct);
    }

    /// <summary>Starts a snapd of this run's own on STATE (under the work directory), returns once it
    /// answers.</summary>
    public async Task<SnapdDaemon> StartSnapdAsync(string state, params string[] args)
    {
        if (state.Length > MaxStateName) throw new ArgumentException($"state name over {MaxStateName}: {state}");
        var d = SnapdDaemon.Start(this, Path.Combine(StateRoot, state), args);
        _daemons.Add(d);
        await d.WaitHealthyAsync(TimeSpan.FromSeconds(30));
        return d;
    }

    /// <summary>Stops (SIGTERM, the drain) one daemon this run started, before the scenario ends.</summary>
    public async Task StopSnapdAsync(SnapdDaemon d)
    {
        _daemons.Remove(d);
        await d.DisposeAsync();
    }

    /// <summary>Starts a process of this run's own (killed by pid at the end if still running).</summary>
    public Process Start(ProcessStartInfo psi)
    {
        var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {psi.FileName}");
        lock (_children) _children.Add(p);
        return p;
    }

    /// <summary>The run's s3rver holding a copy of the store (port <see cref="S3Port"/>), started on first use
    /// and stopped when the run ends.</summary>
    public async Task<S3Origin> S3Async(CancellationToken ct) => _s3 ??= await S3Origin.StartAsync(this, S3Port, ct);

    /// <summary>Loopback ports of the run's services, apart from the tests' (4600, 7101..) and bench/scripts'
    /// (4700): s3rver, the fault proxy in front of it, the first Redis node (of up to 20). SNAPBENCH_PORT_OFFSET
    /// moves them all, for two runs on one machine.</summary>
    public static readonly int S3Port = 4710 + PortOffset, ProxyPort = 4711 + PortOffset,
        RedisPort = 7401 + PortOffset;

    private static int PortOffset =>
        int.TryParse(Environment.GetEnvironmentVariable("SNAPBENCH_PORT_OFFSET"), out var o) ? o : 0;

    private async Task StopDaemonsAsync()
    {
        foreach (var d in _daemons) await d.DisposeAsync();
        _daemons.Clear();
    }

    /// <summary>A timestamped line on stderr (through the live progress display when there is one).</summary>
    public static void Log(string line) => LiveProgress.Log(line);

    /// <summary>Kills (SIGKILL, by pid) every process this run started that is still running: VMMs, daemons.</summary>
    public void KillChildren()
    {
        lock (_children)
        {
            foreach (var p in _children)
            {
                try
                {
                    if (!p.HasExited) p.Kill();
                }
                catch (InvalidOperationException)
                {
                    // Already gone (or disposed by its owner).
                }
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopDaemonsAsync();
        KillChildren();
        if (_s3 is not null) await _s3.DisposeAsync();
        lock (_children)
        {
            foreach (var p in _children) p.Dispose();
            _children.Clear();
        }
        _blobs?.Dispose();
        if (Environment.GetEnvironmentVariable("SNAPBENCH_KEEP_WORK") == "1") return;
        foreach (var dir in StateRoot == Work ? [Work] : (string[])[Work, StateRoot])
        {
            try
            {
                if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                Log($"could not remove {dir}: {ex.Message}");
            }
        }
    }
}

/// <summary>Where the binaries are: the repository root found upwards from snapbench's own directory;
/// SNAPBENCH_VMM and SNAPBENCH_SNAPD (a snapd.dll or an executable) override.</summary>
public sealed record Tools(string Root, string Vmm, string SnapdFile, string[] SnapdPrefix)
{
    public static Tools Find()
    {
        var here = new DirectoryInfo(AppContext.BaseDirectory);
        string tfm = here.Name, config = here.Parent?.Name ?? "Release";
        var root = here;
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "Snapshots.sln"))) root = root.Parent;
        string r = root?.FullName ?? Directory.GetCurrentDirectory();
        string vmm = Environment.GetEnvironmentVariable("SNAPBENCH_VMM")
            ?? Path.Combine(r, "native", "bin", "replay-vmm");
        string? snapd = Environment.GetEnvironmentVariable("SNAPBENCH_SNAPD");
        if (snapd is null)
        {
            // The published daemon (ReadyToRun, as deployed: its first restores do not wait for the JIT) unless
            // the build beside snapbench's own is newer.
            string dll = Path.Combine(r, "src", "Snapd", "bin", config, tfm, "snapd.dll");
            string published = Path.Combine(r, "out", "snapd", "snapd.dll");
            snapd = File.Exists(published) && (!File.Exists(dll)
                || File.GetLastWriteTimeUtc(published) >= File.GetLastWriteTimeUtc(dll)) ? published : dll;
        }
        if (!File.Exists(vmm)) throw new FileNotFoundException($"replay-vmm not built: {vmm} (make -C native)");
        if (!File.Exists(snapd)) throw new FileNotFoundException($"snapd not built: {snapd}");
        return snapd.EndsWith(".dll", StringComparison.Ordinal)
            ? new Tools(r, vmm, "dotnet", [snapd])
            : new Tools(r, vmm, snapd, []);
    }
}
