using System.Globalization;
using System.Text;

namespace Snapshots.Snapbench;

/// <summary>A daemon's tier and disk-cache metrics (/metrics, src/Snapd/Metrics/SnapdMetrics.cs) as facts, one per
/// metric family, its labelled values in one line: the tiers' labels are their descriptions (addresses, paths),
/// shortened to disk, redis, origin.</summary>
public static class TierMetrics
{
    private static readonly string[] Families =
    [
        "snapd_tier_hits_total", "snapd_tier_errors_total", "snapd_retries_total", "snapd_cache_events_total",
        "snapd_cache_evictions_total", "snapd_cache_entries", "snapd_cache_bytes", "snapd_errors_total",
        "snapd_redis_events_total",
        "snapd_fault_latency_seconds_count", "snapd_fault_latency_seconds_sum",
    ];

    /// <summary>Notes the families as facts under PREFIX; returns every value noted by `family{labels}` (labels
    /// shortened: `snapd_tier_errors_total{disk/corrupt}`), empty when /metrics did not answer.</summary>
    public static async Task<IReadOnlyDictionary<string, double>> NoteAsync(SnapdDaemon snapd,
        ScenarioResult result, string prefix)
    {
        if (await MetricSample.ScrapeAsync(snapd, result, prefix) is not { } samples)
            return new Dictionary<string, double>();
        var (values, lines) = Parse(samples);
        foreach (var name in Families)
            if (lines.TryGetValue(name, out var line)) result.Facts[$"{prefix}: /metrics {name}"] = line;
        return values;
    }

    /// <summary>The families' values now, as <see cref="NoteAsync"/> returns them (no facts).</summary>
    public static async Task<IReadOnlyDictionary<string, double>> ReadAsync(SnapdDaemon snapd) =>
        Parse(MetricSample.Parse(await snapd.MetricsAsync())).Values;

    /// <summary>Every value of the families by `family{labels}`, and each family's values in one line.</summary>
    private static (Dictionary<string, double> Values, Dictionary<string, string> Lines) Parse(
        List<MetricSample> samples)
    {
        var values = new Dictionary<string, double>(StringComparer.Ordinal);
        var lines = new Dictionary<string, StringBuilder>(StringComparer.Ordinal);
        foreach (var m in samples)
        {
            if (!Families.Contains(m.Metric)) continue;
            int brace = m.Series.IndexOf('{', StringComparison.Ordinal);
            string labels = brace > 0 ? Labels(m.Series[(brace + 1)..m.Series.LastIndexOf('}')]) : "";
            values[labels.Length > 0 ? $"{m.Metric}{{{labels}}}" : m.Metric] = m.Value;
            if (!lines.TryGetValue(m.Metric, out var sb)) lines[m.Metric] = sb = new StringBuilder();
            if (sb.Length > 0) sb.Append(", ");
            sb.Append(labels.Length > 0 ? $"{labels} " : "")
                .Append(Math.Round(m.Value, 4).ToString(CultureInfo.InvariantCulture));
        }
        return (values, lines.ToDictionary(l => l.Key, l => l.Value.ToString(), StringComparer.Ordinal));
    }

    /// <summary>`tier="redis 127.0.0.1:7401,...",kind="timeout"` as `redis/timeout`.</summary>
    private static string Labels(string inner)
    {
        var values = new List<string>();
        int at = 0;
        while ((at = inner.IndexOf('"', at)) >= 0)
        {
            int end = inner.IndexOf('"', at + 1);
            if (end < 0) break;
            values.Add(TierSums.ShortName(inner[(at + 1)..end]));
            at = end + 1;
        }
        return string.Join('/', values);
    }
}
