using System.Diagnostics;
using System.Text.Json;

namespace Snapshots.Snapbench;

/// <summary>A round of VMs restored at once through one snapd, with a fault injected once every one of them has
/// faulted (so it lands mid-restore for all): each VM verified and counted into its strategy. Restore time: POST to
/// the VMM's exit.</summary>
public static class MidRestoreRound
{
    /// <summary>Restores N VMs (fn1..fnK round robin, WORKLOAD(i) each) at once; FAULT (null: none) runs once every
    /// restore has served a fault; the returned task ends when every VM has ended and been counted.</summary>
    public static async Task RunAsync(Bench bench, SnapdDaemon snapd, StrategyResult strategy, int n,
        Func<int, string[]> workload, Func<Task>? fault, CancellationToken ct, double? faultDeadlineSeconds = null)
    {
        var made = new List<(string Id, Stopwatch Clock, JsonElement Posted, Task<VmmRun> Vm)>();
        for (int i = 0; i < n; i++)
        {
            string snapshot = $"fn{(i % Bench.Functions) + 1}";
            var clock = Stopwatch.StartNew();
            string id, socket;
            JsonElement posted;
            try
            {
                (id, socket, posted) = await snapd.CreateDocAsync(snapshot, prefetch: false,
                    faultDeadlineSeconds: faultDeadlineSeconds);
            }
            catch (Exception ex) when (ex is InvalidOperationException or HttpRequestException)
            {
                strategy.AddFailure($"{strategy.Name}.{i}: {ex.Message}", clock.Elapsed.TotalMilliseconds, ex.Message);
                continue;
            }
            made.Add((id, clock, posted, Vmm.RunAsync(bench, bench.Image(snapshot), "handler", socket, workload(i),
                $"{strategy.Name}.{i}", ct)));
        }
        if (fault is not null)
        {
            await AllFaultedAsync(snapd, made.Select(m => (m.Id, m.Vm)), ct);
            await fault();
        }
        foreach (var (id, clock, posted, vm) in made)
        {
            var run = await vm;
            double us = clock.Elapsed.TotalMicroseconds;
            var doc = await snapd.WaitEndedAsync(id, TimeSpan.FromSeconds(run.Right ? 30 : 5));
            if (doc is { ValueKind: JsonValueKind.Object } d) strategy.Tiers.Add(posted, d);
            strategy.Add(run, us, Scenario.Problem($"{strategy.Name}.{id}", id, doc), restoreHung: doc is null,
                reason: Scenario.Reason(doc));
        }
    }

    /// <summary>Waits (20 s at most) until each restore has served a fault or its VM has ended.</summary>
    public static async Task AllFaultedAsync(SnapdDaemon snapd, IEnumerable<(string Id, Task<VmmRun> Vm)> restores,
        CancellationToken ct)
    {
        var wait = Stopwatch.StartNew();
        foreach (var (id, vm) in restores)
        {
            while (wait.Elapsed < TimeSpan.FromSeconds(20) && !vm.IsCompleted)
            {
                var d = await snapd.GetAsync(id);
                if (d.TryGetProperty("faults", out var f) && f.GetInt64() > 0) break;
                await Task.Delay(5, ct);
            }
        }
    }
}
