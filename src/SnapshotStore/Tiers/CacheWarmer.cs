using System.Diagnostics;
using Snapshots.Store.Chunks;

namespace Snapshots.Store.Tiers;

/// <summary>What a warm-up did: the snapshot, its chunks (ciphertext bytes), the seconds taken, and how the fills
/// of the caches ended (<see cref="FillReport.Complete"/>: every cache holds every chunk).</summary>
public sealed record WarmResult(string Name, int Chunks, long Bytes, double Seconds, FillReport Fills)
{
    /// <summary>What each tier served (set by the host, which owns the reader).</summary>
    public IReadOnlyList<TierSummary> Tiers { get; init; } = [];
}

/// <summary>Reads every chunk of a list through a reader with bounded concurrency, so the reader's nearer
/// tiers (the local disk cache) end up holding them. The first chunk that cannot be had stops the warm-up (every
/// worker, at its next chunk); so does the token, checked before every chunk (a cache hit never looks at it). It
/// returns once the fills have landed (or <see cref="FlushLimit"/> has passed): a warm-up is for the caches, and
/// a process that exits with fills in flight (the Redis tier writes in the background) leaves them cold.</summary>
public static class CacheWarmer
{
    /// <summary>Fills in flight (the reader's own, and writes the caches finish in the background) beyond which
    /// the workers wait before reading on. Reads outrun a slow cache, and unpaced the Redis tier would skip writes
    /// past its bound (512 writes, a chunk being up to 5). Paced, at most 64 fills and one read per worker are in
    /// flight: at most 5 x (64 + 16) = 400 writes at the default --parallel 16. A larger --parallel can still
    /// overrun it; the skipped writes are then reported (<see cref="WarmResult.Fills"/>), never silent.</summary>
    public const int MaxFillsInFlight = 64;

    /// <summary>How long a warm-up waits for its last fills to land.</summary>
    public static readonly TimeSpan FlushLimit = TimeSpan.FromMinutes(1);

    public static async Task<WarmResult> WarmAsync(
        ChunkReader reader, string snapshot, IReadOnlyList<ChunkName> names, int parallelism,
        IProgress<long>? progress = null, CancellationToken ct = default)
    {
        var clock = Stopwatch.StartNew();
        long bytes = 0;
        string what = $"snapshot '{snapshot}'";
        // The build's worker loop: the token checked before every chunk (a cache hit never looks at it), and the
        // first failure stops the other workers at their next chunk.
        await Layers.ChunkWorkers.RunAsync(names.Count, Math.Max(1, parallelism), async (i, cipher, _) =>
        {
            while (reader.FillsInFlight > MaxFillsInFlight) await Task.Delay(1, ct);
            int n = await reader.ReadAsync(names[i], cipher, what, ct);
            long done = Interlocked.Add(ref bytes, n); // counted with or without a progress bar
            progress?.Report(done);
        }, ct);
        var fills = await reader.FlushFillsAsync(FlushLimit); // warming is filling: done when the fills are
        return new WarmResult(snapshot, names.Count, bytes, clock.Elapsed.TotalSeconds, fills);
    }
}
