using HdrHistogram;

namespace Snapshots.Snapbench;

/// <summary>Quantiles of one distribution (HdrHistogram, 3 significant digits), in the unit named.</summary>
public sealed record Quantiles(string Unit, long Count, double P50, double P90, double P99, double P999, double Max,
    double Mean);

/// <summary>One restore as report.json lists it: restore time, the VMM's exit, pages wrong and its own
/// p99/max (us), and how it was counted.</summary>
public sealed record RunRecord(double RestoreMs, int VmmExit, long Bad, double? VmmP99Us, double? VmmMaxUs,
    string Outcome);

/// <summary>One strategy's restores: outcomes counted, restore time (us, the process's start or POST /v1/restores to
/// the VMM's exit) and fault latency (ns, every access replay-vmm timed) recorded in HdrHistograms.</summary>
public sealed class StrategyResult(string name, string description)
{
    private const long Highest = 3_600L * 1_000_000_000;
    private readonly List<double> _faultUs = [];

    public string Name { get; } = name;
    public string Description { get; } = description;
    public int Completed { get; private set; }
    public int Failed { get; private set; }
    public int Hung { get; private set; }
    public long BadPages { get; private set; }
    public List<string> Errors { get; } = [];
    public List<RunRecord> Runs { get; } = [];
    public LongHistogram RestoreUs { get; } = new(Highest / 1000, 3);
    public LongHistogram FaultNs { get; } = new(Highest, 3);

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
    /// ran out of time, or snapd's restore never ended: RESTOREHUNG).</summary>
    public void Add(VmmRun run, double restoreUs, string? restoreProblem = null, bool restoreHung = false)
    {
        lock (_faultUs)
        {
            if (run.Bad > 0) BadPages += run.Bad;
            string outcome = run.Hung || restoreHung ? "hung"
                : !run.Right || restoreProblem is not null ? "failed" : "completed";
            if (outcome == "hung") Hung++;
            else if (outcome == "failed") Failed++;
            else Completed++;
            Runs.Add(new RunRecord(Math.Round(restoreUs / 1000, 3), run.ExitCode, run.Bad, Field(run, "p99Us"),
                Field(run, "maxUs"), outcome));
            if (!run.Right) Errors.Add($"{Name}: VMM {run.Summary}");
            if (restoreProblem is not null) Errors.Add($"{Name}: {restoreProblem}");
            RestoreUs.RecordValue(Math.Clamp((long)restoreUs, 0, RestoreUs.HighestTrackableValue));
            foreach (var ns in run.LatenciesNs)
            {
                FaultNs.RecordValue(Math.Clamp(ns, 0, FaultNs.HighestTrackableValue));
                _faultUs.Add(ns / 1000.0);
            }
        }
    }

    private static double? Field(VmmRun run, string name) =>
        run.Json is { } j && j.TryGetProperty(name, out var v) ? v.GetDouble() : null;

    /// <summary>A restore that never reached its VMM (POST refused, the VMM not started).</summary>
    public void AddFailure(string problem)
    {
        lock (_faultUs)
        {
            Failed++;
            Errors.Add($"{Name}: {problem}");
        }
    }

    public int Total => Completed + Failed + Hung;

    public bool Ok => Failed == 0 && Hung == 0 && BadPages == 0 && Total > 0;

    public Quantiles RestoreMs => Of(RestoreUs, 1000.0, "ms");

    public Quantiles FaultUs => Of(FaultNs, 1000.0, "us");

    private static Quantiles Of(LongHistogram h, double div, string unit)
    {
        if (h.TotalCount == 0) return new Quantiles(unit, 0, 0, 0, 0, 0, 0, 0);
        return new Quantiles(unit, h.TotalCount, h.GetValueAtPercentile(50) / div, h.GetValueAtPercentile(90) / div,
            h.GetValueAtPercentile(99) / div, h.GetValueAtPercentile(99.9) / div, h.GetMaxValue() / div,
            h.GetMean() / div);
    }
}

/// <summary>One scenario's strategies, its own figures (facts) and what went wrong.</summary>
public sealed class ScenarioResult(string name, string description)
{
    public string Name { get; } = name;
    public string Description { get; } = description;
    public List<StrategyResult> Strategies { get; } = [];
    public Dictionary<string, object> Facts { get; } = [];
    public List<string> Errors { get; } = [];
    public double Seconds { get; set; }

    /// <summary>The strategies the ratios are taken against, when the scenario has them.</summary>
    public string? Ceiling { get; set; }
    public string? Naive { get; set; }

    public bool Ok => Errors.Count == 0 && Strategies.Count > 0 && Strategies.All(s => s.Ok);

    public StrategyResult Add(string strategy, string description)
    {
        var s = new StrategyResult(strategy, description);
        Strategies.Add(s);
        return s;
    }
}
