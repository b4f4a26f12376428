namespace Snapshots.Store.Chunks;

/// <summary>
/// A latency distribution as every front end reports it (docs/cli.md): percentiles in seconds, keyed p50, p90,
/// p99, p999 and max. Only the points a source measures are set; the others are null and left out of JSON. All 0
/// before the first sample.
/// </summary>
public sealed record Percentiles(double P50, double P99)
{
    public double? P90 { get; init; }
    public double? P999 { get; init; }
    public double? Max { get; init; }

    /// <summary>Seconds from microseconds, the unit the counters keep.</summary>
    public static double FromMicroseconds(double us) => Math.Round(us / 1e6, 9); // to the nanosecond: no 1e-17 noise
}
