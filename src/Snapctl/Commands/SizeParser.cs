using System.Globalization;
using Snapshots.Store;

namespace Snapshots.Snapctl.Commands;

/// <summary>Parses sizes like 512M, 2G, 1048576.</summary>
public static class SizeParser
{
    public static long Parse(string text, string option)
    {
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
                _ => throw new InvalidInputException($"{option} '{text}': unknown unit (use K, M, G or T)"),
            };
            t = t[..^1];
        }
        if (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || v <= 0)
            throw new InvalidInputException($"{option} '{text}' is not a positive size");
        return (long)(v * unit);
    }
}
