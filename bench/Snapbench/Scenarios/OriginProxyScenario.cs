using Snapshots.Snapbench.Services;

namespace Snapshots.Snapbench;

/// <summary>The real origin (the run's s3rver) behind the run's <see cref="FaultProxy"/>, read by one snapd without
/// caches, so every chunk of every restore crosses the proxy: the base of the origin fault scenarios. One discarded
/// restore first warms the daemon's code paths and its S3 client.</summary>
public abstract class OriginProxyScenario(string name, string description) : Scenario(name, description)
{
    public const string Snapshot = "fn1";

    public override async Task RunAsync(Bench bench, ScenarioResult result, CancellationToken ct)
    {
        var s3 = await bench.S3Async(ct);
        await using var proxy = new FaultProxy(Bench.ProxyPort, s3.Port, bench.Seed);
        var snapd = await bench.StartSnapdAsync("st." + Name, "--store", S3Origin.AddressAt(proxy.Port));
        await NoteVersionAsync(snapd, result);
        result.Facts["origin"] = $"s3rver (:{s3.Port}) behind the fault proxy (:{proxy.Port}); snapd without caches";
        var warmup = new StrategyResult("warm-up", "");
        await RestoreAsync(bench, snapd, warmup, Snapshot, false, Vmm.Random(64, bench.Seed), "warm-up", ct);
        if (!warmup.Ok) result.Errors.AddRange(warmup.Errors);
        await FaultAsync(bench, result, proxy, snapd, ct);
        result.Facts["proxy: requests / answered 503 by the proxy"] = $"{proxy.Requests} / {proxy.Failed}";
        // A daemon that never went through the proxy met none of its faults: nothing was tested.
        if (proxy.Requests == 0) result.Errors.Add("the fault proxy saw no request: snapd never met its faults");
        await NoteMetricsAsync(snapd, result, "snapd");
    }

    /// <summary>The scenario's rounds, the fault set on PROXY.</summary>
    protected abstract Task FaultAsync(Bench bench, ScenarioResult result, FaultProxy proxy, SnapdDaemon snapd,
        CancellationToken ct);

    /// <summary>fn1..fn4, round robin.</summary>
    protected static string SnapshotOf(int vm) => $"fn{(vm % Bench.Functions) + 1}";

    /// <summary>A random workload of a quarter (quick) or half of the image's pages, the same every restore.</summary>
    protected static string[] Workload(Bench bench) => Vmm.Random(bench.Pages / (bench.Quick ? 4 : 2), bench.Seed);
}

/// <summary>A far origin: every request delayed by the proxy; interleaved with restores from the origin as it is.
/// </summary>
public sealed class OriginSlowScenario() : OriginProxyScenario("origin-slow",
    "every origin request delayed by the fault proxy (20 ms; quick 10 ms), interleaved with the origin as it is")
{
    protected override async Task FaultAsync(Bench bench, ScenarioResult result, FaultProxy proxy,
        SnapdDaemon snapd, CancellationToken ct)
    {
        var delay = TimeSpan.FromMilliseconds(bench.Quick ? 10 : 20);
        var workload = Workload(bench);
        result.Facts["delay per origin request (ms)"] = delay.TotalMilliseconds;
        var near = result.Add("origin", "no delay (the baseline)", "origin (s3rver)", "snapd uffd");
        var far = result.Add($"origin+{delay.TotalMilliseconds}ms", "every request delayed",
            $"origin +{delay.TotalMilliseconds} ms", "snapd uffd");
        for (int i = 0; i < bench.Restores; i++)
        {
            proxy.Delay = TimeSpan.Zero;
            await RestoreAsync(bench, snapd, near, Snapshot, false, workload, $"{near.Name}.{i}", ct);
            proxy.Delay = delay;
            await RestoreAsync(bench, snapd, far, Snapshot, false, workload, $"{far.Name}.{i}", ct,
                timeline: i == 0 ? result.AddTimeline(far, $"{far.Name}.0") : null);
        }
        proxy.Delay = TimeSpan.Zero;
    }
}

/// <summary>An origin that answers a share of requests 503 SlowDown (S3 under load): the S3 client's and the
/// reader's retries must make every restore complete.</summary>
public sealed class OriginErrorsScenario() : OriginProxyScenario("origin-errors",
    "20 % of origin requests answered 503 SlowDown by the fault proxy, interleaved with the origin as it is")
{
    protected override async Task FaultAsync(Bench bench, ScenarioResult result, FaultProxy proxy,
        SnapdDaemon snapd, CancellationToken ct)
    {
        const double Rate = 0.2;
        var workload = Workload(bench);
        result.Facts["origin requests failed 503"] = $"{Rate:P0}";
        var ok = result.Add("origin", "every request answered (the baseline)", "origin (s3rver)", "snapd uffd");
        var failing = result.Add("origin-503-20pct", "20 % of requests answered 503 SlowDown",
            "origin, 20 % 503", "snapd uffd");
        for (int i = 0; i < bench.Restores; i++)
        {
            proxy.FailRate = 0;
            await RestoreAsync(bench, snapd, ok, Snapshot, false, workload, $"{ok.Name}.{i}", ct);
            proxy.FailRate = Rate;
            await RestoreAsync(bench, snapd, failing, Snapshot, false, workload, $"{failing.Name}.{i}", ct);
        }
        proxy.FailRate = 0;
        if (proxy.Failed == 0) result.Errors.Add($"{failing.Name}: the proxy answered no request 503: nothing tested");
    }
}

/// <summary>An origin that refuses connections for a few seconds while VMs fault (a restarting endpoint, a
/// network blip): shorter than the fault deadline, so every VM must complete.</summary>
public sealed class OriginRefuseScenario() : OriginProxyScenario("origin-refuse",
    "the origin refusing connections (port closed, connections reset) for 3 s (quick 2 s) while N VMs fault")
{
    protected override async Task FaultAsync(Bench bench, ScenarioResult result, FaultProxy proxy,
        SnapdDaemon snapd, CancellationToken ct)
    {
        var outage = TimeSpan.FromSeconds(bench.Quick ? 2 : 3);
        // Walking traces: a new chunk fetched every few tens of ms for seconds, so the outage meets fetches (a
        // random order fetches every chunk in the first fraction of a second, and the outage would meet none).
        var traces = (await FaultScenario.WalkTracesAsync(bench, result, "refuse", ct))
            .Select(t => (string[])["--trace", t, "--sleep-gaps"]).ToList();
        result.Facts["outage (s)"] = outage.TotalSeconds;
        var calm = result.Add("no-outage", "the same VMs, the origin answering (the baseline)", "origin (s3rver)",
            "snapd uffd");
        var refused = result.Add($"refused-{outage.TotalSeconds}s", "the origin refusing connections once every VM "
            + "has faulted, for the outage, then answering again", "origin refusing", "snapd uffd");
        await MidRestoreRound.RunAsync(bench, snapd, calm, traces, SnapshotOf, ct);
        await MidRestoreRound.RunAsync(bench, snapd, refused, traces, SnapshotOf, ct, async () =>
        {
            proxy.Refuse();
            await Task.Delay(outage, ct);
            proxy.Listen();
        }, result);
        // A VM that waited through the outage shows it as its longest fault: none did, nothing was tested.
        if (refused.FaultUs.Max < outage.TotalMicroseconds / 2)
            result.Errors.Add($"{refused.Name}: the longest fault ({refused.FaultUs.Max / 1000:F0} ms) is under half "
                + "the outage: no VM met it");
    }
}

/// <summary>An origin down for longer than the fault deadline: every VM must be failed loudly, with a reason, within
/// the deadline (never left hanging), and restores must work again once the origin is back.</summary>
public sealed class OriginDownScenario() : OriginProxyScenario("origin-down",
    "the origin down (connections refused) past a 2 s fault deadline: every VM failed with a reason within it; "
    + "then the origin back and restores completing again")
{
    protected override async Task FaultAsync(Bench bench, ScenarioResult result, FaultProxy proxy,
        SnapdDaemon snapd, CancellationToken ct)
    {
        const double Deadline = 2;
        var workload = Workload(bench);
        result.Facts["fault deadline (s, per request)"] = Deadline;
        var down = result.Add("down", "POST while the origin answers (the manifests read), then the origin refuses "
            + "every connection before the VMM starts", "origin down", "snapd uffd");
        down.ExpectFailure = true;
        down.Deadline = TimeSpan.FromSeconds(Deadline);
        var back = result.Add("back", "the origin answering again after the outage", "origin (s3rver)", "snapd uffd");
        for (int i = 0; i < bench.Restores; i++)
        {
            proxy.Listen();
            await RestoreAsync(bench, snapd, down, Snapshot, false, workload, $"down.{i}", ct,
                faultDeadlineSeconds: Deadline, beforeVmm: () =>
                {
                    proxy.Refuse();
                    return Task.CompletedTask;
                }, timeline: i == 0 ? result.AddTimeline(down, "down.0") : null);
        }
        proxy.Listen();
        // ExpectFailure lets a restore complete (one that needed no origin read); none failing means the outage
        // never reached the daemon.
        if (down.Failed == 0) result.Errors.Add("down: every restore completed with the origin down: nothing tested");
        for (int i = 0; i < bench.Restores; i++)
            await RestoreAsync(bench, snapd, back, Snapshot, false, workload, $"back.{i}", ct);
    }
}
