namespace Snapshots.Prefetch;

/// <summary>The replay VMM's trace format: one "OFFSET GAP_US" line per first touch (native/replay-vmm).</summary>
public static class TraceText
{
    public static void Write(AccessLog log, string path)
    {
        using var w = new StreamWriter(path);
        w.WriteLine($"# {log.Touches.Length} first touches of a {log.ImageSize}-byte image: offset gap_us");
        foreach (var t in log.Touches) w.WriteLine($"{(long)t.Page * log.PageSize} {t.DeltaUs}");
    }
}
