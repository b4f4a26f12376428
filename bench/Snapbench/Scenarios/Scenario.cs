using System.Diagnostics;
using System.Text.Json;

namespace Snapshots.Snapbench;

/// <summary>A scenario: a name, one line saying what it does, and its run.</summary>
public abstract class Scenario(string name, string description)
{
    public string Name { get; } = name;
    public string Description { get; } = description;

    public abstract Task RunAsync(Bench bench, ScenarioResult result, CancellationToken ct);

    /// <summary>One restore through snapd: POST /v1/restores, replay-vmm on its socket, the restore's document once
    /// ended; counted into STRATEGY (outcome, times, the failure's reason, the tiers it fetched from). Restore time:
    /// POST to the VMM's exit. TIMELINE: sample this restore's document while it runs. FAULTDEADLINESECONDS: the
    /// request's own; BEFOREVMM: a fault injected between the POST and the VMM's start.</summary>
    protected static async Task<(VmmRun? Run, JsonElement? Doc)> RestoreAsync(Bench bench, SnapdDaemon snapd,
        StrategyResult strategy, string snapshot, bool prefetch, string[] workload, string label,
        CancellationToken ct, bool record = false, Timeline? timeline = null, double? faultDeadlineSeconds = null,
        Func<Task>? beforeVmm = null)
    {
        var clock = Stopwatch.StartNew();
        string id, socket;
        JsonElement posted;
        try
        {
            (id, socket, posted) = await snapd.CreateDocAsync(snapshot, prefetch, record,
                faultDeadlineSeconds: faultDeadlineSeconds);
        }
        catch (Exception ex) when (ex is InvalidOperationException or HttpRequestException)
        {
            strategy.AddFailure($"{label}: {ex.Message}", clock.Elapsed.TotalMilliseconds, ex.Message);
            return (null, null);
        }
        if (beforeVmm is not null) await beforeVmm();
        var vmm = Vmm.RunAsync(bench, bench.Image(snapshot), "handler", socket, workload, label, ct);
        var sampling = timeline?.SampleAsync(snapd, id, clock, vmm, ct) ?? Task.CompletedTask;
        var run = await vmm;
        double us = clock.Elapsed.TotalMicroseconds;
        await sampling;
        var doc = await CountAsync(snapd, strategy, label, id, posted, run, us);
        timeline?.Add(doc, clock);
        return (run, doc);
    }

    /// <summary>Counts one restore whose VMM has ended into STRATEGY: its document once ended (a VMM that failed
    /// may never have connected, and snapd would wait its accept timeout for it: such a restore is deleted), the
    /// tiers it fetched from (POSTED: the document POST returned), its outcome and reason. Returns the document
    /// (null: it never ended).</summary>
    public static async Task<JsonElement?> CountAsync(SnapdDaemon snapd, StrategyResult strategy, string label,
        string id, JsonElement posted, VmmRun run, double restoreUs)
    {
        var doc = await snapd.WaitEndedAsync(id, TimeSpan.FromSeconds(run.Right ? 30 : 2));
        if (doc is null && !run.Right)
        {
            await snapd.DeleteAsync(id);
            doc = await snapd.WaitEndedAsync(id, TimeSpan.FromSeconds(10));
        }
        if (doc is { ValueKind: JsonValueKind.Object } d) strategy.Tiers.Add(posted, d);
        strategy.Add(run, restoreUs, Problem(label, id, doc), restoreHung: doc is null, reason: Reason(doc));
        return doc;
    }

    /// <summary>A failed restore document's reason (null otherwise).</summary>
    public static string? Reason(JsonElement? doc) =>
        doc is { ValueKind: JsonValueKind.Object } d && d.TryGetProperty("state", out var s)
            && s.GetString() == "failed" && d.TryGetProperty("reason", out var r) && r.ValueKind == JsonValueKind.String
            ? r.GetString() : null;

    /// <summary>What is wrong with an ended restore's document (null: nothing).</summary>
    public static string? Problem(string label, string id, JsonElement? doc, bool takenBack = false)
    {
        if (doc is not { ValueKind: JsonValueKind.Object } d) return $"{label}: restore {id} did not end (or is gone)";
        if (!d.TryGetProperty("state", out var s)) return $"{label}: restore {id}: {d}";
        string state = s.GetString() ?? "";
        if (state != "exited")
            return $"{label}: restore {id} {state}: {(d.TryGetProperty("reason", out var r) ? r.ToString() : "")}";
        if (takenBack && !(d.TryGetProperty("takenBack", out var t) && t.ValueKind == JsonValueKind.True))
            return $"{label}: restore {id} was not taken back by the restarted daemon";
        return null;
    }

    protected static async Task<int> PlansPublishedAsync(SnapdDaemon snapd) =>
        (await snapd.HealthAsync()).TryGetProperty("plansPublished", out var p) ? p.GetInt32() : 0;

    /// <summary>The daemon's own view, from /metrics, as facts: faults served, its CPU seconds, its fault-latency
    /// histogram's count and sum, its tiers' failures and retries when there were any (PREFIX names the daemon).
    /// </summary>
    protected static async Task NoteMetricsAsync(SnapdDaemon snapd, ScenarioResult result, string prefix)
    {
        foreach (var m in await MetricSample.ScrapeAsync(snapd, result, prefix) ?? [])
        {
            // Tier failures are the host's (a restore document's tiers carry none when restores share a reader):
            // the nonzero ones, by tier and kind.
            if (m.Metric is "snapd_tier_errors_total" or "snapd_retries_total" && m.Value > 0)
                result.Facts[$"{prefix} {m.Series}"] = m.Value;
            if (m.Metric is "snapd_faults_total" or "process_cpu_seconds_total" or "snapd_fault_latency_seconds_count"
                or "snapd_fault_latency_seconds_sum" or "snapd_parked_faults_total")
                result.Facts[$"{prefix} {m.Series}"] = Math.Round(m.Value, 4);
        }
    }

    protected static async Task NoteVersionAsync(SnapdDaemon snapd, ScenarioResult result)
    {
        var h = await snapd.HealthAsync();
        if (h.TryGetProperty("version", out var v)) result.Facts["snapd version"] = v.ToString();
    }
}
