using Snapshots.ChunkFs.Memory;
using Snapshots.Prefetch;
using Snapshots.Store.Chunks;
using Snapshots.Store.Tiers;

namespace Snapshots.ChunkFs.Fuse;

/// <summary>
/// Prefetch over FUSE: a planned chunk, once in memory, is pushed into the kernel's page cache with
/// FUSE_NOTIFY_STORE (its planned pages, in runs), so the VM's faults on them find the page cache filled and
/// never reach the mount. Chunks are fetched at prefetch priority: a demand read's fetch always goes first.
/// </summary>
internal sealed class StorePrefetch(ChunkFsServer server, ChunkFsFile file) : IPrefetchTarget
{
    private ResidentChunks Source(PrefetchUnit unit) => unit.FromPack ? file.Pack! : file.Memory;

    public ValueTask LoadChunkAsync(PrefetchUnit unit, CancellationToken ct)
    {
        var source = Source(unit);
        return source.IsZeroChunk(unit.Chunk) ? ValueTask.CompletedTask
            : new ValueTask(source.LoadAsync(unit.Chunk, ct, FetchPriority.Prefetch));
    }

    /// <summary>Runs of pages consecutive both in the file and in the chunk go in one notification each.</summary>
    public void ChunkReady(PrefetchUnit unit)
    {
        var source = Source(unit);
        nint address = 0;
        bool zero = source.IsZeroChunk(unit.Chunk);
        if (!zero && !source.TryPin(unit.Chunk, out address)) return; // evicted already: demand will read it
        try
        {
            var pages = unit.Pages;
            for (int i = 0; i < pages.Length;)
            {
                int j = i + 1;
                while (j < pages.Length && pages[j] == pages[j - 1] + 1 && unit.SlotOf(j) == unit.SlotOf(j - 1) + 1)
                    j++;
                long offset = (long)pages[i] * ChunkGeometry.PageSize;
                int length = (int)Math.Min((long)(j - i) * ChunkGeometry.PageSize, file.Size - offset);
                if (length > 0)
                {
                    nint data = zero ? server.Zeros : address + (unit.SlotOf(i) * ChunkGeometry.PageSize);
                    if (server.NotifyStore(file.NodeId, offset, data, length))
                        Interlocked.Add(ref file.Counters.StoredPages, (length + 4095) / 4096);
                    else Interlocked.Increment(ref file.Counters.StoreFailures);
                }
                i = j;
            }
        }
        finally
        {
            if (!zero) source.Unpin(unit.Chunk);
        }
    }
}
