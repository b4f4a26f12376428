using BenchmarkDotNet.Running;

namespace Snapshots.Benchmarks;

/// <summary>Entry point: BenchmarkSwitcher, so one binary runs any subset (`-- --filter '*Chunk*'`, `--list flat`)
/// and BenchmarkDotNet's own command-line options (e.g. `--job medium` for tighter intervals) still apply.</summary>
public static class Program
{
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
