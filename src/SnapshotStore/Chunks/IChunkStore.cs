namespace Snapshots.Store.Chunks;

/// <summary>A place chunks can be read from, by name. Ciphertext only.</summary>
public interface IChunkStore
{
    /// <summary>Short description for messages and counters ("disk cache /var/cache/x").</summary>
    string Describe { get; }

    /// <summary>Reads the chunk's ciphertext into <paramref name="buffer"/>; returns its length, or -1 when this
    /// store does not have it.</summary>
    ValueTask<int> TryGetAsync(ChunkName name, Memory<byte> buffer, CancellationToken ct = default);
}

/// <summary>A nearer tier that may be filled and may drop entries.</summary>
public interface IChunkCache : IChunkStore
{
    /// <summary>True when this cache checks every entry against its name before returning it (so the
    /// reader need not hash it again).</summary>
    bool VerifiesOnRead { get; }

    ValueTask PutAsync(ChunkName name, ReadOnlyMemory<byte> ciphertext, CancellationToken ct = default);

    void Remove(ChunkName name);

    /// <summary>Entries this cache found corrupt and dropped itself (when it verifies on read).</summary>
    long DroppedCorrupt => 0;

    /// <summary>Writes <see cref="PutAsync"/> accepted that this cache still completes in the background (as the
    /// Redis tier does); 0 for a cache that has written the chunk when PutAsync returns.</summary>
    int PendingFills => 0;

    /// <summary>Background writes that ended refused or lost, counted as they end.</summary>
    long FailedFills => 0;

    /// <summary>Writes dropped: not attempted because the cache was too far behind (too many in flight), or, for
    /// the disk cache, because its disk was full (<see cref="Cache.DiskChunkCache.SkippedFills"/>).</summary>
    long SkippedFills => 0;

    /// <summary>Waits, at most <paramref name="limit"/>, until <see cref="PendingFills"/> is 0.</summary>
    Task FlushFillsAsync(TimeSpan limit) => Task.CompletedTask;
}
