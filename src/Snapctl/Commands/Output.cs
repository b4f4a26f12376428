using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Snapshots.Host;
using Snapshots.Store.Chunks;
using Spectre.Console;

namespace Snapshots.Snapctl.Commands;

/// <summary>Prints results as JSON (--json, for machines) or as text, and shows a progress bar for long work
/// only when a person is watching a terminal.</summary>
public static class Output
{
    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static void WriteJson(object value)
    {
        ArgumentNullException.ThrowIfNull(value);
        JsonWritten = true;
        Console.Out.WriteLine(JsonSerializer.Serialize(value, value.GetType(), Json));
    }

    /// <summary>True once a JSON document went to stdout: an error after it is said on stderr only.</summary>
    public static bool JsonWritten { get; private set; }

    public static bool Interactive =>
        !Console.IsOutputRedirected && !Console.IsErrorRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    /// <summary>Runs <paramref name="work"/> with a byte-progress bar when interactive and not --json; the bar
    /// appears when the library says how many bytes the work has.</summary>
    public static async Task<T> WithProgressAsync<T>(string label, bool json, Func<IByteProgress?, Task<T>> work)
    {
        ArgumentNullException.ThrowIfNull(work);
        if (json || !Interactive) return await work(null);
        T result = default!;
        await AnsiConsole.Progress()
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

    /// <summary>What each tier did, a line per tier, for people (--json prints the same objects).</summary>
    public static void PrintTiers(IReadOnlyList<TierSummary> tiers)
    {
        ArgumentNullException.ThrowIfNull(tiers);
        foreach (var s in tiers)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {s.Tier}: {s.Hits} hits ({100 * s.HitRatio:F1} %), {s.Misses} misses, {Bytes(s.Bytes)}, " +
                $"{s.Corrupt} corrupt dropped, {s.Errors} errors, {s.Timeouts} timeouts; hit latency " +
                $"p50 {s.LatencyUs.P50} us, p99 {s.LatencyUs.P99} us, p99.9 {s.LatencyUs.P999} us"));
        }
    }

    public static string Bytes(long b) => b switch
    {
        >= 1L << 30 => string.Create(CultureInfo.InvariantCulture, $"{b / (double)(1L << 30):F2} GiB"),
        >= 1L << 20 => string.Create(CultureInfo.InvariantCulture, $"{b / (double)(1L << 20):F1} MiB"),
        >= 1L << 10 => string.Create(CultureInfo.InvariantCulture, $"{b / 1024.0:F1} KiB"),
        _ => $"{b} B",
    };
}
