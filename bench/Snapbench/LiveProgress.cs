using System.Globalization;
using Spectre.Console;

namespace Snapshots.Snapbench;

/// <summary>Progress while running. On a terminal (stderr not redirected): a live Spectre.Console display on
/// stderr, a bar per strategy (restores done / planned) under the log lines. Otherwise (CI, pipes, the tests
/// capturing stderr): plain timestamped lines, one per restore (every tenth of the planned ones past 20), so a log
/// shows how far a run got. SNAPBENCH_PROGRESS=plain forces the lines.</summary>
public sealed class LiveProgress
{
    /// <summary>The live display's console while one runs: every log line goes through it (above the bars), since
    /// a direct write to stderr would tear the display.</summary>
    private static IAnsiConsole? Live;
    private static readonly Lock Gate = new();

    private readonly ProgressContext? _context;
    private readonly int _restores;
    private readonly Dictionary<StrategyResult, ProgressTask> _bars = [];
    private string _scenario = "";
    private ProgressTask? _scenarioBar;

    private LiveProgress(ProgressContext? context, int restores)
    {
        _context = context;
        _restores = restores;
    }

    /// <summary>Runs WORK with a progress display fitting stderr; RESTORES: the default restores per strategy.
    /// </summary>
    public static async Task RunAsync(int restores, Func<LiveProgress, Task> work)
    {
        if (Console.IsErrorRedirected || Environment.GetEnvironmentVariable("SNAPBENCH_PROGRESS") == "plain")
        {
            await work(new LiveProgress(null, restores));
            return;
        }
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        lock (Gate) Live = console;
        try
        {
            await console.Progress().AutoClear(false).HideCompleted(false)
                .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn())
                .StartAsync(ctx => work(new LiveProgress(ctx, restores)));
        }
        finally
        {
            lock (Gate) Live = null;
        }
    }

    /// <summary>One line: through the live display while there is one, else to stderr with the time.</summary>
    public static void Log(string line)
    {
        string text = $"{DateTime.UtcNow.ToString("HH:mm:ss", CultureInfo.InvariantCulture)} {line}";
        lock (Gate)
        {
            if (Live is { } live) live.WriteLine(text);
            else Console.Error.WriteLine(text);
        }
    }

    /// <summary>A scenario starts: its restores are counted from here.</summary>
    public void Scenario(ScenarioResult result)
    {
        _scenario = result.Name;
        result.Counted = Restored;
        if (_context is null) return;
        lock (_bars)
        {
            _scenarioBar = _context.AddTask(Markup.Escape($"scenario {result.Name}"));
            _scenarioBar.IsIndeterminate = true;
        }
    }

    /// <summary>The scenario has ended: its bar says how.</summary>
    public void Ended(ScenarioResult result)
    {
        if (_scenarioBar is not { } bar) return;
        lock (_bars)
        {
            bar.Description = Markup.Escape(
                $"scenario {result.Name}: {(result.Ok ? "ok" : "FAILED")} in {result.Seconds:F1} s");
            bar.IsIndeterminate = false;
            bar.Value = bar.MaxValue;
            bar.StopTask();
        }
    }

    private void Restored(StrategyResult strategy, RunRecord run)
    {
        int planned = Math.Max(strategy.Planned ?? _restores, strategy.Total);
        string what = $"{_scenario}/{strategy.Name} {strategy.Total}/{planned}";
        if (_context is null)
        {
            int every = planned <= 20 ? 1 : planned / 10;
            if (run.Outcome != "completed" || strategy.Total % every == 0 || strategy.Total == planned)
                Log($"restore {what}: {run.Outcome} in {run.RestoreMs:F1} ms"
                    + (run.Reason is null ? "" : $" ({run.Reason})"));
            return;
        }
        lock (_bars)
        {
            if (!_bars.TryGetValue(strategy, out var bar))
                _bars[strategy] = bar = _context.AddTask(Markup.Escape(what), autoStart: true, maxValue: planned);
            bar.MaxValue = planned;
            bar.Value = strategy.Total;
            bar.Description = Markup.Escape(what + (strategy.Failed + strategy.Hung > 0
                ? $" ({strategy.Failed} failed, {strategy.Hung} hung)" : ""));
        }
    }
}
