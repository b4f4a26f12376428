using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Snapshots.Host;
using Snapshots.Store.Chunks;
using Spectre.Console;

namespace Snapshots.Snapctl.Commands;

/// <summary>
/// The output contract (docs/cli.md): with --json, exactly one JSON document (an object) on stdout, the result or
/// the error; otherwise text for people. Progress and notes go to stderr only, so stdout stays the result whatever
/// is redirected. Progress shows when stderr is a terminal (a redrawn bar), or when --progress forces it (then
/// plain lines, one every <see cref="LineInterval"/>, for a log file or a pipe); --quiet suppresses progress and
/// notes, never errors.
/// </summary>
public static class Output
{
    /// <summary>How often --progress writes a line when stderr is not a terminal.</summary>
    public static readonly TimeSpan LineInterval = TimeSpan.FromSeconds(1);

    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    private static bool ForceProgress, QuietMode;

    /// <summary>Set once by Program from --progress and --quiet (they exclude each other).</summary>
    public static void Configure(bool progress, bool quiet)
    {
        ForceProgress = progress;
        QuietMode = quiet;
    }

    /// <summary>True once a JSON document went to stdout: an error after it is said on stderr only.</summary>
    public static bool JsonWritten { get; private set; }

    /// <summary>Writes <paramref name="value"/> as the command's one JSON document (camelCase, nulls left out).
    /// A second document is a bug in the command: refused, so stdout never holds two.</summary>
    public static void WriteJson(object value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (JsonWritten) throw new InvalidOperationException("a second JSON document on stdout");
        JsonWritten = true;
        Console.Out.WriteLine(JsonSerializer.Serialize(value, value.GetType(), Json));
    }

    /// <summary>Prints a command's result the one way the contract allows: <paramref name="value"/> as JSON when
    /// <paramref name="json"/>, else <paramref name="text"/>'s lines; returns <paramref name="exitCode"/>. A new
    /// command's whole output is one call: <c>return Output.Result(r, pr.GetValue(json), Describe);</c></summary>
    public static int Result<T>(T value, bool json, Action<T> text, int exitCode = 0)
        where T : notnull
    {
        ArgumentNullException.ThrowIfNull(text);
        if (json) WriteJson(value);
        else text(value);
        return exitCode;
    }

    /// <summary>A note for the person running the command ("snapctl: LINE" on stderr). --quiet drops the
    /// informational ones but keeps warnings (something may be wrong) and the readiness lines of restore and mount
    /// ("serving ...", "mounted ..."), which scripts wait for, a VM being failed, and a new key (to back up).
    /// </summary>
    public static void Note(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        if (!QuietMode || Kept(line)) Console.Error.WriteLine($"snapctl: {line}");
    }

    private static bool Kept(string line) =>
        line.StartsWith("warning", StringComparison.Ordinal) || line.StartsWith("serving ", StringComparison.Ordinal)
        || line.StartsWith("mounted ", StringComparison.Ordinal)
        || line.StartsWith("failing ", StringComparison.Ordinal)
        || line.StartsWith("created a new key", StringComparison.Ordinal);

    private static IAnsiConsole? StderrConsole;

    /// <summary>A Spectre console on stderr: progress never touches stdout. Interactive because
    /// <see cref="Redraw"/> decides that from stderr (Spectre's own guess looks at stdout).</summary>
    private static IAnsiConsole Stderr => StderrConsole ??= AnsiConsole.Create(new AnsiConsoleSettings
    {
        Out = new AnsiConsoleOutput(Console.Error),
        Interactive = InteractionSupport.Yes,
    });

    /// <summary>Bars redrawn in place: stderr is a terminal that takes ANSI redraws.</summary>
    private static bool Redraw => !Console.IsErrorRedirected && Stderr.Profile.Capabilities.Ansi;

    /// <summary>Whether progress is shown: never with --quiet; with --progress always; else when stderr is a
    /// terminal.</summary>
    public static bool ShowProgress => !QuietMode && (ForceProgress || Redraw);

    /// <summary>Runs <paramref name="work"/> with byte progress on stderr when <see cref="ShowProgress"/>; the
    /// progress starts when the work says its total (<see cref="IByteProgress.Begin"/>). Progress is on stderr, so
    /// --json does not change it.</summary>
    public static async Task<T> WithProgressAsync<T>(string label, Func<IByteProgress?, Task<T>> work)
    {
        ArgumentNullException.ThrowIfNull(work);
        if (!ShowProgress) return await work(null);
        if (!Redraw)
        {
            using var lines = new Lines(label);
            var r = await work(lines);
            lines.Finish();
            return r;
        }
        T result = default!;
        await Stderr.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(),
                new TransferSpeedColumn(), new RemainingTimeColumn())
            .StartAsync(async ctx =>
            {
                var bar = new Bar(ctx, label);
                result = await work(bar);
                bar.Finish();
            });
        return result;
    }

    /// <summary>As <see cref="WithProgressAsync{T}"/> for work whose size is not known ahead (gc, log attach): a
    /// spinner with the elapsed time on a terminal, an "LABEL: N s" line per interval with --progress.</summary>
    public static async Task<T> WithActivityAsync<T>(string label, Func<Task<T>> work)
    {
        ArgumentNullException.ThrowIfNull(work);
        if (!ShowProgress) return await work();
        if (!Redraw)
        {
            using var lines = new Lines(label);
            var r = await work();
            lines.Finish();
            return r;
        }
        return await Stderr.Status().StartAsync(label, _ => work());
    }

    /// <summary>A Spectre progress task, added once the total is known; reports may come from many threads.</summary>
    private sealed class Bar(ProgressContext ctx, string label) : IByteProgress
    {
        private readonly Lock _lock = new();
        private ProgressTask? _task;

        public void Begin(long totalBytes)
        {
            lock (_lock) _task ??= ctx.AddTask(label, maxValue: Math.Max(1, totalBytes));
        }

        public void Report(long value)
        {
            lock (_lock)
            {
                if (_task is not null) _task.Value = Math.Max(_task.Value, value);
            }
        }

        public void Finish()
        {
            lock (_lock)
            {
                if (_task is not null) _task.Value = _task.MaxValue;
            }
        }
    }

    /// <summary>Progress as plain lines on stderr, one per <see cref="LineInterval"/> and one at the end:
    /// "snapctl: LABEL: 42% (1.2 GiB of 2.9 GiB), 3 s" (no total known: "LABEL: 1.2 GiB, 3 s").</summary>
    private sealed class Lines : IByteProgress, IDisposable
    {
        private readonly string _label;
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly Timer _timer;
        private readonly Lock _lock = new();
        private long _total = -1, _done;
        private bool _finished;

        public Lines(string label)
        {
            _label = label;
            _timer = new Timer(_ => Write(), null, LineInterval, LineInterval);
        }

        public void Begin(long totalBytes) => Interlocked.CompareExchange(ref _total, totalBytes, -1);

        public void Report(long value)
        {
            long seen;
            while ((seen = Interlocked.Read(ref _done)) < value
                && Interlocked.CompareExchange(ref _done, value, seen) != seen)
            {
            }
        }

        public void Finish()
        {
            _timer.Dispose();
            if (Interlocked.Read(ref _total) > 0) Report(_total);
            Write(done: true);
        }

        private void Write(bool done = false)
        {
            // A timer tick racing the end must not print after the "done" line.
            lock (_lock)
            {
                if (_finished) return;
                _finished = done;
                WriteLine(done);
            }
        }

        private void WriteLine(bool done)
        {
            long total = Interlocked.Read(ref _total), now = Interlocked.Read(ref _done);
            string seconds = string.Create(CultureInfo.InvariantCulture, $"{_clock.Elapsed.TotalSeconds:F0} s");
            string what = total > 0
                ? string.Create(CultureInfo.InvariantCulture,
                    $"{100.0 * now / total:F0}% ({Bytes(now)} of {Bytes(total)}), {seconds}")
                : now > 0 ? $"{Bytes(now)}, {seconds}" : seconds;
            try
            {
                Console.Error.WriteLine($"snapctl: {_label}: {what}{(done ? ", done" : "")}");
            }
            catch (IOException)
            {
                // A closed stderr ends the progress, not the work.
            }
        }

        public void Dispose() => _timer.Dispose();
    }

    /// <summary>What each tier did, a line per tier, for people (--json prints the same objects).</summary>
    public static void PrintTiers(IReadOnlyList<TierSummary> tiers)
    {
        ArgumentNullException.ThrowIfNull(tiers);
        foreach (var s in tiers)
        {
            var l = s.LatencySeconds;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {s.Tier}: {s.Hits} hits ({100 * s.HitRatio:F1} %), {s.Misses} misses, {Bytes(s.Bytes)}, " +
                $"{s.Corrupt} corrupt dropped, {s.Errors} errors, {s.Timeouts} timeouts; hit latency " +
                $"p50 {Duration(l.P50)}, p99 {Duration(l.P99)}, p99.9 {Duration(l.P999 ?? 0)}"));
        }
    }

    public static string Bytes(long b) => b switch
    {
        >= 1L << 30 => string.Create(CultureInfo.InvariantCulture, $"{b / (double)(1L << 30):F2} GiB"),
        >= 1L << 20 => string.Create(CultureInfo.InvariantCulture, $"{b / (double)(1L << 20):F1} MiB"),
        >= 1L << 10 => string.Create(CultureInfo.InvariantCulture, $"{b / 1024.0:F1} KiB"),
        _ => $"{b} B",
    };

    /// <summary>A duration in seconds for people, in the unit that reads best (us, ms or s).</summary>
    public static string Duration(double seconds) => seconds switch
    {
        >= 1 => string.Create(CultureInfo.InvariantCulture, $"{seconds:F2} s"),
        >= 1e-3 => string.Create(CultureInfo.InvariantCulture, $"{seconds * 1e3:F1} ms"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{seconds * 1e6:F0} us"),
    };
}
