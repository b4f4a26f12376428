using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Snapshots.Snapbench.Services;

/// <summary>A Redis Cluster of the run's own (scripts/services/redis-cluster.sh: MASTERS masters with REPLICAS
/// replicas each on 127.0.0.1 from a base port, state under the work directory), and the faults done to its nodes:
/// SIGKILL, SIGSTOP/SIGCONT (a stalled node), each by the pid the script recorded.</summary>
public sealed partial class RedisCluster : IAsyncDisposable
{
    private readonly Bench _bench;
    private readonly Dictionary<string, string> _env;
    private readonly string _state;

    private RedisCluster(Bench bench, string name, int basePort, int masters, int replicas, int nodeTimeoutMs)
    {
        _bench = bench;
        BasePort = basePort;
        Nodes = masters * (1 + replicas);
        _state = bench.WorkPath(name);
        _env = new()
        {
            ["REDIS_BASE_PORT"] = $"{basePort}", ["REDIS_MASTERS"] = $"{masters}", ["REDIS_REPLICAS"] = $"{replicas}",
            ["REDIS_NODE_TIMEOUT_MS"] = $"{nodeTimeoutMs}", ["REDIS_STATE"] = _state, ["REDIS_MAXMEM"] = "512mb",
        };
    }

    public int BasePort { get; }
    public int Nodes { get; }

    /// <summary>The cluster's address as snapd takes it (every node a seed).</summary>
    public string Address => "redis://" + string.Join(',',
        Enumerable.Range(BasePort, Nodes).Select(p => $"127.0.0.1:{p}"));

    public static async Task<RedisCluster> StartAsync(Bench bench, string name, int basePort, int masters,
        int replicas, int nodeTimeoutMs = 2000)
    {
        var c = new RedisCluster(bench, name, basePort, masters, replicas, nodeTimeoutMs);
        string said = await ServiceScript.RunAsync(bench, "redis-cluster.sh", "start", c._env, TimeSpan.FromMinutes(2));
        Bench.Log(said.Trim());
        return c;
    }

    /// <summary>The pid of the node on PORT (the script's pid file).</summary>
    public int Pid(int port) => int.Parse(File.ReadAllText(Path.Combine(_state, $"{port}", "redis.pid")).Trim(),
        System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The port of a node that is a master now, holding keys (the first by port).</summary>
    public async Task<int> MasterAsync()
    {
        for (int p = BasePort; p < BasePort + Nodes; p++)
            if ((await CliAsync(p, "role")).StartsWith("master", StringComparison.Ordinal)) return p;
        throw new InvalidOperationException("no node answers as a master");
    }

    /// <summary>SIGKILL the node on PORT: a dead cache node.</summary>
    public void Kill(int port) => Signal(port, 9);

    /// <summary>SIGSTOP the node on PORT: it holds its connections and answers nothing (a stalled node).</summary>
    public void Stall(int port) => Signal(port, 19);

    /// <summary>SIGCONT: the stalled node answers again.</summary>
    public void Resume(int port) => Signal(port, 18);

    private void Signal(int port, int signal)
    {
        int pid = Pid(port);
        if (Kill(pid, signal) != 0)
            throw new InvalidOperationException(
                $"kill -{signal} {pid} (redis :{port}): errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>The port of MASTER's replica (asked before a fault: a dead master no longer answers).</summary>
    public static async Task<int> ReplicaOfAsync(int master)
    {
        // CLUSTER NODES lines: "<id> <ip:port@cport> <flags> <master-id|-> ...".
        var lines = (await CliAsync(master, "cluster", "nodes")).Split('\n');
        string? id = lines.Select(l => l.Split(' ')).FirstOrDefault(f => f.Length > 3 && f[2].Contains("myself",
            StringComparison.Ordinal))?[0];
        foreach (var f in lines.Select(l => l.Split(' ')))
        {
            if (f.Length > 3 && f[3] == id && f[2].Contains("slave", StringComparison.Ordinal))
                return int.Parse(f[1].Split('@')[0].Split(':')[1], System.Globalization.CultureInfo.InvariantCulture);
        }
        throw new InvalidOperationException($"redis :{master} has no replica");
    }

    /// <summary>Waits until REPLICA answers as a master with the cluster ok (it took over from its dead master);
    /// the time it took.</summary>
    public static async Task<TimeSpan> WaitPromotedAsync(int replica, TimeSpan limit)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < limit)
        {
            if ((await CliAsync(replica, "role")).StartsWith("master", StringComparison.Ordinal)
                && (await CliAsync(replica, "cluster", "info")).Contains("cluster_state:ok", StringComparison.Ordinal))
                return clock.Elapsed;
            await Task.Delay(50);
        }
        throw new TimeoutException($"redis :{replica} did not take over within {limit.TotalSeconds} s");
    }

    /// <summary>redis-cli -p PORT ARGS; its output (empty when the node does not answer within 2 s).</summary>
    public static async Task<string> CliAsync(int port, params string[] args)
    {
        var psi = new ProcessStartInfo("redis-cli")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in (string[])["-p", $"{port}", .. args]) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var text = p.StandardOutput.ReadToEndAsync();
        _ = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill();
            return "";
        }
        return (await text).Trim();
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    public async ValueTask DisposeAsync()
    {
        try
        {
            await ServiceScript.RunAsync(_bench, "redis-cluster.sh", "stop", _env, TimeSpan.FromSeconds(60));
        }
        catch (Exception ex) when (ex is InvalidOperationException or TimeoutException)
        {
            Bench.Log($"redis stop: {ex.Message}");
        }
    }
}
