using Snapshots.Store.Chunks;

namespace Snapshots.ChunkFs.Fuse;

/// <summary>What one file of a ChunkFs mount served. Sizes in bytes, times in seconds (docs/cli.md).</summary>
public sealed record ChunkFsFileStats
{
    public required string Name { get; init; }
    public long ImageBytes { get; init; }
    public long Opens { get; init; }
    /// <summary>READ requests answered with data, and their bytes.</summary>
    public long Reads { get; init; }
    public long ReadBytes { get; init; }
    /// <summary>Reads that waited for a chunk fetch.</summary>
    public long ReadMisses { get; init; }
    /// <summary>Reads answered EIO (deadline passed or a chunk unusable; each logged).</summary>
    public long ReadErrors { get; init; }
    /// <summary>Service time per read, request read to reply written (last 4,096 reads).</summary>
    public Percentiles ReadLatencySeconds { get; init; } = new(0, 0);
    /// <summary>Pages pushed into the page cache by prefetch (FUSE_NOTIFY_STORE), and pushes refused.</summary>
    public long PrefetchedPages { get; init; }
    public long PrefetchFailures { get; init; }
    public long PlannedPages { get; init; }
    public long ChunksLoaded { get; init; }
    public long ChunkEvictions { get; init; }
    public Percentiles ChunkLoadLatencySeconds { get; init; } = new(0, 0);

    internal static ChunkFsFileStats Of(ChunkFsFile f)
    {
        var c = f.Counters;
        var (p50, p99, max) = c.Latency();
        var loads = f.Memory.Times();
        long planned = 0;
        if (f.Prefetch is { } units) foreach (var u in units) planned += u.Pages.Length;
        return new ChunkFsFileStats
        {
            Name = f.Name,
            ImageBytes = f.Size,
            Opens = Interlocked.Read(ref c.Opens),
            Reads = Interlocked.Read(ref c.Reads),
            ReadBytes = Interlocked.Read(ref c.Bytes),
            ReadMisses = Interlocked.Read(ref c.Misses),
            ReadErrors = Interlocked.Read(ref c.Errors),
            ReadLatencySeconds = new Percentiles(Percentiles.FromMicroseconds(p50), Percentiles.FromMicroseconds(p99))
            {
                Max = Percentiles.FromMicroseconds(max),
            },
            PrefetchedPages = Interlocked.Read(ref c.StoredPages),
            PrefetchFailures = Interlocked.Read(ref c.StoreFailures),
            PlannedPages = planned,
            ChunksLoaded = f.Memory.Loads + (f.Pack?.Loads ?? 0),
            ChunkEvictions = f.Memory.Evictions + (f.Pack?.Evictions ?? 0),
            ChunkLoadLatencySeconds = loads.Load,
        };
    }
}
