using System.Globalization;
using System.Text;
using Snapshots.Store.Files;

namespace Snapshots.Prefetch;

/// <summary>The replay VMM's trace format: one "OFFSET GAP_US" line per first touch (native/replay-vmm).</summary>
public static class TraceText
{
    /// <summary>Writes <paramref name="log"/> to <paramref name="path"/> whole or not at all
    /// (<see cref="OutputFile"/>); errors name <paramref name="parameter"/>.</summary>
    public static void Write(AccessLog log, string path, string parameter = "out")
    {
        ArgumentNullException.ThrowIfNull(log);
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture,
            $"# {log.Touches.Length} first touches of a {log.ImageSize}-byte image: offset gap_us\n");
        foreach (var t in log.Touches)
            text.Append(CultureInfo.InvariantCulture, $"{(long)t.Page * log.PageSize} {t.DeltaUs}\n");
        OutputFile.WriteAllBytes(path, Encoding.UTF8.GetBytes(text.ToString()), parameter);
    }
}
