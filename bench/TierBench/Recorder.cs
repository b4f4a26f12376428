using System.Diagnostics;
using HdrHistogram;

namespace Snapshots.TierBench;

/// <summary>Latency histograms by label (microseconds), printed as p50/p99/p99.9 rows.</summary>
public sealed class Recorder
{
    private readonly Dictionary<string, LongHistogram> _h = [];
    public List<string> Order { get; } = [];

    public void Record(string label, long startTimestamp)
    {
        long us = Math.Max(1, (long)Stopwatch.GetElapsedTime(startTimestamp).TotalMicroseconds);
        if (!_h.TryGetValue(label, out var h))
        {
            _h[label] = h = new LongHistogram(1, 60_000_000, 3);
            Order.Add(label);
        }
        h.RecordValue(Math.Min(us, 60_000_000));
    }

    public long P(string label, double percentile) => _h[label].GetValueAtPercentile(percentile);
    public long Count(string label) => _h[label].TotalCount;

    public string Row(string label) =>
        $"| {label} | {Count(label)} | {Ms(P(label, 50))} | {Ms(P(label, 99))} | {Ms(P(label, 99.9))} " +
        $"| {Ms(_h[label].GetMaxValue())} |";

    public const string Header =
        "| what | samples | p50 ms | p99 ms | p99.9 ms | max ms |\n|---|---:|---:|---:|---:|---:|";

    public static string Ms(long us) =>
        (us / 1000.0).ToString("0.000", System.Globalization.CultureInfo.InvariantCulture);
}
