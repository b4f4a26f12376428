using System.Globalization;
using System.Text;

namespace Snapshots.Snapbench;

/// <summary>report.md: the headline first (per scenario: ok or FAILED, the key ratios, the fault outcomes), then
/// per scenario its tables (latencies, ratios, tiers, fault outcomes) and its plots.</summary>
public sealed partial class Report
{
    private static readonly CultureInfo Ci = CultureInfo.InvariantCulture;

    private string Markdown(List<string> plots)
    {
        var m = Machine();
        var b = new StringBuilder();
        b.AppendLine(Ci, $"# snapbench: {(Ok ? "ok" : "FAILED")}");
        b.AppendLine();
        b.AppendLine(Ci, $"Command: `snapbench run --scenario {string.Join(",", Scenarios.Select(s => s.Name))} "
            + $"--restores {bench.Restores} --seed {bench.Seed}{(bench.Quick ? " --quick" : "")}`");
        b.AppendLine(Ci, $"- Machine: {m["cpu"]}, nproc {m["nproc"]}, {m["memoryMiB"]} MiB, kernel {m["kernel"]}");
        b.AppendLine(Ci, $"- Load: start {_loadStart}; end {m["loadEnd"]}");
        b.AppendLine(Ci, $"- {_started:yyyy-MM-dd HH:mm:ss} UTC; images {bench.ImageSize >> 20} MiB; every VM "
            + $"`replay-vmm --vcpus {Vmm.Vcpus}`, every page it touched compared with the image (one wrong byte "
            + $"fails the run)");
        foreach (var e in Errors) b.AppendLine(Ci, $"- ERROR: {e}");
        b.AppendLine();
        b.AppendLine("## Headline");
        b.AppendLine();
        foreach (var s in Scenarios) Headline(b, s);
        foreach (var s in Scenarios) Section(b, s, plots);
        return b.ToString();
    }

    /// <summary>One line per scenario: its verdict, restore p50 against the ceiling and the naive peer, and what
    /// became of its restores.</summary>
    private static void Headline(StringBuilder b, ScenarioResult s)
    {
        b.Append(Ci, $"- **{s.Name}**: {(s.Ok ? "ok" : "FAILED")} ({s.Seconds:F1} s)");
        var compared = s.Strategies.Where(t => t.Name != s.Ceiling && t.Name != s.Naive && t.RestoreMs.Count > 0)
            .Select(t => (t.Name, Ratios(s, t))).Where(x => x.Item2.Count > 0).ToList();
        if (compared.Count > 0)
        {
            b.Append(Ci, $"; restore p50 vs the ceiling ({s.Ceiling}) / the naive peer ({s.Naive}): ");
            b.AppendJoin(", ", compared.Select(x =>
                $"{x.Name} {R(x.Item2, "restoreP50VsTheCeiling")} / {R(x.Item2, "restoreP50VsTheNaive")}"));
        }
        var all = s.Strategies;
        b.AppendLine(Ci, $"; restores: {all.Sum(t => t.Completed)} completed, {all.Sum(t => t.FailedInTime)} failed "
            + $"with a reason in time, {all.Sum(t => t.FailedLate)} failed late or without a reason, "
            + $"{all.Sum(t => t.BadPages)} wrong pages, {all.Sum(t => t.Hung)} hangs");
    }

    private static void Section(StringBuilder b, ScenarioResult s, List<string> plots)
    {
        b.AppendLine();
        b.AppendLine(Ci, $"## {s.Name}: {(s.Ok ? "ok" : "FAILED")} ({s.Seconds:F1} s)");
        b.AppendLine();
        b.AppendLine(s.Description);
        b.AppendLine();
        foreach (var (k, v) in s.Facts) b.AppendLine(Ci, $"- {k}: {Format(v)}");
        if (s.Facts.Count > 0) b.AppendLine();
        LatencyTable(b, s);
        RatioTable(b, s);
        TierTable(b, s);
        FaultTable(b, s);
        foreach (var t in s.Strategies) b.AppendLine(Ci, $"\n- {t.Name}: {t.Description}");
        var errors = s.Errors.Concat(s.Strategies.SelectMany(t => t.Errors)).ToList();
        if (errors.Count > 0)
        {
            b.AppendLine();
            b.AppendLine("Errors:");
            foreach (var e in errors.Take(30)) b.AppendLine(Ci, $"- {e}");
        }
        foreach (var (png, what) in new[]
        {
            ($"latency-cdf-{s.Name}.png", "fault latency CDF"), ($"restore-cdf-{s.Name}.png", "restore time CDF"),
            ($"tier-bars-{s.Name}.png", "restore and fault p50/p99 per strategy"),
            ($"timeline-{s.Name}.png", "restore timeline"),
        })
        {
            if (plots.Contains(png)) b.AppendLine(Ci, $"\n![{what}, {s.Name}]({png})");
        }
    }

    private static void LatencyTable(StringBuilder b, ScenarioResult s)
    {
        b.AppendLine("| strategy | ok / failed / hung | bad pages | restore p50 / p90 / p99 / p99.9 (ms) "
            + "| access latency p50 / p90 / p99 / p99.9 / max (us; every access, resident pages too) "
            + "| accesses timed |");
        b.AppendLine("|---|---|---|---|---|---|");
        foreach (var t in s.Strategies)
        {
            var r = t.RestoreMs;
            var f = t.FaultUs;
            b.AppendLine(Ci, $"| {Label(t)} | {t.Completed} / {t.Failed} / {t.Hung} | {t.BadPages} "
                + $"| {r.P50:F1} / {r.P90:F1} / {r.P99:F1} / {r.P999:F1} "
                + $"| {f.P50:F1} / {f.P90:F1} / {f.P99:F1} / {f.P999:F1} / {f.Max:F0} | {f.Count} |");
        }
    }

    private static void RatioTable(StringBuilder b, ScenarioResult s)
    {
        if (s.Ceiling is null && s.Naive is null) return;
        b.AppendLine();
        b.AppendLine(Ci, $"Ratios (p50 / p99) against the ceiling ({s.Ceiling}) and the naive peer ({s.Naive}):");
        b.AppendLine();
        b.AppendLine("| strategy | restore vs ceiling | restore vs naive | fault vs ceiling | fault vs naive |");
        b.AppendLine("|---|---|---|---|---|");
        foreach (var t in s.Strategies)
        {
            var x = Ratios(s, t);
            string P(string what, string who) => $"{R(x, $"{what}P50VsThe{who}")} / {R(x, $"{what}P99VsThe{who}")}";
            b.AppendLine(Ci, $"| {t.Name} | {P("restore", "Ceiling")} | {P("restore", "Naive")} "
                + $"| {P("fault", "Ceiling")} | {P("fault", "Naive")} |");
        }
    }

    /// <summary>Chunks and bytes each tier served each strategy (the restore documents' tiers), and the hit ratio:
    /// the tier's share of the chunks all tiers served that strategy.</summary>
    private static void TierTable(StringBuilder b, ScenarioResult s)
    {
        var with = s.Strategies.Where(t => t.Tiers.Tiers.Count > 0).ToList();
        if (with.Count == 0) return;
        b.AppendLine();
        b.AppendLine("Tiers (what each restore's snapshot memory tier fetched while it ran, summed; hit ratio: the "
            + "tier's share of those chunks; failures only as the documents give them, the daemon's host-wide ones "
            + "are the facts `snapd_tier_errors_total`):");
        b.AppendLine();
        b.AppendLine("| strategy | tier | chunks | hit ratio | MiB | errors / timeouts / corrupt |");
        b.AppendLine("|---|---|---|---|---|---|");
        foreach (var t in with)
        {
            foreach (var x in t.Tiers.Tiers)
            {
                b.AppendLine(Ci, $"| {Label(t)} | {x.Tier} | {x.Hits} | {x.HitRatio:P1} | {x.Bytes / 1048576.0:F2} "
                    + $"| {x.Errors} / {x.Timeouts} / {x.Corrupt} |");
            }
            if (t.Tiers.Memory.Count > 0)
            {
                string memory = string.Join(", ", t.Tiers.Memory.Select(kv => $"{kv.Key} {Format(kv.Value)}"));
                b.AppendLine(Ci, $"| {Label(t)} | memory | {memory} | | | |");
            }
        }
    }

    /// <summary>What became of the restores, when some were meant to fail or did: failures with a reason within
    /// the deadline are the clear ones, the others (late, or no reason) are not.</summary>
    private static void FaultTable(StringBuilder b, ScenarioResult s)
    {
        if (!s.Strategies.Any(t => t.ExpectFailure || t.Failed + t.Hung > 0)) return;
        b.AppendLine();
        b.AppendLine("Fault outcomes:");
        b.AppendLine();
        b.AppendLine("| strategy | expected | deadline (s) | completed | failed with reason in time "
            + "| failed late / no reason | wrong pages | hangs | time to fail p50 / max (ms) | restore p50 / p99 (ms) "
            + "| fault p99 (us) |");
        b.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var t in s.Strategies)
        {
            string deadline = t.Deadline is { } d ? $"{d.TotalSeconds:G4} (+{t.Slack.TotalSeconds:G3})" : "-";
            b.AppendLine(Ci, $"| {Label(t)} | {(t.ExpectFailure ? "failures" : "success")} | {deadline} "
                + $"| {t.Completed} | {t.FailedInTime} | {t.FailedLate} | {t.BadPages} | {t.Hung} "
                + $"| {Fail(t)} | {t.RestoreMs.P50:F1} / {t.RestoreMs.P99:F1} | {t.FaultUs.P99:F1} |");
        }
        foreach (var t in s.Strategies.Where(t => t.Reasons().Count > 0))
        {
            b.AppendLine();
            b.AppendLine(Ci, $"Reasons, {t.Name}:");
            foreach (var r in t.Reasons()) b.AppendLine(Ci, $"- {r.ReplaceLineEndings(" ")}");
        }
    }

    private static string Fail(StrategyResult t) =>
        t.FailMs.Count == 0 ? "-" : string.Create(Ci, $"{t.FailMs.P50:F1} / {t.FailMs.Max:F1}");

    /// <summary>The strategy's name, with its tier and loader labels when it has them.</summary>
    private static string Label(StrategyResult t)
    {
        var labels = new[] { t.Tier, t.Loader }.Where(l => !string.IsNullOrEmpty(l)).ToList();
        return labels.Count == 0 ? t.Name : $"{t.Name} ({string.Join(", ", labels)})";
    }

    private static string R(Dictionary<string, double?> x, string key) =>
        x.TryGetValue(key, out var v) && v is { } d ? d.ToString("F2", Ci) + "x" : "-";
}
