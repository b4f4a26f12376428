namespace Snapshots.ChunkFs;

/// <summary>
/// Guest memory as both loaders see it (the userfaultfd handler and the ChunkFs file): a flat, read-only range of
/// bytes. Reads may start at any offset and have any size, crossing chunks; the part past the end is not read.
/// </summary>
public interface IPageSource
{
    /// <summary>Bytes of guest memory.</summary>
    long Size { get; }

    /// <summary>True when the chunk holding <paramref name="offset"/> holds only zeros (a loader maps zero pages
    /// without copying).</summary>
    bool IsZero(long offset);

    /// <summary>Fills <paramref name="destination"/> with the bytes at <paramref name="offset"/>, as far as the end;
    /// returns how many were read (0 at or past the end). Throws <see cref="Store.SnapshotException"/> when they
    /// cannot be had intact.</summary>
    ValueTask<int> ReadAsync(long offset, Memory<byte> destination, CancellationToken ct = default);
}
