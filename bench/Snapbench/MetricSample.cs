using System.Globalization;

namespace Snapshots.Snapbench;

/// <summary>One sample of snapd's /metrics (Prometheus text format): the metric's name, the series as written
/// (name and labels) and its value.</summary>
public readonly record struct MetricSample(string Metric, string Series, double Value)
{
    /// <summary>SNAPD's /metrics parsed; null when it did not answer, which becomes an error of RESULT naming
    /// PREFIX.</summary>
    public static async Task<List<MetricSample>?> ScrapeAsync(SnapdDaemon snapd, ScenarioResult result,
        string prefix)
    {
        try
        {
            return Parse(await snapd.MetricsAsync());
        }
        catch (HttpRequestException ex)
        {
            result.Errors.Add($"{prefix}: /metrics: {ex.Message}");
            return null;
        }
    }

    /// <summary>Every sample of TEXT; comments and unparsable lines skipped. A label value may hold spaces (a tier's
    /// name does): the value is after the last one.</summary>
    public static List<MetricSample> Parse(string text)
    {
        var samples = new List<MetricSample>();
        foreach (var line in text.Split('\n'))
        {
            int space = line.LastIndexOf(' ');
            if (space <= 0 || line.StartsWith('#')
                || !double.TryParse(line.AsSpan(space + 1), CultureInfo.InvariantCulture, out var value))
                continue;
            string series = line[..space];
            int brace = series.IndexOf('{', StringComparison.Ordinal);
            samples.Add(new MetricSample(brace < 0 ? series : series[..brace], series, value));
        }
        return samples;
    }
}
