using Snapshots.Store.Chunks;

namespace Snapshots.Prefetch;

public sealed record PrefetchOptions
{
    /// <summary>Chunk fetches in flight at once.</summary>
    public int Concurrency { get; init; } = 2;
    /// <summary>Bytes per second; 0 means no cap.</summary>
    public long BandwidthBytesPerSecond { get; init; }
}

/// <summary>
/// Walks a plan ahead of the VM: chunks in the order their first planned page appears, fetched with bounded
/// concurrency under a bandwidth cap, then handed to the loader to install. The scheduler never serves a demand
/// fault and never holds one up: the loader installs prefetched pages only between demand faults, and a chunk a
/// demand fault needs is fetched once, by whoever asks first.
/// </summary>
public sealed class PrefetchScheduler(PrefetchPlan plan, IPrefetchTarget target, PrefetchOptions options)
{
    private long _chunksLoaded;
    private long _failures;

    public long ChunksLoaded => Interlocked.Read(ref _chunksLoaded);
    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>The plan as (chunk, its planned pages) in first-use order.</summary>
    public static List<(int Chunk, uint[] Pages)> ByChunk(PrefetchPlan plan)
    {
        var order = new List<int>();
        var pages = new Dictionary<int, List<uint>>();
        foreach (var p in plan.Pages)
        {
            int chunk = (int)(p / ChunkGeometry.PagesPerChunk);
            if (!pages.TryGetValue(chunk, out var list)) { pages[chunk] = list = []; order.Add(chunk); }
            list.Add(p);
        }
        var result = new List<(int, uint[])>(order.Count);
        foreach (var c in order)
        {
            var arr = pages[c].ToArray();
            Array.Sort(arr);
            result.Add((c, arr));
        }
        return result;
    }

    public async Task RunAsync(CancellationToken ct)
    {
        var work = ByChunk(plan);
        var bucket = options.BandwidthBytesPerSecond > 0 ? new TokenBucket(options.BandwidthBytesPerSecond, 4L * ChunkGeometry.ChunkSize) : null;
        int next = -1;
        var workers = new Task[Math.Max(1, options.Concurrency)];
        for (int w = 0; w < workers.Length; w++)
            workers[w] = Task.Run(async () =>
            {
                for (int i = Interlocked.Increment(ref next); i < work.Count && !ct.IsCancellationRequested; i = Interlocked.Increment(ref next))
                {
                    var (chunk, pages) = work[i];
                    try
                    {
                        if (bucket is not null) await bucket.TakeAsync(ChunkGeometry.ChunkSize, ct);
                        await target.LoadChunkAsync(chunk, ct);
                        Interlocked.Increment(ref _chunksLoaded);
                        target.ChunkReady(chunk, pages);
                    }
                    catch (OperationCanceledException) { return; }
                    catch (Store.SnapshotException)
                    {
                        // A prefetch that fails costs nothing but the prefetch: demand will fetch (and fail loudly) if needed.
                        Interlocked.Increment(ref _failures);
                    }
                }
            }, CancellationToken.None);
        await Task.WhenAll(workers);
    }
}
