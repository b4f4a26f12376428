using System.Globalization;

namespace Snapshots.Host;

/// <summary>Sizes as operators write them: 512M, 2G, 1048576 (bytes; K, M, G, T are powers of 1024). Shared by
/// snapctl's flags and snapd's settings.</summary>
public static class ByteSize
{
    /// <summary>The size in bytes (at least 1); false for an unknown unit, a non-number, or a size out of range.
    /// </summary>
    public static bool TryParse(string? text, out long bytes)
    {
        bytes = 0;
        if (text is null) return false;
        var t = text.Trim();
        long unit = 1;
        if (t.Length > 0 && char.IsLetter(t[^1]))
        {
            unit = char.ToUpperInvariant(t[^1]) switch
            {
                'K' => 1L << 10,
                'M' => 1L << 20,
                'G' => 1L << 30,
                'T' => 1L << 40,
                _ => 0,
            };
            if (unit == 0) return false;
            t = t[..^1];
        }
        if (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var v)
            || !double.IsFinite(v) || v * unit < 1 || v * unit > long.MaxValue)
            return false;
        bytes = (long)(v * unit);
        return true;
    }
}
