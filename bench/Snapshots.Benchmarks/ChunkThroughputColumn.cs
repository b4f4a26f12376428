using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Snapshots.Store.Chunks;

namespace Snapshots.Benchmarks;

/// <summary>
/// Every benchmark here handles one 512 KiB chunk per operation, so the mean time converts straight to a
/// throughput: GB/s = 524,288 bytes / mean ns (decimal GB, the unit disk and network figures use). Lets the
/// report be compared with build/export throughput and with openssl without a calculator.
/// </summary>
public sealed class ChunkThroughputColumn : IColumn
{
    public string Id => nameof(ChunkThroughputColumn);
    public string ColumnName => "GB/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend =>
        $"Chunk bytes ({ChunkGeometry.ChunkSize}) per mean operation time, in 10^9 bytes per second";

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) =>
        GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var stats = summary[benchmarkCase]?.ResultStatistics;
        if (stats is null || stats.Mean <= 0) return "NA";
        return (ChunkGeometry.ChunkSize / stats.Mean).ToString("F2", System.Globalization.CultureInfo.InvariantCulture);
    }

    public override string ToString() => ColumnName;
}
