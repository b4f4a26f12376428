using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Snapshots.Snapbench;

/// <summary>A scenario: a name, one line saying what it does, and its run.</summary>
public abstract class Scenario(string name, string description)
{
    public string Name { get; } = name;
    public string Description { get; } = description;

    public abstract Task RunAsync(Bench bench, ScenarioResult result, CancellationToken ct);

    /// <summary>One restore through snapd: POST /v1/restores, replay-vmm on its socket, the restore's document once
    /// ended; counted into STRATEGY. Restore time: POST to the VMM's exit.</summary>
    protected static async Task<(VmmRun? Run, JsonElement? Doc)> RestoreAsync(Bench bench, SnapdDaemon snapd,
        StrategyResult strategy, string snapshot, bool prefetch, string[] workload, string label,
        CancellationToken ct, bool record = false)
    {
        var clock = Stopwatch.StartNew();
        string id, socket;
        try
        {
            (id, socket) = await snapd.CreateAsync(snapshot, prefetch, record);
        }
        catch (Exception ex) when (ex is InvalidOperationException or HttpRequestException)
        {
            strategy.AddFailure($"{label}: {ex.Message}");
            return (null, null);
        }
        var run = await Vmm.RunAsync(bench, bench.Image(snapshot), "handler", socket, workload, label, ct);
        double us = clock.Elapsed.TotalMicroseconds;
        var doc = await snapd.WaitEndedAsync(id, TimeSpan.FromSeconds(30));
        strategy.Add(run, us, Problem(label, id, doc), restoreHung: doc is null);
        return (run, doc);
    }

    /// <summary>What is wrong with an ended restore's document (null: nothing).</summary>
    protected static string? Problem(string label, string id, JsonElement? doc, bool takenBack = false)
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
    /// histogram's count and sum (PREFIX names the daemon).</summary>
    protected static async Task NoteMetricsAsync(SnapdDaemon snapd, ScenarioResult result, string prefix)
    {
        string text;
        try
        {
            text = await snapd.MetricsAsync();
        }
        catch (HttpRequestException ex)
        {
            result.Errors.Add($"{prefix}: /metrics: {ex.Message}");
            return;
        }
        foreach (var line in text.Split('\n'))
        {
            var parts = line.Split(' ');
            if (parts.Length != 2 || line.StartsWith('#')) continue;
            if (parts[0] is "snapd_faults_total" or "process_cpu_seconds_total" or "snapd_fault_latency_seconds_count"
                or "snapd_fault_latency_seconds_sum" or "snapd_parked_faults_total"
                && double.TryParse(parts[1], CultureInfo.InvariantCulture, out var v))
                result.Facts[$"{prefix} {parts[0]}"] = Math.Round(v, 4);
        }
    }

    protected static async Task NoteVersionAsync(SnapdDaemon snapd, ScenarioResult result)
    {
        var h = await snapd.HealthAsync();
        if (h.TryGetProperty("version", out var v)) result.Facts["snapd version"] = v.ToString();
    }
}

public static class Scenarios
{
    public static IReadOnlyList<Scenario> All { get; } =
        [new StrategiesScenario(), new ConcurrentScenario(), new RestartScenario()];
}

/// <summary>The same workload through four loaders, one restore at a time, interleaved.</summary>
public sealed class StrategiesScenario() : Scenario("strategies",
    "resident ceiling, minimal C handler (naive peer), snapd without and with prefetch (a plan recorded first), "
    + "the same workload side by side")
{
    public override async Task RunAsync(Bench bench, ScenarioResult result, CancellationToken ct)
    {
        const string Snapshot = "fn1";
        long touch = bench.Pages / (bench.Quick ? 4 : 2);
        var workload = Vmm.Random(touch, bench.Seed);
        result.Facts["snapshot"] = Snapshot;
        result.Facts["workload"] = $"--touch random:{touch}:{bench.Seed} (the same every restore)";
        result.Ceiling = "resident";
        result.Naive = "minimal";
        var resident = result.Add("resident", "replay-vmm --mode resident: the image copied in before the first "
            + "access, no fault at all (the ceiling); restore time = the process's whole run");
        var minimal = result.Add("minimal", "replay-vmm --mode minimal: the minimal C uffd handler copying from the "
            + "local image file (the naive peer)");
        var plain = result.Add("snapd",
            "snapd, prefetch: false: every page on demand (memory tier warm after the first)");
        var prefetch = result.Add("snapd-prefetch", "snapd, prefetch: true, following the plan recorded from one "
            + "restore of the same workload (record: true, --plan-merge-logs 1)");

        var snapd = await bench.StartSnapdAsync("st.strategies", "--cache-dir", bench.WorkPath("cache.strategies"),
            "--plan-merge-logs", "1");
        await NoteVersionAsync(snapd, result);
        var recorder = result.Add("snapd-record", "snapd, one restore with record: true: its access log becomes "
            + "the plan snapd-prefetch follows");
        var (_, doc) = await RestoreAsync(bench, snapd, recorder, Snapshot, false, workload, "record", ct,
            record: true);
        var clock = Stopwatch.StartNew();
        while (await PlansPublishedAsync(snapd) < 1 && clock.Elapsed < TimeSpan.FromSeconds(60))
            await Task.Delay(50, ct);
        int plans = await PlansPublishedAsync(snapd);
        result.Facts["plan published (s after the recorded VM ended)"] = Math.Round(clock.Elapsed.TotalSeconds, 2);
        if (plans < 1) result.Errors.Add("no plan published within 60 s of the recorded restore");

        long planned = 0, prefetched = 0;
        for (int i = 0; i < bench.Restores; i++)
        {
            var r = await Vmm.RunAsync(bench, bench.Image(Snapshot), "resident", null, workload, $"resident.{i}", ct);
            resident.Add(r, r.WallUs);
            r = await Vmm.RunAsync(bench, bench.Image(Snapshot), "minimal", null, workload, $"minimal.{i}", ct);
            minimal.Add(r, r.WallUs);
            await RestoreAsync(bench, snapd, plain, Snapshot, false, workload, $"snapd.{i}", ct);
            (_, doc) = await RestoreAsync(bench, snapd, prefetch, Snapshot, true, workload, $"snapd-prefetch.{i}", ct);
            if (doc is { ValueKind: JsonValueKind.Object } d && d.TryGetProperty("prefetch", out var p)
                && p.ValueKind == JsonValueKind.Object)
            {
                planned += p.GetProperty("plannedPages").GetInt64();
                prefetched += p.GetProperty("prefetchedPages").GetInt64();
            }
        }
        result.Facts["snapd-prefetch planned / prefetched pages (all restores)"] = $"{planned} / {prefetched}";
        await NoteMetricsAsync(snapd, result, "snapd");
        if (plans >= 1 && planned == 0) result.Errors.Add("snapd-prefetch restores followed no plan (plannedPages 0)");
    }
}

/// <summary>N restores at once on one daemon, cold (fresh daemon, empty cache) then warm (the same daemon
/// again).</summary>
public sealed class ConcurrentScenario() : Scenario("concurrent",
    "N restores at once (--restores) on one snapd, fn1..fn4 round robin: cold (fresh daemon), then warm (again)")
{
    public override async Task RunAsync(Bench bench, ScenarioResult result, CancellationToken ct)
    {
        int n = Math.Max(2, bench.Restores);
        long touch = bench.Pages / 4;
        result.Facts["VMs at once"] = n;
        result.Facts["workload"] = $"--touch random:{touch}:SEED+i (a seed per VM)";
        var snapd = await bench.StartSnapdAsync("st.concurrent", "--cache-dir", bench.WorkPath("cache.concurrent"));
        await NoteVersionAsync(snapd, result);
        foreach (var round in new[] { "cold", "warm" })
        {
            var s = result.Add($"{round}-x{n}", $"{n} restores at once, {round} (memory tier "
                + (round == "cold" ? "and disk cache empty)" : "holding the cold round's chunks)"));
            var clock = Stopwatch.StartNew();
            var tasks = Enumerable.Range(0, n).Select(i => RestoreAsync(bench, snapd, s,
                $"fn{(i % Bench.Functions) + 1}", false, Vmm.Random(touch, bench.Seed + i), $"{round}.{i}", ct))
                .ToList();
            await Task.WhenAll(tasks);
            result.Facts[$"{round} wall (ms, first POST to last VMM exit)"] =
                Math.Round(clock.Elapsed.TotalMilliseconds);
            await NoteMetricsAsync(snapd, result, $"snapd after {round}");
        }
    }
}

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
            string state = kill ? "st.restart.kill" : "st.restart.none";
            string[] args = ["--cache-dir", bench.WorkPath("cache.restart")];
            var snapd = await bench.StartSnapdAsync(state, args);
            await NoteVersionAsync(snapd, result);
            var clock = Stopwatch.StartNew();
            var made = new List<(string Id, Task<VmmRun> Vm)>();
            for (int i = 0; i < n; i++)
            {
                string snapshot = $"fn{(i % Bench.Functions) + 1}";
                var (id, socket) = await snapd.CreateAsync(snapshot, prefetch: false);
                made.Add((id, Vmm.RunAsync(bench, bench.Image(snapshot), "handler", socket,
                    ["--trace", traces[i], "--sleep-gaps"], $"{state}.{i}", ct)));
            }
            if (kill)
            {
                foreach (var (id, _) in made)
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
            foreach (var (id, vm) in made)
            {
                var run = await vm;
                double us = clock.Elapsed.TotalMicroseconds;
                var doc = await snapd.WaitEndedAsync(id, TimeSpan.FromSeconds(30));
                s.Add(run, us, Problem($"{s.Name}.{id}", id, doc, takenBack: kill), restoreHung: doc is null);
            }
            await NoteMetricsAsync(snapd, result, kill ? "restarted snapd" : "snapd (no restart)");
            await snapd.StopAsync(TimeSpan.FromSeconds(30));
        }
    }
}
