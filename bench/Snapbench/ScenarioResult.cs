namespace Snapshots.Snapbench;

/// <summary>One scenario's strategies, its own figures (facts) and what went wrong.</summary>
public sealed class ScenarioResult(string name, string description)
{
    public string Name { get; } = name;
    public string Description { get; } = description;
    public List<StrategyResult> Strategies { get; } = [];
    public Dictionary<string, object> Facts { get; } = [];
    public List<string> Errors { get; } = [];
    public double Seconds { get; set; }

    /// <summary>Restores sampled while they ran (<see cref="AddTimeline"/>), for the timeline plot.</summary>
    public List<Timeline> Timelines { get; } = [];

    /// <summary>Called after each restore of any strategy is counted (the progress display).</summary>
    internal Action<StrategyResult, RunRecord>? Counted { get; set; }

    /// <summary>The strategies the ratios are taken against, when the scenario has them.</summary>
    public string? Ceiling { get; set; }
    public string? Naive { get; set; }

    public bool Ok => Errors.Count == 0 && Strategies.Count > 0 && Strategies.All(s => s.Ok);

    /// <summary>A strategy of this scenario; TIER and LOADER label it in the tables and the tier bars.</summary>
    public StrategyResult Add(string strategy, string description, string? tier = null, string? loader = null)
    {
        var s = new StrategyResult(strategy, description) { Counted = Counted, Tier = tier, Loader = loader };
        Strategies.Add(s);
        return s;
    }

    /// <summary>A timeline for one restore of STRATEGY: pass it to <see cref="Scenario"/>.RestoreAsync (or call its
    /// SampleAsync) and it is plotted (timeline-SCENARIO.png) and written to report.json.</summary>
    public Timeline AddTimeline(StrategyResult strategy, string label)
    {
        var t = new Timeline(strategy.Name, label);
        lock (Timelines) Timelines.Add(t);
        return t;
    }
}
