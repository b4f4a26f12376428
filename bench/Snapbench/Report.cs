using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace Snapshots.Snapbench;

/// <summary>report.json (every figure, the machine, versions, seed, the sampled timelines), report.md
/// (<see cref="Markdown"/>) and the PNG plots per scenario (ScottPlot): fault-latency and restore-time CDFs, the
/// per-strategy bars, the restore timeline.</summary>
public sealed partial class Report(Bench bench)
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
    };

    private readonly DateTime _started = DateTime.UtcNow;
    private readonly string _loadStart = LoadAverage();

    public List<ScenarioResult> Scenarios { get; } = [];
    public List<string> Errors { get; } = [];

    public bool Ok => Errors.Count == 0 && Scenarios.Count > 0 && Scenarios.All(s => s.Ok);

    public async Task WriteAsync()
    {
        Directory.CreateDirectory(bench.Out);
        var plots = new List<string>();
        foreach (var s in Scenarios)
        {
            try
            {
                var png = Plots.FaultCdf(s, Path.Combine(bench.Out, $"latency-cdf-{s.Name}.png"));
                if (png is not null) plots.Add(Path.GetFileName(png));
                png = Plots.RestoreCdf(s, Path.Combine(bench.Out, $"restore-cdf-{s.Name}.png"));
                if (png is not null) plots.Add(Path.GetFileName(png));
                png = TierBarsPlot.Save(s, Path.Combine(bench.Out, $"tier-bars-{s.Name}.png"));
                if (png is not null) plots.Add(Path.GetFileName(png));
                png = TimelinePlot.Save(s, Path.Combine(bench.Out, $"timeline-{s.Name}.png"));
                if (png is not null) plots.Add(Path.GetFileName(png));
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                Errors.Add($"plot {s.Name}: {ex.GetType().Name}: {ex.Message}");
            }
        }
        var doc = new
        {
            tool = "snapbench",
            ok = Ok,
            seed = bench.Seed,
            quick = bench.Quick,
            restores = bench.Restores,
            imageBytes = bench.ImageSize,
            startedAt = _started.ToString("O", CultureInfo.InvariantCulture),
            endedAt = DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture),
            machine = Machine(),
            versions = Versions(),
            errors = Errors,
            plots,
            scenarios = Scenarios.Select(s => new
            {
                name = s.Name, description = s.Description, ok = s.Ok, seconds = Math.Round(s.Seconds, 2),
                ceiling = s.Ceiling, naive = s.Naive, facts = s.Facts, errors = s.Errors,
                strategies = s.Strategies.Select(t => new
                {
                    name = t.Name, description = t.Description, tier = t.Tier, loader = t.Loader, ok = t.Ok,
                    completed = t.Completed, failed = t.Failed, hung = t.Hung, badPages = t.BadPages,
                    expectFailure = t.ExpectFailure, deadlineSeconds = t.Deadline?.TotalSeconds,
                    slackSeconds = t.Slack.TotalSeconds, failedInTime = t.FailedInTime, failedLate = t.FailedLate,
                    reasons = t.Reasons(), failMs = t.FailMs, restoreMs = t.RestoreMs, faultUs = t.FaultUs,
                    ratios = Ratios(s, t),
                    tiers = t.Tiers.Tiers, tierRestores = t.Tiers.Restores, memoryTier = t.Tiers.Memory,
                    errors = t.Errors.Take(20), runs = t.Runs,
                }),
                timelines = s.Timelines.Select(t => new
                {
                    strategy = t.Strategy, label = t.Label, id = t.Id, intervalMs = Timeline.Interval.TotalMilliseconds,
                    missesMs = t.MissMs, samples = t.Samples,
                }),
            }),
        };
        await File.WriteAllTextAsync(Path.Combine(bench.Out, "report.json"), JsonSerializer.Serialize(doc, Json));
        await File.WriteAllTextAsync(Path.Combine(bench.Out, "report.md"), Markdown(plots));
    }

    /// <summary>p50/p99 of restore time and fault latency over the ceiling's and the naive peer's.</summary>
    private static Dictionary<string, double?> Ratios(ScenarioResult s, StrategyResult t)
    {
        var r = new Dictionary<string, double?>();
        foreach (var (label, name) in new[] { ("ceiling", s.Ceiling), ("naive", s.Naive) })
        {
            var other = s.Strategies.FirstOrDefault(x => x.Name == name);
            if (other is null) continue;
            r[$"restoreP50VsThe{Cap(label)}"] = Ratio(t.RestoreMs.P50, other.RestoreMs.P50);
            r[$"restoreP99VsThe{Cap(label)}"] = Ratio(t.RestoreMs.P99, other.RestoreMs.P99);
            r[$"faultP50VsThe{Cap(label)}"] = Ratio(t.FaultUs.P50, other.FaultUs.P50);
            r[$"faultP99VsThe{Cap(label)}"] = Ratio(t.FaultUs.P99, other.FaultUs.P99);
        }
        return r;
    }

    private static string Cap(string s) => char.ToUpperInvariant(s[0]) + s[1..];

    private static double? Ratio(double a, double b) => b > 0 ? Math.Round(a / b, 2) : null;

    private static string Format(object v) => v switch
    {
        double d => d.ToString("G4", CultureInfo.InvariantCulture),
        IEnumerable<double> ds => string.Join(", ", ds.Select(d => d.ToString("G4", CultureInfo.InvariantCulture))),
        _ => Convert.ToString(v, CultureInfo.InvariantCulture) ?? "",
    };

    private Dictionary<string, object> Machine() => new()
    {
        ["nproc"] = Environment.ProcessorCount,
        ["cpu"] = ReadLine("/proc/cpuinfo", "model name")?.Split(':', 2)[1].Trim() ?? "unknown",
        ["memoryMiB"] = long.Parse(ReadLine("/proc/meminfo", "MemTotal")?.Split(' ', StringSplitOptions
            .RemoveEmptyEntries)[1] ?? "0", CultureInfo.InvariantCulture) / 1024,
        ["kernel"] = Read("/proc/sys/kernel/osrelease"),
        ["loadStart"] = _loadStart,
        ["loadEnd"] = LoadAverage(),
        ["hostname"] = Environment.MachineName,
    };

    private Dictionary<string, object?> Versions() => new()
    {
        ["snapbench"] = typeof(Report).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()
            ?.InformationalVersion,
        ["dotnet"] = RuntimeInformation.FrameworkDescription,
        ["snapd"] = Scenarios.SelectMany(s => s.Facts).FirstOrDefault(f => f.Key == "snapd version").Value,
        ["snapdCommand"] = string.Join(' ', [bench.Tools.SnapdFile, .. bench.Tools.SnapdPrefix]),
        ["replayVmm"] = bench.Tools.Vmm,
        ["gitCommit"] = GitCommit(bench.Tools.Root),
    };

    private static string LoadAverage() => string.Join(' ', Read("/proc/loadavg").Split(' ').Take(3));

    private static string Read(string path)
    {
        try
        {
            return File.ReadAllText(path).Trim();
        }
        catch (IOException)
        {
            return "";
        }
    }

    private static string? ReadLine(string path, string prefix) =>
        Read(path).Split('\n').FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal));

    private static string? GitCommit(string root)
    {
        try
        {
            var psi = new ProcessStartInfo("git", ["-C", root, "rev-parse", "HEAD"])
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            };
            using var p = Process.Start(psi);
            if (p is null) return null;
            string s = p.StandardOutput.ReadToEnd().Trim();
            p.WaitForExit();
            return p.ExitCode == 0 ? s : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }
}
