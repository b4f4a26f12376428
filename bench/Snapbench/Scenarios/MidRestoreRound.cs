using System.Diagnostics;
using System.Text.Json;

namespace Snapshots.Snapbench;

/// <summary>A round of VMs restored at once through one snapd, with a fault injected once every one of them has
/// faulted (so it lands mid-restore for all): each VM verified and counted into its strategy. Restore time: POST to
/// the VMM's exit.</summary>
public static class MidRestoreRound
{
    /// <summary>Restores one VM per WORKLOADS entry at once (VM i restores SNAPSHOTOF(i)); FAULT (null: none) starts
    /// FAULTDELAY after every restore has served a fault and runs beside the VMs (awaited before the round ends);
    /// with RESULT, when the fault hit, the VMs still faulting then and the round's wall time become its facts (a
    /// fault after every VM ended is an error: nothing was tested). Returns the restores' ended documents.</summary>
    public static async Task<List<JsonElement>> RunAsync(Bench bench, SnapdDaemon snapd, StrategyResult strategy,
        IReadOnlyList<string[]> workloads, Func<int, string> snapshotOf, CancellationToken ct,
        Func<Task>? fault = null, ScenarioResult? result = null, TimeSpan faultDelay = default,
        double? faultDeadlineSeconds = null)
    {
        var round = Stopwatch.StartNew();
        var made = new List<(string Label, string Id, Stopwatch Clock, JsonElement Posted, Task<VmmRun> Vm)>();
        for (int i = 0; i < workloads.Count; i++)
        {
            string snapshot = snapshotOf(i), label = $"{strategy.Name}.{i}";
            var clock = Stopwatch.StartNew();
            try
            {
                var (id, socket, posted) = await snapd.CreateDocAsync(snapshot, prefetch: false,
                    faultDeadlineSeconds: faultDeadlineSeconds);
                made.Add((label, id, clock, posted, Vmm.RunAsync(bench, bench.Image(snapshot), "handler", socket,
                    workloads[i], label, ct)));
            }
            catch (Exception ex) when (ex is InvalidOperationException or HttpRequestException)
            {
                strategy.AddFailure($"{label}: {ex.Message}", clock.Elapsed.TotalMilliseconds, ex.Message);
            }
        }
        Task? injected = null;
        if (fault is not null)
        {
            await AllFaultedAsync(snapd, made.Select(m => (m.Id, m.Vm)), ct);
            if (faultDelay > TimeSpan.Zero) await Task.Delay(faultDelay, ct);
            int running = made.Count(m => !m.Vm.IsCompleted);
            if (result is not null)
            {
                string name = strategy.Name;
                result.Facts[$"{name}: fault at (ms after the first POST)"] =
                    Math.Round(round.Elapsed.TotalMilliseconds);
                result.Facts[$"{name}: VMs still faulting at the fault"] = running;
                if (running == 0) result.Errors.Add($"{name}: every VM had finished before the fault: nothing tested");
            }
            injected = fault();
        }
        var docs = new List<JsonElement>();
        foreach (var (label, id, clock, posted, vm) in made)
        {
            var run = await vm;
            double us = clock.Elapsed.TotalMicroseconds;
            if (await Scenario.CountAsync(snapd, strategy, label, id, posted, run, us) is { } d) docs.Add(d);
        }
        if (result is not null)
            result.Facts[$"{strategy.Name}: wall (ms, first POST to last VMM exit)"] =
                Math.Round(round.Elapsed.TotalMilliseconds);
        if (injected is not null) await injected;
        return docs;
    }

    /// <summary>Waits (20 s at most for each) until each restore has served a fault or has ended, or its VM has.
    /// </summary>
    public static async Task AllFaultedAsync(SnapdDaemon snapd, IEnumerable<(string Id, Task<VmmRun> Vm)> restores,
        CancellationToken ct)
    {
        foreach (var (id, vm) in restores)
        {
            var wait = Stopwatch.StartNew();
            while (wait.Elapsed < TimeSpan.FromSeconds(20) && !vm.IsCompleted)
            {
                var d = await snapd.GetAsync(id);
                if (d.TryGetProperty("faults", out var f) && f.GetInt64() > 0) break;
                if (d.TryGetProperty("state", out var st) && st.GetString() is "exited" or "failed") break;
                await Task.Delay(5, ct);
            }
        }
    }
}
