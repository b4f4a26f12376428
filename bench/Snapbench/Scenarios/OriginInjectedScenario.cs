using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Snapshots.Snapbench;

/// <summary>A far, slow or failing origin, injected into snapd's own origin reads (its OriginFaults setting, the
/// host library's FaultInjectingChunkStore): every VM must still see every page right (errors and stalls retried,
/// corrupt chunks caught by the reader's name check); the faults' cost shows in restore time and fault latency.
/// A corrupt origin read is read once more (docs/loader.md); a chunk corrupt twice fails its VM: the corrupt mix
/// expects each VM to verify or to be failed safe, killed by snapd with a reason naming the corrupt chunk before
/// any wrong byte.</summary>
public sealed class OriginInjectedScenario() : Scenario("origin-injected",
    "snapd with no disk cache and faults injected into its origin reads (slow, errors, stalls, corrupt), a fresh "
    + "daemon per mix; every page must still be right, the faults' cost in latency")
{
    /// <summary>The mixes, each one strategy (the first is the baseline). Rates are of origin chunk reads.</summary>
    /// SEEN: the snapd_tier_errors_total kind that must have counted the faults (proof they were injected).
    private static readonly (string Name, string? Faults, string? Seen, string What)[] Mixes =
    [
        ("no-faults", null, null, "the origin as it is (the baseline)"),
        ("slow-5ms", "latency=5ms,jitter=1ms", null, "every origin read 5-6 ms late"),
        ("errors-20pct", "error=0.2", "error", "20 % of origin reads fail (an IOException: a 5xx, a reset)"),
        ("stalls-5pct", "stall=0.05,stall-for=300ms", null, "5 % of origin reads hang 300 ms"),
        // A cold 64 MiB restore reads ~100 chunks; a chunk corrupt on both reads (5 %: 1 in 400) fails its VM.
        ("corrupt-5pct", "corrupt=0.05", "corrupt", "5 % of origin reads come back with one bit flipped: each VM "
            + "verifies or is failed safe (killed, the corrupt chunk named, no wrong byte read)"),
    ];

    /// <summary>Restores a mix may spend on VMs failed safe before it has its N verified ones.</summary>
    private const int MaxAttemptsPerRestore = 4;

    /// <summary>The metrics (by name, every label) noted as facts per mix.</summary>
    private static readonly string[] TierMetrics =
        ["snapd_tier_hits_total", "snapd_tier_errors_total", "snapd_retries_total", "snapd_faults_total"];

    public override async Task RunAsync(Bench bench, ScenarioResult result, CancellationToken ct)
    {
        long touch = bench.Pages / 4;
        result.Facts["workload"] = $"--touch random:{touch}:SEED+i, fn1..fn{Bench.Functions} round robin (each "
            + "restore reads its function layer's chunks from the origin: no disk cache, a fresh daemon per mix)";
        int k = 0;
        foreach (var (name, faults, seen, what) in Mixes)
        {
            var s = result.Add(name, faults is null ? what : $"--origin-faults {faults}: {what}",
                faults is null ? "origin" : $"origin, {name}", "snapd uffd");
            string[] args = faults is null ? [] : ["--origin-faults", faults];
            var snapd = await bench.StartSnapdAsync($"st.origin.{k++}", args);
            if (k == 1) await NoteVersionAsync(snapd, result);
            bool corrupt = seen == "corrupt";
            int failedSafe = 0;
            for (int i = 0; s.Total < bench.Restores && i < bench.Restores * MaxAttemptsPerRestore; i++)
            {
                string snapshot = $"fn{(i % Bench.Functions) + 1}";
                if (await RestoreFailsSafeAsync(bench, snapd, s, snapshot, Vmm.Random(touch, bench.Seed + i),
                    $"{name}.{i}", corrupt ? result : null, ct))
                    failedSafe++;
            }
            if (corrupt)
                result.Facts[$"{name} VMs failed safe (a corrupt chunk named) / restores"] = $"{failedSafe} / "
                    + (failedSafe + s.Total);
            if (seen is not null && await TierErrorsAsync(snapd, seen) == 0)
                result.Errors.Add($"{name}: snapd counted no origin {seen}: the faults were not injected");
            await NoteTierMetricsAsync(snapd, result, name);
            await snapd.StopAsync(TimeSpan.FromSeconds(30));
        }
        var baseline = result.Strategies[0];
        foreach (var s in result.Strategies.Skip(1))
        {
            if (s.Total == 0 || baseline.Total == 0) continue;
            result.Facts[$"{s.Name} cost: restore p50 / p99 (ms over no-faults)"] =
                $"{Diff(s.RestoreMs.P50, baseline.RestoreMs.P50)} / {Diff(s.RestoreMs.P99, baseline.RestoreMs.P99)}";
            result.Facts[$"{s.Name} cost: fault p99 / max (us over no-faults)"] =
                $"{Diff(s.FaultUs.P99, baseline.FaultUs.P99)} / {Diff(s.FaultUs.Max, baseline.FaultUs.Max)}";
        }
    }

    /// <summary>One restore, counted into STRATEGY as <see cref="Scenario.RestoreAsync"/> does, unless FAILSAFE (the
    /// scenario's result, for the corrupt mix only) and snapd failed it safe: its reason names a corrupt chunk and the
    /// VM saw no wrong page (killed before it could). That one is noted as a fact and true returned.</summary>
    private static async Task<bool> RestoreFailsSafeAsync(Bench bench, SnapdDaemon snapd, StrategyResult strategy,
        string snapshot, string[] workload, string label, ScenarioResult? failSafe, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        string id, socket;
        JsonElement posted;
        try
        {
            (id, socket, posted) = await snapd.CreateDocAsync(snapshot, prefetch: false);
        }
        catch (Exception ex) when (ex is InvalidOperationException or HttpRequestException)
        {
            strategy.AddFailure($"{label}: {ex.Message}", clock.Elapsed.TotalMilliseconds, ex.Message);
            return false;
        }
        var run = await Vmm.RunAsync(bench, bench.Image(snapshot), "handler", socket, workload, label, ct);
        double us = clock.Elapsed.TotalMicroseconds;
        var doc = await snapd.WaitEndedAsync(id, TimeSpan.FromSeconds(30));
        if (failSafe is { } result && !run.Right && run.Bad <= 0 && !run.Hung
            && doc is { ValueKind: JsonValueKind.Object } d
            && d.TryGetProperty("state", out var st) && st.GetString() == "failed"
            && d.TryGetProperty("reason", out var why) && why.GetString() is { } reason
            && reason.Contains(" is corrupt in origin", StringComparison.Ordinal))
        {
            result.Facts[$"{label} failed safe"] = reason;
            return true;
        }
        if (doc is { ValueKind: JsonValueKind.Object } ended) strategy.Tiers.Add(posted, ended);
        strategy.Add(run, us, Problem(label, id, doc), restoreHung: doc is null, reason: Reason(doc));
        return false;
    }

    /// <summary>snapd_tier_errors_total of KIND summed over the origin tiers.</summary>
    private static async Task<double> TierErrorsAsync(SnapdDaemon snapd, string kind)
    {
        double sum = 0;
        foreach (var m in MetricSample.Parse(await snapd.MetricsAsync()))
        {
            if (m.Metric == "snapd_tier_errors_total" && m.Series.Contains("tier=\"origin", StringComparison.Ordinal)
                && m.Series.Contains($"kind=\"{kind}\"", StringComparison.Ordinal))
                sum += m.Value;
        }
        return sum;
    }

    private static string Diff(double a, double b) =>
        (a - b).ToString("+0.0;-0.0;0.0", CultureInfo.InvariantCulture);

    /// <summary>snapd's tier counters from /metrics (labels kept: origin errors by kind, hits by tier) as facts:
    /// the proof that faults were injected and how the reader answered them.</summary>
    private static async Task NoteTierMetricsAsync(SnapdDaemon snapd, ScenarioResult result, string prefix)
    {
        foreach (var m in await MetricSample.ScrapeAsync(snapd, result, prefix) ?? [])
        {
            if (TierMetrics.Contains(m.Metric)) result.Facts[$"{prefix} {m.Series}"] = Math.Round(m.Value, 4);
        }
    }
}
