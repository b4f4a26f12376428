using System.Diagnostics;

namespace Snapshots.Tests.Services;

/// <summary>A Redis Cluster of N masters on consecutive loopback ports, started by
/// scripts/services/redis-cluster.sh; its nodes can be killed or stalled by pid. With a password it requires
/// one (requirepass, masterauth); with TLS it speaks only TLS, under a CA made for it (<see cref="CaFile"/>).
/// </summary>
public sealed class RedisCluster : IDisposable
{
    public int BasePort { get; }
    public int Masters { get; }
    private readonly Dictionary<string, string> _env;
    private readonly string _state;
    private bool _stopped;

    public string? Password { get; }
    public bool Tls { get; }

    /// <summary>The PEM CA the TLS cluster's certificates are signed by.</summary>
    public string CaFile => Path.Combine(_state, "tls", "ca.crt");

    public RedisCluster(int basePort, int masters = 3, int replicas = 0, string? password = null, bool tls = false)
    {
        BasePort = basePort;
        Masters = masters;
        Password = password;
        Tls = tls;
        _state = ServiceScripts.StateDir($"redis-{basePort}");
        _env = new()
        {
            ["REDIS_BASE_PORT"] = basePort.ToString(), ["REDIS_MASTERS"] = masters.ToString(),
            ["REDIS_STATE"] = _state, ["REDIS_MAXMEM"] = "128mb", ["REDIS_REPLICAS"] = replicas.ToString(),
            ["REDIS_PASSWORD"] = password ?? "", ["REDIS_TLS"] = tls ? "1" : "0",
        };
        ServiceScripts.Run("redis-cluster.sh", "start", _env);
    }

    public IEnumerable<int> Ports => Enumerable.Range(BasePort, Masters);
    /// <summary>redis[s]://[:PASSWORD@]HOST:PORT,...[?OPTIONS]; with TLS, ca= names <see cref="CaFile"/>.</summary>
    public string Address(string options = "")
    {
        var auth = Password is null ? "" : $":{Uri.EscapeDataString(Password)}@";
        if (Tls) options = options.Length > 0 ? $"ca={CaFile}&{options}" : $"ca={CaFile}";
        return (Tls ? "rediss://" : "redis://") + auth + string.Join(',', Ports.Select(p => $"127.0.0.1:{p}"))
            + (options.Length > 0 ? "?" + options : "");
    }

    public int PidOf(int port) =>
        int.Parse(File.ReadAllText(Path.Combine(_state, port.ToString(), "redis.pid")).Trim());

    /// <summary>Sends a signal to one node we started (KILL, STOP, CONT).</summary>
    public void Signal(int port, string signal)
    {
        using var p = Process.Start("kill", $"-{signal} {PidOf(port)}");
        p.WaitForExit();
    }

    public void Stop()
    {
        if (_stopped) return;
        _stopped = true;
        ServiceScripts.Run("redis-cluster.sh", "stop", _env);
    }

    public void Dispose()
    {
        try { Stop(); } catch (InvalidOperationException) { }
    }
}
