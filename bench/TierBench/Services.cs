using System.Diagnostics;

namespace Snapshots.TierBench;

/// <summary>Starts and stops the real services with the repo's scripts/services/*.sh, on the benchmark's
/// own ports (s3rver 4602, Redis 7141+), and signals Redis nodes it started (by pid).</summary>
public sealed class Services : IDisposable
{
    public static string Root { get; } = FindRoot();
    public int S3Port { get; }
    public int RedisBase { get; }
    public int Masters { get; }
    private readonly string _state;

    public Services(int s3Port, int redisBase, int masters, string maxmem)
    {
        S3Port = s3Port; RedisBase = redisBase; Masters = masters;
        _state = Path.Combine(Root, ".work", "bench-services");
        Run("s3rver.sh", "start", S3Env);
        Run("redis-cluster.sh", "start", RedisEnv(maxmem));
    }

    public string S3Endpoint => $"http://127.0.0.1:{S3Port}";
    public string RedisAddress(string options) =>
        "redis://" + string.Join(',', Enumerable.Range(RedisBase, Masters).Select(p => $"127.0.0.1:{p}"))
        + "?" + options;

    private Dictionary<string, string> S3Env => new()
    {
        ["S3_PORT"] = S3Port.ToString(), ["S3_STATE"] = Path.Combine(_state, "s3rver"),
    };
    private Dictionary<string, string> RedisEnv(string maxmem = "512mb") => new()
    {
        ["REDIS_BASE_PORT"] = RedisBase.ToString(), ["REDIS_MASTERS"] = Masters.ToString(),
        ["REDIS_STATE"] = Path.Combine(_state, "redis"), ["REDIS_MAXMEM"] = maxmem,
    };

    public int PidOf(int port) =>
        int.Parse(File.ReadAllText(Path.Combine(_state, "redis", port.ToString(), "redis.pid")).Trim());

    public void Signal(int port, string signal)
    {
        using var p = Process.Start("kill", $"-{signal} {PidOf(port)}");
        p.WaitForExit();
    }

    public void Dispose()
    {
        try { Run("redis-cluster.sh", "stop", RedisEnv()); }
        catch (InvalidOperationException e) { Console.Error.WriteLine(e.Message); }
        try { Run("s3rver.sh", "stop", S3Env); }
        catch (InvalidOperationException e) { Console.Error.WriteLine(e.Message); }
    }

    private static void Run(string script, string verb, Dictionary<string, string> env)
    {
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(Root, "scripts", "services", script));
        psi.ArgumentList.Add(verb);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{script} {verb}: {output}");
    }

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Snapshots.sln"))) dir = dir.Parent;
        return dir?.FullName ?? Directory.GetCurrentDirectory();
    }
}
