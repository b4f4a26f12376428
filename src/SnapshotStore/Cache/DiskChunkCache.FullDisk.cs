using Snapshots.Store.Chunks;
using Snapshots.Store.Origin;

namespace Snapshots.Store.Cache;

/// <summary>A full disk: the free-space floor checked before a write, ENOSPC and EDQUOT caught during one; either
/// way a batch is evicted and the write tried once more, then dropped.</summary>
public sealed partial class DiskChunkCache
{
    private const int ENOSPC = 28, EDQUOT = 122;
    private const int BlockSize = 4096;
    private readonly DriveInfo _drive;
    private readonly long _floor;
    private readonly Lock _roomLock = new();
    private long _fullDiskEvents, _fullDiskSkips;
    private long _inFlight; // bytes (whole blocks) of the writes under way

    /// <summary>Fills dropped because the disk was full (<see cref="DiskCacheCounters.FullDiskSkips"/>): a reader
    /// reports them as skipped fills, so a warm-up that left the cache short says so.</summary>
    public long SkippedFills => Interlocked.Read(ref _fullDiskSkips);

    private static (DriveInfo Drive, long Floor) FreeSpaceFloor(string dir, DiskCacheOptions options)
    {
        var drive = new DriveInfo(dir); // statvfs of the directory itself: any path on the filesystem works
        long total;
        try { total = drive.TotalSize; }
        catch (IOException) { total = 0; } // cannot tell: the byte floor alone
        return (drive, Math.Max(options.MinFreeBytes, (long)(total * options.MinFreeRatio)));
    }

    /// <summary>Writes the entry, making room once when the disk is full. False when it is still full: the fill is
    /// dropped (counted), nothing partial is left behind, and the caller goes on.</summary>
    private bool TryStore(ChunkName name, ReadOnlySpan<byte> ciphertext)
    {
        int size = ciphertext.Length;
        // Reserved before the floor is checked: concurrent fills (the reader runs up to 64) each count the others'
        // writes in flight, so together they cannot pass a check that each alone would.
        long blocks = (size + BlockSize - 1L) / BlockSize * BlockSize;
        Interlocked.Add(ref _inFlight, blocks);
        try
        {
            // With no floor, statvfs is not asked before writing: the write itself finds a full disk.
            bool underFloor = _floor > 0 && Deficit() > 0;
            if (!underFloor && TryWrite(name, ciphertext)) return true;
            Interlocked.Increment(ref _fullDiskEvents);
            MakeRoom(size, writeFailed: !underFloor);
            if (Deficit() == 0 && TryWrite(name, ciphertext)) return true;
            Interlocked.Increment(ref _fullDiskSkips);
            return false;
        }
        finally
        {
            Interlocked.Add(ref _inFlight, -blocks);
        }
    }

    /// <summary>False on ENOSPC or EDQUOT; other failures are thrown. The temp file is removed either way.</summary>
    private bool TryWrite(ChunkName name, ReadOnlySpan<byte> ciphertext)
    {
        var path = PathOf(name);
        var tmp = FileBlobStore.TempPathFor(path);
        try
        {
            EnsureSubdirectory(Path.GetDirectoryName(path)!);
            // No preallocation: .NET reports a failed fallocate without its errno, and a full disk must be told
            // apart from other failures.
            using (var h = File.OpenHandle(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                RandomAccess.Write(h, ciphertext, 0);
            }
            File.Move(tmp, path, overwrite: true);
            return true;
        }
        catch (IOException ex) when (ex.HResult is ENOSPC or EDQUOT) // .NET carries the raw errno on Unix
        {
            return false;
        }
        finally
        {
            File.Delete(tmp); // a partial write: never left to hold the space it was refused
        }
    }

    /// <summary>Bytes to free so that the writes in flight (sizes rounded up to 4 KiB blocks) leave the floor free;
    /// 0 when there is room, or when the filesystem cannot say (the write then finds out). A write that has landed
    /// but not yet left <see cref="_inFlight"/> is counted twice for a moment: on the safe side.</summary>
    private long Deficit()
    {
        long available;
        try { available = _drive.AvailableFreeSpace; }
        catch (IOException) { return 0; }
        return Math.Max(0, _floor + Interlocked.Read(ref _inFlight) - available);
    }

    /// <summary>Evicts a batch for a write that found the disk full: down to the low watermark, or, when the cache
    /// is already under it (the disk, not the budget, is the limit: it is smaller than the budget, or others fill
    /// it), the share of its bytes a batch between the watermarks would be, and always at least what the write lacks
    /// (down to empty but for protected entries: the floor is the operator's, and the cache gives way to it). One
    /// writer at a time, each measuring after the last one's evictions and counting every write in flight, so
    /// concurrent fills short of the same space do not each evict a batch for it.</summary>
    private void MakeRoom(int size, bool writeFailed)
    {
        lock (_roomLock)
        {
            long need = Deficit();
            // The write failed though statvfs shows room: a quota or reserved blocks it does not see. One entry's room.
            if (writeFailed && need == 0) need = size;
            if (need == 0) return; // another writer made room meanwhile
            List<ChunkName>? victims;
            lock (_lock)
            {
                double share = 1 - (_options.LowWatermarkRatio / _options.HighWatermarkRatio);
                long batch = Math.Max(need, (long)(_bytes * share));
                long target = Math.Min(_options.LowWatermarkBytes, _bytes - batch);
                victims = EvictDownToLocked(Math.Max(0, target), keepNewest: false);
            }
            DeleteEntries(victims);
        }
    }
}
