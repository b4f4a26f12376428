using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;

namespace Snapshots.Benchmarks;

/// <summary>
/// The default configuration: BenchmarkDotNet's ShortRun job (1 launch, 3 warm-up, 3 measured iterations), so the
/// whole class runs in about a minute on the project's 2 shared cores. Three iterations give wide error bars
/// (read the Error and StdDev columns); use Job.MediumRun here when a figure has to be tight. Adds the per-chunk
/// GB/s column; the default config, which BenchmarkSwitcher merges in, already writes the GitHub markdown report
/// that bench/results/ copies.
/// </summary>
public sealed class ShortRunConfig : ManualConfig
{
    public ShortRunConfig()
    {
        AddJob(Job.ShortRun);
        AddColumn(new ChunkThroughputColumn());
    }
}
