using System.Text.Json;
using System.Text.Json.Serialization;
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

    public static void WriteJson(object value) =>
        Console.Out.WriteLine(JsonSerializer.Serialize(value, value.GetType(), Json));

    public static bool Interactive =>
        !Console.IsOutputRedirected && !Console.IsErrorRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    /// <summary>Runs <paramref name="work"/> with a byte-progress bar when interactive and not --json.</summary>
    public static async Task<T> WithProgressAsync<T>(
        string label, long total, bool json, Func<IProgress<long>?, Task<T>> work)
    {
        if (json || !Interactive || total <= 0) return await work(null);
        T result = default!;
        await AnsiConsole.Progress()
            .Columns(
                new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new TransferSpeedColumn(),
                new RemainingTimeColumn())
            .StartAsync(async ctx =>
            {
                var task = ctx.AddTask(label, maxValue: total);
                var progress = new Progress<long>(done => task.Value = Math.Max(task.Value, done));
                result = await work(progress);
                task.Value = total;
            });
        return result;
    }

    public static string Bytes(long b) => b switch
    {
        >= 1L << 30 => $"{b / (double)(1L << 30):F2} GiB",
        >= 1L << 20 => $"{b / (double)(1L << 20):F1} MiB",
        >= 1L << 10 => $"{b / 1024.0:F1} KiB",
        _ => $"{b} B",
    };
}
