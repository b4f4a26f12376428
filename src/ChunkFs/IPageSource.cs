namespace Snapshots.ChunkFs;

/// <summary>
/// Guest memory as both loaders see it (the userfaultfd handler and the FUSE file): a flat, read-only range of
/// bytes. Reads are page-aligned and never cross a chunk boundary, so one read costs at most one chunk fetch.
/// </summary>
public interface IPageSource
{
    /// <summary>Bytes of guest memory.</summary>
    long Size { get; }

    /// <summary>True when the range holds only zeros (the loader can map zero pages without copying).</summary>
    bool IsZero(long offset);

    /// <summary>Fills <paramref name="destination"/> with the bytes at <paramref name="offset"/>; throws
    /// <see cref="Store.SnapshotException"/> when they cannot be had intact.</summary>
    ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken ct = default);
}
