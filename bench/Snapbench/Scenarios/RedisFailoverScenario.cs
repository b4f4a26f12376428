using System.Diagnostics;
using Snapshots.Snapbench.Services;

namespace Snapshots.Snapbench;

/// <summary>A Redis master SIGKILLed while N VMs fault, its replica promoted by the cluster: the VMs must verify
/// through the failover, and a round after it must find Redis serving again (the promoted replica's copy).</summary>
public sealed class RedisFailoverScenario() : FaultScenario("redis-failover",
    "SIGKILL a Redis master (3 masters x 1 replica, node timeout 1 s, layout=whole; Redis warm, no disk cache) "
    + "while N VMs fault; its replica's promotion timed; a round after the failover; baseline without")
{
    private const int NodeTimeoutMs = 1000;

    public override async Task RunAsync(Bench bench, ScenarioResult result, CancellationToken ct)
    {
        var s3 = await bench.S3Async(ct);
        await using var redis = await RedisCluster.StartAsync(bench, "redis.failover", Bench.RedisPort, 3, 1,
            NodeTimeoutMs);
        // The whole layout: striped, the other two masters rebuild every chunk without the dead one, so neither
        // the failover nor the promoted replica's copy would show.
        string[] args = ["--store", s3.Address, "--redis", redis.Address + "?layout=whole"];
        result.Facts["redis"] = $"3 masters x 1 replica, cluster-node-timeout {NodeTimeoutMs} ms, layout=whole (a "
            + "chunk on one master)";
        var traces = await WalkTracesAsync(bench, result, "rfail", ct);
        await WarmAsync(bench, result, "st.rfail.warm", args, ct);

        var baseline = result.Add("baseline", "the same VMs, Redis left alone (warm, every chunk in it)");
        var sums = await RunRoundAsync(bench, result, baseline, "st.rfail.base", args, traces, ct);
        if (sums.Hits("redis") == 0) result.Errors.Add("baseline: Redis served nothing: it was not warm");

        int master = await redis.MasterAsync();
        int replica = await RedisCluster.ReplicaOfAsync(master);
        result.Facts["master killed, its replica"] = $"{master}, {replica}";
        var killed = result.Add("failover", $"redis :{master} SIGKILLed once every VM has faulted (+0.25 s); "
            + $"its replica :{replica} promoted by the cluster");
        await RunRoundAsync(bench, result, killed, "st.rfail.kill", args, traces, ct, fault: async snapd =>
        {
            var clock = Stopwatch.StartNew();
            redis.Kill(master);
            var watch = LastOriginReadAsync(snapd, clock, TimeSpan.FromSeconds(RunSeconds(bench) + 1));
            try
            {
                await RedisCluster.WaitPromotedAsync(replica, TimeSpan.FromSeconds(30));
                result.Facts["failover: promoted (ms, SIGKILL to the replica a master, cluster ok)"] =
                    Math.Round(clock.Elapsed.TotalMilliseconds);
            }
            catch (TimeoutException ex)
            {
                result.Errors.Add($"failover: {ex.Message}");
            }
            result.Facts["failover: the daemon's last origin read (ms after the SIGKILL)"] = await watch;
        });

        var after = result.Add("after-failover", $"the same VMs on a new daemon once :{replica} took over: Redis "
            + "must serve again");
        var again = await RunRoundAsync(bench, result, after, "st.rfail.after", args, traces, ct);
        result.Facts["after-failover: Redis hits / the baseline's"] = $"{again.Hits("redis")} / {sums.Hits("redis")}";
        if (again.Hits("redis") == 0) result.Errors.Add("after-failover: Redis served nothing after the failover");
    }

    /// <summary>The failover as the daemon saw it: every 100 ms for LIMIT, its origin reads (the dead master's
    /// chunks, until the daemon reads them from the promoted replica); when the last one was (ms on CLOCK).
    /// </summary>
    private static async Task<double> LastOriginReadAsync(SnapdDaemon snapd, Stopwatch clock, TimeSpan limit)
    {
        double last = 0, seen = 0;
        while (clock.Elapsed < limit)
        {
            var values = await TierMetrics.ReadAsync(snapd);
            double origin = values.GetValueOrDefault("snapd_tier_hits_total{origin}");
            if (origin > seen) (seen, last) = (origin, Math.Round(clock.Elapsed.TotalMilliseconds));
            await Task.Delay(100);
        }
        return last;
    }
}
