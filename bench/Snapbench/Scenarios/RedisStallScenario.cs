using Snapshots.Snapbench.Services;

namespace Snapshots.Snapbench;

/// <summary>A Redis master SIGSTOPped for a few seconds while N VMs fault, then SIGCONTed: it holds its connections
/// and answers nothing, the worst kind of slow node; the node deadline and breaker must keep the VMs going.</summary>
public sealed class RedisStallScenario() : FaultScenario("redis-stall",
    "SIGSTOP a Redis master for 3 s (quick: 2 s; 3 masters, no replicas; Redis warm, no disk cache) while N VMs "
    + "fault, then SIGCONT; baseline without")
{
    public override async Task RunAsync(Bench bench, ScenarioResult result, CancellationToken ct)
    {
        var s3 = await bench.S3Async(ct);
        var traces = await WalkTracesAsync(bench, result, "rstall", ct);
        var stall = TimeSpan.FromSeconds(bench.Quick ? 2 : 3);
        result.Facts["redis"] = "3 masters, no replicas, one cluster for both layouts (their keys differ)";
        // A stalled node comes back with its keys: one cluster serves both layouts.
        await using var redis = await RedisCluster.StartAsync(bench, "redis.stall", Bench.RedisPort, 3, 0);
        foreach (var (layout, query) in Layouts)
        {
            string[] args = ["--store", s3.Address, "--redis", redis.Address + query];
            await WarmAsync(bench, result, $"st.rstall.{layout}", args, ct);

            var baseline = result.Add($"{layout}-baseline", $"{layout} layout: the same VMs, Redis left alone "
                + "(warm, every chunk in it)");
            var sums = await RunRoundAsync(bench, result, baseline, $"st.rstall.{layout}.b", args, traces, ct);
            if (sums.Hits("redis") == 0) result.Errors.Add($"{baseline.Name}: Redis served nothing: it was not warm");

            int master = await redis.MasterAsync();
            var stalled = result.Add($"{layout}-stalled", $"{layout} layout: redis :{master} SIGSTOPped once every "
                + $"VM has faulted (+0.25 s) for {stall.TotalSeconds} s, then SIGCONTed");
            await RunRoundAsync(bench, result, stalled, $"st.rstall.{layout}.s", args, traces, ct, fault: async _ =>
            {
                var clock = System.Diagnostics.Stopwatch.StartNew();
                redis.Stall(master);
                try
                {
                    // Not cancellable: the node is resumed whatever happens to the round.
                    await Task.Delay(stall, CancellationToken.None);
                }
                finally
                {
                    redis.Resume(master);
                    result.Facts[$"{stalled.Name}: stalled for (ms, SIGSTOP to SIGCONT)"] =
                        Math.Round(clock.Elapsed.TotalMilliseconds);
                }
            });
        }
    }
}
