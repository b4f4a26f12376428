using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Snapshots.Snapbench;

/// <summary>report.json (every figure, the machine, versions, seed), report.md (the tables, ratios against the
/// ceiling and the naive peer) and a fault-latency CDF per scenario (latency-cdf-SCENARIO.png, ScottPlot).</summary>
public sealed class Report(Bench bench)
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
                    name = t.Name, description = t.Description, ok = t.Ok, completed = t.Completed, failed = t.Failed,
                    hung = t.Hung, badPages = t.BadPages, restoreMs = t.RestoreMs, faultUs = t.FaultUs,
                    ratios = Ratios(s, t), errors = t.Errors.Take(20), runs = t.Runs,
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

    private string Markdown(List<string> plots)
    {
        var m = Machine();
        var b = new StringBuilder();
        var ci = CultureInfo.InvariantCulture;
        b.AppendLine(ci, $"# snapbench: {(Ok ? "ok" : "FAILED")}");
        b.AppendLine();
        b.AppendLine(ci, $"Command: `snapbench run --scenario {string.Join(",", Scenarios.Select(s => s.Name))} "
            + $"--restores {bench.Restores} --seed {bench.Seed}{(bench.Quick ? " --quick" : "")}`");
        b.AppendLine(ci, $"- Machine: {m["cpu"]}, nproc {m["nproc"]}, {m["memoryMiB"]} MiB, kernel {m["kernel"]}");
        b.AppendLine(ci, $"- Load: start {_loadStart}; end {m["loadEnd"]}");
        b.AppendLine(ci, $"- {_started:yyyy-MM-dd HH:mm:ss} UTC; images {bench.ImageSize >> 20} MiB; every VM "
            + $"`replay-vmm --vcpus {Vmm.Vcpus}`, every page it touched compared with the image (one wrong byte "
            + $"fails the run)");
        foreach (var e in Errors) b.AppendLine(ci, $"- ERROR: {e}");
        foreach (var s in Scenarios)
        {
            b.AppendLine();
            b.AppendLine(ci, $"## {s.Name}: {(s.Ok ? "ok" : "FAILED")} ({s.Seconds:F1} s)");
            b.AppendLine();
            b.AppendLine(s.Description);
            b.AppendLine();
            foreach (var (k, v) in s.Facts) b.AppendLine(ci, $"- {k}: {Format(v)}");
            if (s.Facts.Count > 0) b.AppendLine();
            b.AppendLine("| strategy | ok / failed / hung | bad pages | restore p50 / p90 / p99 / p99.9 (ms) "
                + "| fault p50 / p90 / p99 / p99.9 / max (us) | faults timed |");
            b.AppendLine("|---|---|---|---|---|---|");
            foreach (var t in s.Strategies)
            {
                var r = t.RestoreMs;
                var f = t.FaultUs;
                b.AppendLine(ci, $"| {t.Name} | {t.Completed} / {t.Failed} / {t.Hung} | {t.BadPages} "
                    + $"| {r.P50:F1} / {r.P90:F1} / {r.P99:F1} / {r.P999:F1} "
                    + $"| {f.P50:F1} / {f.P90:F1} / {f.P99:F1} / {f.P999:F1} / {f.Max:F0} | {f.Count} |");
            }
            if (s.Ceiling is not null || s.Naive is not null)
            {
                b.AppendLine();
                b.AppendLine(ci, $"Ratios (p50 / p99) against the ceiling ({s.Ceiling}) "
                    + $"and the naive peer ({s.Naive}):");
                b.AppendLine();
                b.AppendLine("| strategy | restore vs ceiling | restore vs naive | fault vs ceiling "
                    + "| fault vs naive |");
                b.AppendLine("|---|---|---|---|---|");
                foreach (var t in s.Strategies)
                {
                    var x = Ratios(s, t);
                    string P(string what, string who) =>
                        $"{R(x, $"{what}P50VsThe{who}")} / {R(x, $"{what}P99VsThe{who}")}";
                    b.AppendLine(ci, $"| {t.Name} | {P("restore", "Ceiling")} | {P("restore", "Naive")} "
                        + $"| {P("fault", "Ceiling")} | {P("fault", "Naive")} |");
                }
            }
            foreach (var t in s.Strategies) b.AppendLine(ci, $"\n- {t.Name}: {t.Description}");
            var errors = s.Errors.Concat(s.Strategies.SelectMany(t => t.Errors)).ToList();
            if (errors.Count > 0)
            {
                b.AppendLine();
                b.AppendLine("Errors:");
                foreach (var e in errors.Take(30)) b.AppendLine(ci, $"- {e}");
            }
            var png = $"latency-cdf-{s.Name}.png";
            if (plots.Contains(png)) b.AppendLine(ci, $"\n![fault latency CDF, {s.Name}]({png})");
            png = $"restore-cdf-{s.Name}.png";
            if (plots.Contains(png)) b.AppendLine(ci, $"\n![restore time CDF, {s.Name}]({png})");
        }
        return b.ToString();
    }

    private static string R(Dictionary<string, double?> x, string key) =>
        x.TryGetValue(key, out var v) && v is { } d ? d.ToString("F2", CultureInfo.InvariantCulture) + "x" : "-";

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
