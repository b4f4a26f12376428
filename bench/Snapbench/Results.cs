using System.Text.RegularExpressions;
using HdrHistogram;

namespace Snapshots.Snapbench;

/// <summary>Quantiles of one distribution (HdrHistogram, 3 significant digits), in the unit named.</summary>
public sealed record Quantiles(string Unit, long Count, double P50, double P90, double P99, double P999, double Max,
    double Mean);

/// <summary>One restore as report.json lists it: restore time, the VMM's exit, pages wrong and its own
/// p99/max (us), and how it was counted; for a failed or hung one, why (the restore document's reason, else the
/// VMM's stderr, else what snapbench saw) and, failed, whether it failed with a reason within its strategy's
/// deadline (RestoreMs is then the time to fail: POST to the VMM's exit, or to the POST's refusal).</summary>
public sealed record RunRecord(double RestoreMs, int VmmExit, long Bad, double? VmmP99Us, double? VmmMaxUs,
    string Outcome, string? Reason = null, bool? FailedInTime = null);

/// <summary>One strategy's restores: outcomes counted, restore time (us, the process's start or POST /v1/restores to
/// the VMM's exit) and fault latency (ns, every access replay-vmm timed) recorded in HdrHistograms.</summary>
public sealed partial class StrategyResult(string name, string description)
{
    private const long Highest = 3_600L * 1_000_000_000;
    private readonly List<double> _faultUs = [];

    public string Name { get; } = name;
    public string Description { get; } = description;

    /// <summary>Where the chunks come from, as the report names it ("local warm", "redis warm", "origin").</summary>
    public string? Tier { get; set; }

    /// <summary>What serves the faults ("snapd uffd", "chunkfs", "minimal C handler").</summary>
    public string? Loader { get; set; }

    /// <summary>These restores are meant to fail (an origin refusing past the fault deadline): the strategy is ok
    /// when every restore completed or failed with a reason within <see cref="Deadline"/> + <see cref="Slack"/>,
    /// with no wrong page and no hang.</summary>
    public bool ExpectFailure { get; set; }

    /// <summary>The time a failure must be seen within (POST to the VMM's exit); null: any time.</summary>
    public TimeSpan? Deadline { get; set; }

    /// <summary>Allowed past <see cref="Deadline"/>: killing the VMM and ending the restore take a moment.</summary>
    public TimeSpan Slack { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>The restores the scenario means to make, for the progress display (null: --restores).</summary>
    public int? Planned { get; set; }

    /// <summary>The restore documents' tiers, summed (<see cref="TierTotals"/>).</summary>
    public TierTotals Tiers { get; } = new();

    /// <summary>Called after each restore is counted (the progress display).</summary>
    internal Action<StrategyResult, RunRecord>? Counted { get; set; }

    public int Completed { get; private set; }
    public int Failed { get; private set; }
    public int Hung { get; private set; }
    public long BadPages { get; private set; }
    public List<string> Errors { get; } = [];
    public List<RunRecord> Runs { get; } = [];
    public LongHistogram RestoreUs { get; } = new(Highest / 1000, 3);
    public LongHistogram FaultNs { get; } = new(Highest, 3);

    /// <summary>Time to fail (us) of the failed restores: POST to the VMM's exit, or to the POST's refusal.</summary>
    public LongHistogram FailUs { get; } = new(Highest / 1000, 3);

    /// <summary>Sorted fault latencies (us) for the CDF plots.</summary>
    public IReadOnlyList<double> FaultUsSorted
    {
        get
        {
            lock (_faultUs)
            {
                _faultUs.Sort();
                return [.. _faultUs];
            }
        }
    }

    /// <summary>Counts one restore: right (every page verified, the restore ended well), failed, or hung (the VMM
    /// ran out of time, or snapd's restore never ended: RESTOREHUNG). REASON: the restore document's, when it
    /// failed.</summary>
    public void Add(VmmRun run, double restoreUs, string? restoreProblem = null, bool restoreHung = false,
        string? reason = null)
    {
        RunRecord record;
        lock (_faultUs)
        {
            if (run.Bad > 0) BadPages += run.Bad;
            string outcome = run.Hung || restoreHung ? "hung"
                : !run.Right || restoreProblem is not null ? "failed" : "completed";
            if (outcome == "hung") Hung++;
            else if (outcome == "failed") Failed++;
            else Completed++;
            double ms = Math.Round(restoreUs / 1000, 3);
            bool? inTime = null;
            // A VMM that verified every page has nothing to say about its restore's problem: its stderr is not
            // the reason then.
            if (outcome != "completed") reason = Why(reason, run.Right ? "" : run.Stderr, restoreProblem);
            if (outcome == "hung") reason ??= run.Killed ? "the VMM ran past its time: killed" : "no end seen";
            if (outcome == "failed")
            {
                inTime = InTime(reason, ms);
                FailUs.RecordValue(Math.Clamp((long)restoreUs, 0, FailUs.HighestTrackableValue));
            }
            record = new RunRecord(ms, run.ExitCode, run.Bad, Field(run, "p99Us"), Field(run, "maxUs"), outcome,
                reason, inTime);
            Runs.Add(record);
            // A failure this strategy expects, clear and in time, is its figures, not an error to list.
            bool expected = ExpectFailure && inTime == true && run.Bad <= 0;
            if (!run.Right && !expected) Errors.Add($"{Name}: VMM {run.Summary}");
            if (restoreProblem is not null && !expected) Errors.Add($"{Name}: {restoreProblem}");
            RestoreUs.RecordValue(Math.Clamp((long)restoreUs, 0, RestoreUs.HighestTrackableValue));
            foreach (var ns in run.LatenciesNs)
            {
                FaultNs.RecordValue(Math.Clamp(ns, 0, FaultNs.HighestTrackableValue));
                _faultUs.Add(ns / 1000.0);
            }
        }
        Counted?.Invoke(this, record);
    }

    /// <summary>Counts one restore that had no replay-vmm (a real guest under QEMU): RESTOREUS is its restore
    /// time (or time to fail); PROBLEM, when not null, fails it (a wrong answer, a timeout, a restore that did not
    /// end well), REASON saying why (PROBLEM when null); RESTOREHUNG: snapd's restore never ended.</summary>
    public void Add(double restoreUs, string? problem, string? reason = null, bool restoreHung = false)
    {
        RunRecord record;
        lock (_faultUs)
        {
            string outcome = restoreHung ? "hung" : problem is not null ? "failed" : "completed";
            if (outcome == "hung") Hung++;
            else if (outcome == "failed") Failed++;
            else Completed++;
            double ms = Math.Round(restoreUs / 1000, 3);
            bool? inTime = null;
            if (outcome != "completed") reason = Why(reason, "", problem);
            if (outcome == "failed")
            {
                inTime = InTime(reason, ms);
                FailUs.RecordValue(Math.Clamp((long)restoreUs, 0, FailUs.HighestTrackableValue));
            }
            // No replay-vmm: no exit code, no page count, no access latencies of its own.
            record = new RunRecord(ms, -1, 0, null, null, outcome, reason, inTime);
            Runs.Add(record);
            if (problem is not null && !(ExpectFailure && inTime == true)) Errors.Add($"{Name}: {problem}");
            RestoreUs.RecordValue(Math.Clamp((long)restoreUs, 0, RestoreUs.HighestTrackableValue));
        }
        Counted?.Invoke(this, record);
    }

    /// <summary>The first non-empty of: the restore document's reason, the VMM's stderr (its last line: where it
    /// says what stopped it), the problem snapbench saw.</summary>
    private static string? Why(string? reason, string stderr, string? problem)
    {
        if (!string.IsNullOrWhiteSpace(reason)) return reason.Trim();
        var last = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .LastOrDefault();
        return last ?? problem;
    }

    private bool InTime(string? reason, double ms) =>
        !string.IsNullOrWhiteSpace(reason) && (Deadline is not { } d || ms <= (d + Slack).TotalMilliseconds);

    private static double? Field(VmmRun run, string name) =>
        run.Json is { } j && j.TryGetProperty(name, out var v) ? v.GetDouble() : null;

    /// <summary>A restore that never reached its VMM (POST refused, the VMM not started); FAILMS: from the POST
    /// to the refusal; REASON: what refused it (PROBLEM, which names the restore, when null).</summary>
    public void AddFailure(string problem, double failMs = 0, string? reason = null)
    {
        RunRecord record;
        lock (_faultUs)
        {
            Failed++;
            reason ??= problem;
            bool inTime = InTime(reason, failMs);
            if (!(ExpectFailure && inTime)) Errors.Add($"{Name}: {problem}");
            FailUs.RecordValue(Math.Clamp((long)(failMs * 1000), 0, FailUs.HighestTrackableValue));
            record = new RunRecord(Math.Round(failMs, 3), -1, 0, null, null, "failed", reason, inTime);
            Runs.Add(record);
        }
        Counted?.Invoke(this, record);
    }

    public int Total => Completed + Failed + Hung;

    /// <summary>Failed restores that said why within the deadline (any time when there is none).</summary>
    public int FailedInTime => Snapshot().Count(r => r.FailedInTime == true);

    /// <summary>Failed restores past the deadline or without a reason.</summary>
    public int FailedLate => Failed - FailedInTime;

    /// <summary>The first few distinct reasons restores failed or hung for: reasons differing only in their
    /// numbers (ids, offsets, times) are one.</summary>
    public IReadOnlyList<string> Reasons(int count = 5) =>
        [.. Snapshot().Where(r => r.Reason is not null).Select(r => r.Reason!)
            .DistinctBy(r => Numbers().Replace(r, "#")).Take(count)];

    [GeneratedRegex("[0-9a-f]*[0-9][0-9a-f]*")]
    private static partial Regex Numbers();

    /// <summary>Every restore right; for <see cref="ExpectFailure"/>, every failure clear and in time instead.
    /// </summary>
    public bool Ok => Hung == 0 && BadPages == 0 && Total > 0 && (ExpectFailure ? FailedLate == 0 : Failed == 0);

    private List<RunRecord> Snapshot()
    {
        lock (_faultUs) return [.. Runs];
    }

    public Quantiles RestoreMs => Of(RestoreUs, 1000.0, "ms");

    public Quantiles FaultUs => Of(FaultNs, 1000.0, "us");

    public Quantiles FailMs => Of(FailUs, 1000.0, "ms");

    private static Quantiles Of(LongHistogram h, double div, string unit)
    {
        if (h.TotalCount == 0) return new Quantiles(unit, 0, 0, 0, 0, 0, 0, 0);
        return new Quantiles(unit, h.TotalCount, h.GetValueAtPercentile(50) / div, h.GetValueAtPercentile(90) / div,
            h.GetValueAtPercentile(99) / div, h.GetValueAtPercentile(99.9) / div, h.GetMaxValue() / div,
            h.GetMean() / div);
    }
}
