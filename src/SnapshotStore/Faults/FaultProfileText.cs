using System.Globalization;

namespace Snapshots.Store.Faults;

/// <summary>
/// A <see cref="FaultProfile"/> written on one line, for a setting or a flag:
/// <c>latency=5ms,jitter=2ms,error=0.1,stall=0.02,stall-for=200ms,corrupt=0.01,miss=0</c>. Keys: <c>latency</c>,
/// <c>jitter</c> and <c>stall-for</c> take durations (<c>us</c>, <c>ms</c> or <c>s</c>; <c>stall-for=inf</c>:
/// until the reader's deadline cancels it); <c>latency-rate</c>, <c>error</c>, <c>stall</c>, <c>corrupt</c> and
/// <c>miss</c> take fractions of reads (0..1, or a percentage: <c>20%</c>). A key given twice, an unknown key, a
/// bad value, or outcome rates summing past 1 is an <see cref="InvalidInputException"/> that names the setting
/// and the item: a profile that is not what was meant would make a benchmark measure something else unseen.
/// </summary>
public static class FaultProfileText
{
    /// <summary>The profile TEXT describes; SETTING names it in errors (and is the exception's parameter).
    /// </summary>
    public static FaultProfile Parse(string text, string setting)
    {
        ArgumentNullException.ThrowIfNull(text);
        var p = new FaultProfile();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var raw in text.Split(',', StringSplitOptions.TrimEntries))
        {
            int eq = raw.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0) throw Bad(setting, text, $"'{raw}' is not KEY=VALUE");
            string key = raw[..eq].Trim(), value = raw[(eq + 1)..].Trim();
            if (!seen.Add(key)) throw Bad(setting, text, $"'{key}' given twice");
            try
            {
                p = key switch
                {
                    "latency" => p with { Latency = Duration(value) },
                    "jitter" => p with { LatencyJitter = Duration(value) },
                    "latency-rate" => p with { LatencyRate = Rate(value) },
                    "error" => p with { ErrorRate = Rate(value) },
                    "stall" => p with { StallRate = Rate(value) },
                    "stall-for" => p with
                    {
                        StallDuration = value == "inf" ? Timeout.InfiniteTimeSpan : Duration(value),
                    },
                    "corrupt" => p with { CorruptRate = Rate(value) },
                    "miss" => p with { MissRate = Rate(value) },
                    _ => throw Bad(setting, text, $"unknown key '{key}' (latency, jitter, latency-rate, error, "
                        + "stall, stall-for, corrupt, miss)"),
                };
            }
            catch (Exception ex) when (ex is FormatException or ArgumentOutOfRangeException)
            {
                throw Bad(setting, text, $"{key}={value}: {ex.Message}");
            }
        }
        try
        {
            p.CheckOutcomeRates(setting);
        }
        catch (ArgumentOutOfRangeException ex)
        {
            throw Bad(setting, text, ex.Message);
        }
        return p;
    }

    private static InvalidInputException Bad(string setting, string text, string why) =>
        new($"{setting} '{text}': {why}", setting);

    private static double Rate(string value)
    {
        bool percent = value.EndsWith('%');
        string number = percent ? value[..^1] : value;
        if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out double v)
            || !double.IsFinite(v))
            throw new FormatException("not a fraction (0..1) or a percentage");
        return percent ? v / 100 : v;
    }

    private static TimeSpan Duration(string value)
    {
        (string unit, double scale) = value.EndsWith("us", StringComparison.Ordinal) ? ("us", 1e-3)
            : value.EndsWith("ms", StringComparison.Ordinal) ? ("ms", 1.0)
            : value.EndsWith('s') ? ("s", 1e3)
            : throw new FormatException("a duration needs a unit: us, ms or s");
        if (!double.TryParse(value[..^unit.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out double v)
            || !double.IsFinite(v) || v * scale > TimeSpan.MaxValue.TotalMilliseconds)
            throw new FormatException("not a number");
        return TimeSpan.FromMilliseconds(v * scale);
    }
}
