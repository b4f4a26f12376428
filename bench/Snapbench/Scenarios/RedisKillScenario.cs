using Snapshots.Snapbench.Services;

namespace Snapshots.Snapbench;

/// <summary>A Redis master SIGKILLed while N VMs fault, no replica to take over: its slots are gone, the reads it
/// served must come from the other masters (the striped layout's parity) or the origin (the whole layout); every
/// VM must verify. Per layout: a cluster of its own, warmed, a baseline round and the fault round.</summary>
public sealed class RedisKillScenario() : FaultScenario("redis-kill",
    "SIGKILL a Redis master (3 masters, no replicas; Redis warm, no disk cache) while N VMs fault; baseline "
    + "without; striped and whole layouts")
{
    public override async Task RunAsync(Bench bench, ScenarioResult result, CancellationToken ct)
    {
        var s3 = await bench.S3Async(ct);
        var traces = await WalkTracesAsync(bench, result, "rkill", ct);
        result.Facts["redis"] = "3 masters, no replicas, a new cluster per layout";
        foreach (var (layout, query) in Layouts)
        {
            await using var redis = await RedisCluster.StartAsync(bench, "redis.kill", Bench.RedisPort, 3, 0);
            string[] args = ["--store", s3.Address, "--redis", redis.Address + query];
            await WarmAsync(bench, result, $"st.rkill.{layout}", args, ct);

            var baseline = result.Add($"{layout}-baseline", $"{layout} layout: the same VMs, Redis left alone "
                + "(warm, every chunk in it)");
            var sums = await RunRoundAsync(bench, result, baseline, $"st.rkill.{layout}.b", args, traces, ct);
            if (sums.Hits("redis") == 0) result.Errors.Add($"{baseline.Name}: Redis served nothing: it was not warm");

            int master = await redis.MasterAsync();
            var killed = result.Add($"{layout}-killed", $"{layout} layout: redis :{master} SIGKILLed once every VM "
                + "has faulted (+0.25 s)");
            var figures = await RunRoundAsync(bench, result, killed, $"st.rkill.{layout}.k", args, traces, ct,
                fault: _ =>
                {
                    redis.Kill(master);
                    return Task.CompletedTask;
                });
            // The lost node is a miss to the tier, not an error: snapd's node events must show it.
            if (figures.Metrics.GetValueOrDefault("snapd_redis_events_total{node_failure}") == 0
                && figures.Metrics.GetValueOrDefault("snapd_redis_events_total{short_circuited}") == 0)
                result.Errors.Add($"{killed.Name}: snapd_redis_events_total counted no node failure");
        }
    }
}
