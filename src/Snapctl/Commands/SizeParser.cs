using System.Globalization;

namespace Snapshots.Snapctl.Commands;

/// <summary>Parses sizes like 512M, 2G, 1048576 (bytes; K, M, G, T are powers of 1024).</summary>
public static class SizeParser
{
    /// <summary>The size in bytes; a <see cref="UsageException"/> naming <paramref name="option"/> otherwise.</summary>
    public static long Parse(string text, string option)
    {
        ArgumentNullException.ThrowIfNull(text);
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
                _ => throw new UsageException($"{option} '{text}': unknown unit (use K, M, G or T)"),
            };
            t = t[..^1];
        }
        if (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var v)
            || !double.IsFinite(v) || v * unit < 1 || v * unit > long.MaxValue)
            throw new UsageException($"{option} '{text}' is not a positive size");
        return (long)(v * unit);
    }
}
