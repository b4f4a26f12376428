using System.Diagnostics;

namespace Snapshots.Snapbench;

/// <summary>N restores at once on one daemon, cold (fresh daemon, empty cache) then warm (the same daemon
/// again).</summary>
public sealed class ConcurrentScenario() : Scenario("concurrent",
    "16 restores at once (--quick: --restores) on one snapd, fn1..fn4 round robin: cold (fresh daemon), then warm "
    + "(again)")
{
    public override async Task RunAsync(Bench bench, ScenarioResult result, CancellationToken ct)
    {
        // 16 at once, as on a busy worker host; --quick: --restores (at least 2).
        int n = bench.Quick ? Math.Max(2, bench.Restores) : 16;
        long touch = bench.Pages / 4;
        result.Facts["VMs at once"] = n;
        result.Facts["workload"] = $"--touch random:{touch}:SEED+i (a seed per VM)";
        var snapd = await bench.StartSnapdAsync("st.concurrent", "--cache-dir", bench.WorkPath("cache.concurrent"));
        await NoteVersionAsync(snapd, result);
        foreach (var round in new[] { "cold", "warm" })
        {
            var s = result.Add($"{round}-x{n}", $"{n} restores at once, {round} (memory tier "
                + (round == "cold" ? "and disk cache empty)" : "holding the cold round's chunks)"));
            (s.Planned, s.Loader) = (n, "snapd uffd");
            s.Tier = round == "cold" ? "origin, cache cold" : "disk cache warm";
            var clock = Stopwatch.StartNew();
            var tasks = Enumerable.Range(0, n).Select(i => RestoreAsync(bench, snapd, s,
                $"fn{(i % Bench.Functions) + 1}", false, Vmm.Random(touch, bench.Seed + i), $"{round}.{i}", ct,
                timeline: i == 0 ? result.AddTimeline(s, $"{round}.{i}") : null))
                .ToList();
            await Task.WhenAll(tasks);
            result.Facts[$"{round} wall (ms, first POST to last VMM exit)"] =
                Math.Round(clock.Elapsed.TotalMilliseconds);
            await NoteMetricsAsync(snapd, result, $"snapd after {round}");
        }
    }
}
