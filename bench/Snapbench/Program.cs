using System.CommandLine;

namespace Snapshots.Snapbench;

/// <summary>snapbench: `list` the scenarios, `run` one or all of them against processes it starts itself.</summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var root = new RootCommand("snapbench: chaos and latency harness for snapd and the userfaultfd loader");
        var list = new Command("list", "List the scenarios, one line each");
        list.SetAction(_ =>
        {
            int width = Scenarios.All.Max(s => s.Name.Length);
            foreach (var s in Scenarios.All) Console.WriteLine($"{s.Name.PadRight(width)} {s.Description}");
            return 0;
        });
        var scenario = new Option<string>("--scenario")
        {
            Description = "A scenario's name (snapbench list), several separated by commas, or all", Required = true,
        };
        var output = new Option<string>("--out") { Description = "Directory for report.json, report.md, PNGs" };
        output.Required = true;
        var restores = new Option<int?>("--restores") { Description = "Restores per strategy (default 20, --quick 3)" };
        var seed = new Option<int>("--seed") { Description = "Seed of every workload", DefaultValueFactory = _ => 1 };
        var quick = new Option<bool>("--quick") { Description = "A few restores per scenario, small images" };
        var run = new Command("run", "Run scenarios end to end; exit 0 only if every page of every VM was right")
        {
            scenario, output, restores, seed, quick,
        };
        run.SetAction(async (pr, ct) =>
        {
            string name = pr.GetValue(scenario)!;
            // One name, a comma-separated list (as report.md's command line names them) or all.
            var names = name.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var chosen = name == "all" ? Scenarios.All
                : [.. names.Select(n => Scenarios.All.FirstOrDefault(s => s.Name == n)).OfType<Scenario>()];
            if (chosen.Count == 0 || (name != "all" && chosen.Count != names.Length))
            {
                await Console.Error.WriteLineAsync(
                    $"snapbench: unknown scenario '{name}' "
                    + $"({string.Join(", ", Scenarios.All.Select(s => s.Name))}, all)");
                return 2;
            }
            bool q = pr.GetValue(quick);
            int n = pr.GetValue(restores) ?? (q ? 3 : 20);
            if (n < 1)
            {
                await Console.Error.WriteLineAsync("snapbench: --restores must be at least 1");
                return 2;
            }
            string dir = Path.GetFullPath(pr.GetValue(output)!);
            if (Bench.RefuseOutput(dir) is { } refused)
            {
                await Console.Error.WriteLineAsync($"snapbench: --out {dir}: {refused}");
                return 2;
            }
            await using var bench = new Bench(dir, q, n, pr.GetValue(seed));
            return await bench.RunAsync(chosen, ct);
        });
        root.Subcommands.Add(list);
        root.Subcommands.Add(run);
        // SIGINT/SIGTERM cancel the run's token; it kills what it started, writes the partial report, exits 130.
        var config = new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(30) };
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            // A usage error exits 2, as README says (System.CommandLine's own would be 1): the errors, one a line.
            foreach (var e in parsed.Errors) await Console.Error.WriteLineAsync($"snapbench: {e.Message}");
            await Console.Error.WriteLineAsync("snapbench: see snapbench --help");
            return 2;
        }
        return await parsed.InvokeAsync(config);
    }
}
