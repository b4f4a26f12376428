namespace Snapshots.Store.Origin;

/// <summary>
/// The origin's object interface: what a directory, S3 or MinIO all offer. Keys are '/'-separated relative
/// paths (chunks/ab/..., manifests/NAME.manifest, leases/ID.lease). Every write is atomic: a reader sees the
/// whole object or none of it.
/// </summary>
public interface IBlobStore
{
    /// <summary>The store's address, for messages.</summary>
    string Describe { get; }

    /// <summary>Reads an object into <paramref name="destination"/>; null when absent. Throws
    /// <see cref="SnapshotException"/> when the object is larger than the destination.</summary>
    ValueTask<int?> ReadAsync(string key, Memory<byte> destination, CancellationToken ct = default);

    /// <summary>Reads a whole object of at most <paramref name="maxBytes"/>; null when absent.</summary>
    ValueTask<byte[]?> ReadAllAsync(string key, int maxBytes, CancellationToken ct = default);

    ValueTask<bool> ExistsAsync(string key, CancellationToken ct = default);

    /// <summary>Writes the object unless one exists under the key; true when this call stored it.</summary>
    ValueTask<bool> PutIfAbsentAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct = default);

    /// <summary>Writes or replaces the object atomically and durably (used to publish manifests).</summary>
    ValueTask PutAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct = default);

    /// <summary>Writes the object atomically and durably only when no object holds the key: of concurrent writers
    /// exactly one gets true (publishing a new name). Files: a hard link, which fails when the name exists; S3: a
    /// conditional PUT (If-None-Match: *), which S3 honours (an emulator that ignores it makes this a best effort).
    /// </summary>
    ValueTask<bool> PutNewAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct = default);

    /// <summary>Appends to an object that only its one writer touches (build leases). Not atomic.</summary>
    ValueTask AppendAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct = default);

    /// <summary>Lists the objects whose keys start with <paramref name="prefix"/> (a directory prefix such as
    /// "chunks/"); "" lists the whole store (every object under its root: the directory, or the bucket prefix).
    /// </summary>
    IAsyncEnumerable<BlobInfo> ListAsync(string prefix, CancellationToken ct = default);

    /// <summary>Deletes; absent objects are not an error.</summary>
    ValueTask DeleteAsync(string key, CancellationToken ct = default);

    /// <summary>Moves an object; false when the source is gone.</summary>
    ValueTask<bool> MoveAsync(string fromKey, string toKey, CancellationToken ct = default);

    /// <summary>Makes every write so far durable: called before a manifest that depends on them is published.</summary>
    ValueTask FlushAsync(CancellationToken ct = default);
}

public readonly record struct BlobInfo(string Key, long Size, DateTimeOffset LastModified);
