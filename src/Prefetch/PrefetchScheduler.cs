using Snapshots.Store.Chunks;

namespace Snapshots.Prefetch;

public sealed record PrefetchOptions
{
    /// <summary>Chunk fetches in flight at once.</summary>
    public int Concurrency { get; init; } = 2;
    /// <summary>Bytes per second; 0 means no cap.</summary>
    public long BandwidthBytesPerSecond { get; init; }

    /// <summary>A bucket shared with other prefetchers (one host-wide prefetch bandwidth, granted in arrival
    /// order); when set, <see cref="BandwidthBytesPerSecond"/> is ignored.</summary>
    public TokenBucket? Bucket { get; init; }
}

/// <summary>
/// Walks a plan ahead of the VM: its units (chunks of the working-set pack, or of the snapshot) in order, fetched
/// with bounded concurrency under a bandwidth cap, then handed to the loader to install. The scheduler never serves
/// a demand fault and never holds one up: the loader installs prefetched pages only between demand faults, and a
/// chunk a demand fault needs is fetched once, by whoever asks first.
/// </summary>
public sealed class PrefetchScheduler(IReadOnlyList<PrefetchUnit> work, IPrefetchTarget target, PrefetchOptions options)
{
    private long _chunksLoaded;
    private long _failures;

    public long ChunksLoaded => Interlocked.Read(ref _chunksLoaded);
    public long Failures => Interlocked.Read(ref _failures);

    public async Task RunAsync(CancellationToken ct)
    {
        var bucket = options.Bucket ?? (options.BandwidthBytesPerSecond > 0
            ? new TokenBucket(options.BandwidthBytesPerSecond, 4L * ChunkGeometry.ChunkSize)
            : null);
        int next = -1;
        var workers = new Task[Math.Max(1, options.Concurrency)];
        for (int w = 0; w < workers.Length; w++)
            workers[w] = Task.Run(async () =>
            {
                for (int i = Interlocked.Increment(ref next); i < work.Count && !ct.IsCancellationRequested;
                    i = Interlocked.Increment(ref next))
                {
                    var unit = work[i];
                    try
                    {
                        if (bucket is not null) await bucket.TakeAsync(ChunkGeometry.ChunkSize, ct);
                        await target.LoadChunkAsync(unit, ct);
                        Interlocked.Increment(ref _chunksLoaded);
                        target.ChunkReady(unit);
                    }
                    catch (OperationCanceledException) { return; }
                    catch (Store.SnapshotException)
                    {
                        // A prefetch that fails costs nothing but the prefetch: demand will fetch (and fail loudly)
                        // if needed.
                        Interlocked.Increment(ref _failures);
                    }
                }
            }, CancellationToken.None);
        await Task.WhenAll(workers);
    }
}
