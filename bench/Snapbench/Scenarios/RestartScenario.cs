using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Snapshots.Snapbench;

/// <summary>snapd SIGKILLed while VMs fault and started again on the same state directory: every VM must still
/// verify, every restore be taken back; the same VMs without the kill as the baseline.</summary>
public sealed class RestartScenario() : Scenario("restart",
    "SIGKILL snapd while N VMs fault (slow traces), restart it at once; every VM must verify and be taken back")
{
    private const int GapUs = 600;

    public override async Task RunAsync(Bench bench, ScenarioResult result, CancellationToken ct)
    {
        int n = Math.Max(2, bench.Restores);
        int pages = (int)Math.Min(bench.Pages, 4096);
        result.Facts["VMs"] = n;
        result.Facts["workload"] = $"--trace: {pages} pages in a random order, {GapUs} us slept between accesses";
        var traces = new string[n];
        for (int i = 0; i < n; i++)
        {
            var rng = new Random(bench.Seed * 1000 + i);
            var order = Enumerable.Range(0, (int)bench.Pages).ToArray();
            rng.Shuffle(order);
            var text = new StringBuilder();
            foreach (var p in order.Take(pages)) text.Append(CultureInfo.InvariantCulture, $"{p * 4096L} {GapUs}\n");
            traces[i] = bench.WorkPath($"slow{i}.trace");
            await File.WriteAllTextAsync(traces[i], text.ToString(), ct);
        }
        var baseline = result.Add("no-restart", "the same VMs, snapd left alone (the baseline)");
        var killed = result.Add("sigkill-restart", "snapd SIGKILLed once every VM has faulted (+0.25 s), started again "
            + "at once on the same --state-dir; the new daemon must take every VM back");
        foreach (var (s, kill) in new[] { (baseline, false), (killed, true) })
        {
            (s.Planned, s.Loader, s.Tier) = (n, "snapd uffd", kill ? "disk cache warm" : "origin, cache cold");
            string state = kill ? "st.restart.kill" : "st.restart.none";
            string[] args = ["--cache-dir", bench.WorkPath("cache.restart")];
            var snapd = await bench.StartSnapdAsync(state, args);
            await NoteVersionAsync(snapd, result);
            var clock = Stopwatch.StartNew();
            var made = new List<(string Id, Task<VmmRun> Vm, JsonElement Posted)>();
            var sampling = Task.CompletedTask;
            Timeline? timeline = null;
            for (int i = 0; i < n; i++)
            {
                string snapshot = $"fn{(i % Bench.Functions) + 1}";
                var (id, socket, posted) = await snapd.CreateDocAsync(snapshot, prefetch: false);
                var vm = Vmm.RunAsync(bench, bench.Image(snapshot), "handler", socket,
                    ["--trace", traces[i], "--sleep-gaps"], $"{state}.{i}", ct);
                made.Add((id, vm, posted));
                // The first VM is sampled throughout: across the SIGKILL, the same API socket path reaches the
                // restarted daemon, so the timeline shows the gap and the restore taken back.
                if (i != 0) continue;
                timeline = result.AddTimeline(s, $"{state}.{i}");
                sampling = timeline.SampleAsync(snapd, id, clock, vm, ct);
            }
            if (kill)
            {
                foreach (var (id, _, _) in made)
                {
                    var wait = Stopwatch.StartNew();
                    while (wait.Elapsed < TimeSpan.FromSeconds(20))
                    {
                        var d = await snapd.GetAsync(id);
                        if (d.TryGetProperty("faults", out var f) && f.GetInt64() > 0) break;
                        await Task.Delay(5, ct);
                    }
                }
                await Task.Delay(250, ct);
                int running = made.Count(m => !m.Vm.IsCompleted);
                result.Facts["VMs still running at the SIGKILL"] = running;
                if (running == 0) result.Errors.Add("every VM had finished before the SIGKILL: nothing was tested");
                var restart = Stopwatch.StartNew();
                await snapd.KillAsync();
                snapd = await bench.StartSnapdAsync(state, args);
                result.Facts["restart (ms, SIGKILL to the new daemon's health answering)"] =
                    Math.Round(restart.Elapsed.TotalMilliseconds);
            }
            foreach (var (id, vm, posted) in made)
            {
                var run = await vm;
                double us = clock.Elapsed.TotalMicroseconds;
                var doc = await snapd.WaitEndedAsync(id, TimeSpan.FromSeconds(30));
                if (id == made[0].Id)
                {
                    await sampling; // its last sample first: the ended document must come last
                    timeline?.Add(doc, clock);
                }
                if (doc is { ValueKind: JsonValueKind.Object } d) s.Tiers.Add(posted, d);
                s.Add(run, us, Problem($"{s.Name}.{id}", id, doc, takenBack: kill), restoreHung: doc is null,
                    reason: Reason(doc));
            }
            await NoteMetricsAsync(snapd, result, kill ? "restarted snapd" : "snapd (no restart)");
            await snapd.StopAsync(TimeSpan.FromSeconds(30));
        }
    }
}
