using System.Globalization;
using System.Text;

namespace Snapshots.Snapbench;

/// <summary>What the fault scenarios share: N VMs at once (fn1..fn4 round robin) on walking traces, each round on
/// a daemon started for it (nothing in its memory), an optional fault injected once every VM has faulted, and the
/// round's tier figures as facts. A walking trace touches every <see cref="Stride"/>-th page in order, paced so a VM
/// faults for <see cref="RunSeconds"/>: a new 512 KiB chunk is fetched every few tens of ms for the whole run, so a
/// fault injected early lands with most chunks still to fetch (a random order would fetch every chunk of a small
/// image in its first tenth of a second).</summary>
public abstract class FaultScenario(string name, string description) : Scenario(name, description)
{
    private const int Stride = 8;

    /// <summary>How long after every VM's first fault the fault is injected.</summary>
    private static readonly TimeSpan FaultDelay = TimeSpan.FromMilliseconds(250);

    protected static int VmCount(Bench bench) => Math.Max(2, bench.Restores);

    protected static string SnapshotOf(int vm) => $"fn{(vm % Bench.Functions) + 1}";

    /// <summary>The snapshots the VMs of a round restore.</summary>
    protected static IEnumerable<string> Snapshots(Bench bench) =>
        Enumerable.Range(0, Math.Min(VmCount(bench), Bench.Functions)).Select(SnapshotOf);

    protected static double RunSeconds(Bench bench) => bench.Quick ? 2 : 6;

    /// <summary>The Redis layouts the node faults run in, as suffixes of the cluster's address: the default (3
    /// masters: striped, 2 data + 1 parity, where one lost node costs nothing) and the whole layout (a chunk on
    /// one node: the lost node's reads go to the origin).</summary>
    protected static IReadOnlyList<(string Name, string Query)> Layouts { get; } =
        [("striped", ""), ("whole", "?layout=whole")];

    /// <summary>One walking trace per VM, each starting at another point of the image (the VMs fetch different
    /// chunks at any moment); the workload fact says what they are.</summary>
    public static async Task<string[]> WalkTracesAsync(Bench bench, ScenarioResult result, string name,
        CancellationToken ct)
    {
        int n = VmCount(bench);
        long count = bench.Pages / Stride;
        // replay-vmm deals the accesses round robin to its vCPUs, each sleeping its own gaps.
        long gapUs = (long)(RunSeconds(bench) * 1e6 * Vmm.Vcpus / count);
        var traces = new string[n];
        for (int i = 0; i < n; i++)
        {
            var text = new StringBuilder();
            long first = count * i / n;
            for (long k = 0; k < count; k++)
                text.Append(CultureInfo.InvariantCulture, $"{((first + k) % count) * Stride * 4096L} {gapUs}\n");
            traces[i] = bench.WorkPath($"{name}.{i}.trace");
            await File.WriteAllTextAsync(traces[i], text.ToString(), ct);
        }
        result.Facts["VMs at once"] = n;
        result.Facts["workload"] = $"--trace: every {Stride}th page in order from a point of its own ({count} pages), "
            + $"{gapUs} us slept between accesses (about {RunSeconds(bench)} s of faults), --sleep-gaps";
        return traces;
    }

    /// <summary>Fills the caches the daemon ARGS names (Redis, a disk cache): one restore of every snapshot the
    /// rounds use, touching every page, on a daemon stopped afterwards (its fills flushed).</summary>
    protected static async Task WarmAsync(Bench bench, ScenarioResult result, string state, string[] args,
        CancellationToken ct)
    {
        var snapd = await bench.StartSnapdAsync(state, args);
        await NoteVersionAsync(snapd, result);
        var warm = new StrategyResult("warm-up", "");
        await Task.WhenAll(Snapshots(bench).Select(s =>
            RestoreAsync(bench, snapd, warm, s, false, ["--touch", "all"], $"{state}.{s}", ct)));
        if (!warm.Ok) result.Errors.AddRange(warm.Errors);
        await bench.StopSnapdAsync(snapd);
    }

    /// <summary>One round: a daemon started for it (ARGS); BEFORE once it answers; the N VMs (VM i restores
    /// SNAPSHOTOF(i), by default fn1..fn4 round robin); FAULT (given the daemon) once
    /// every VM has faulted (+<see cref="FaultDelay"/>), running beside them (awaited before the round ends); every VM
    /// verified and counted into S. The restores' tier figures and the daemon's /metrics become facts under
    /// S's name, and are returned.</summary>
    protected static async Task<RoundFigures> RunRoundAsync(Bench bench, ScenarioResult result, StrategyResult s,
        string state, string[] args, string[] traces, CancellationToken ct, Func<SnapdDaemon, Task>? before = null,
        Func<SnapdDaemon, Task>? fault = null, Func<int, string>? snapshotOf = null)
    {
        snapshotOf ??= SnapshotOf;
        // The labels the report and the tier bars show (every fault round is snapd's uffd loader over its tiers).
        s.Loader ??= "snapd uffd";
        s.Tier ??= string.Join(" + ", ((string[])[args.Contains("--cache-dir") ? "disk cache" : "",
            args.Contains("--redis") ? "redis" : "", "origin (s3rver)"]).Where(t => t.Length > 0));
        var snapd = await bench.StartSnapdAsync(state, args);
        if (before is not null) await before(snapd);
        var docs = await MidRestoreRound.RunAsync(bench, snapd, s,
            [.. traces.Select(t => (string[])["--trace", t, "--sleep-gaps"])], snapshotOf, ct,
            fault is null ? null : () => fault(snapd), result, FaultDelay);
        var sums = TierSums.Of(docs);
        result.Facts[$"{s.Name}: restores' tiers"] = sums.ToString();
        var metrics = await TierMetrics.NoteAsync(snapd, result, s.Name);
        await bench.StopSnapdAsync(snapd);
        return new RoundFigures(sums, metrics);
    }

    /// <summary>A round's figures: the chunks each tier served (the restores' documents), the daemon's
    /// /metrics (<see cref="TierMetrics"/>).</summary>
    protected sealed record RoundFigures(TierSums Tiers, IReadOnlyDictionary<string, double> Metrics)
    {
        public long Hits(string tier) => Tiers.Hits(tier);

        /// <summary>`snapd_tier_errors_total{TIER/KIND}`: error, timeout or corrupt.</summary>
        public long TierErrors(string tier, string kind) =>
            (long)Metrics.GetValueOrDefault($"snapd_tier_errors_total{{{tier}/{kind}}}");

        public double Metric(string key) => Metrics.GetValueOrDefault(key);
    }
}
