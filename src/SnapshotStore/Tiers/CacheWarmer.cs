using System.Buffers;
using System.Diagnostics;
using Snapshots.Store.Chunks;
using Snapshots.Store.Crypto;

namespace Snapshots.Store.Tiers;

public sealed record WarmResult(string Name, int Chunks, long Bytes, double Seconds)
{
    /// <summary>What each tier served (set by the host, which owns the reader).</summary>
    public IReadOnlyList<TierSummary> Tiers { get; init; } = [];
}

/// <summary>Reads every chunk of a list through a reader with bounded concurrency, so the reader's nearer
/// tiers (the local disk cache) end up holding them. The first chunk that cannot be had stops the warm-up.</summary>
public static class CacheWarmer
{
    public static async Task<WarmResult> WarmAsync(
        ChunkReader reader, string snapshot, IReadOnlyList<ChunkName> names, int parallelism,
        IProgress<long>? progress = null, CancellationToken ct = default)
    {
        var clock = Stopwatch.StartNew();
        long bytes = 0;
        int next = -1;
        var workers = new Task[Math.Max(1, parallelism)];
        for (int w = 0; w < workers.Length; w++)
            workers[w] = Task.Run(async () =>
            {
                var buffer = ArrayPool<byte>.Shared.Rent(ConvergentCipher.MaxCiphertextSize);
                try
                {
                    for (int i = Interlocked.Increment(ref next); i < names.Count; i = Interlocked.Increment(ref next))
                    {
                        int n = await reader.ReadAsync(names[i], buffer, $"snapshot '{snapshot}'", ct);
                        long done = Interlocked.Add(ref bytes, n);
                        progress?.Report(done);
                    }
                }
                finally { ArrayPool<byte>.Shared.Return(buffer); }
            }, ct);
        await Task.WhenAll(workers);
        await reader.FlushFillsAsync(TimeSpan.FromMinutes(1)); // warming is filling: done when the fills are
        return new WarmResult(snapshot, names.Count, bytes, clock.Elapsed.TotalSeconds);
    }
}
