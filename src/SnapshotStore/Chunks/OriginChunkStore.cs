using Snapshots.Store.Origin;

namespace Snapshots.Store.Chunks;

/// <summary>Chunks in the origin's object namespace: chunks/ab/abcdef... (two-hex fan-out keeps directories
/// and S3 listings small).</summary>
public sealed class OriginChunkStore(IBlobStore blobs) : IChunkStore
{
    public const string Prefix = "chunks/";

    public IBlobStore Blobs { get; } = blobs;
    public string Describe => $"origin {Blobs.Describe}";

    public static string KeyOf(ChunkName name)
    {
        var hex = name.ToString();
        return string.Concat(Prefix, hex.AsSpan(0, 2), "/", hex);
    }

    public static bool TryParseKey(string key, out ChunkName name)
    {
        name = default;
        int slash = key.LastIndexOf('/');
        return key.StartsWith(Prefix, StringComparison.Ordinal) && ChunkName.TryParse(key.AsSpan(slash + 1), out name);
    }

    /// <summary>Where gc parks a candidate between its two passes (docs/format.md, "Garbage collection").</summary>
    public const string TrashPrefix = "trash/";

    /// <summary>Reads a chunk; one missing from its place but parked in trash/ by a gc that was killed before it
    /// could put it back (a build had claimed it meanwhile) is moved back and read: a snapshot published then is
    /// whole at once, not only after the next gc.</summary>
    public async ValueTask<int> TryGetAsync(ChunkName name, Memory<byte> buffer, CancellationToken ct = default)
    {
        var key = KeyOf(name);
        if (await Blobs.ReadAsync(key, buffer, ct) is { } n) return n;
        if (!await Blobs.ExistsAsync(TrashPrefix + key, ct)) return -1;
        await Blobs.MoveAsync(TrashPrefix + key, key, ct); // false: another reader or gc moved it first
        return await Blobs.ReadAsync(key, buffer, ct) ?? -1;
    }

    public ValueTask<bool> PutIfAbsentAsync(
        ChunkName name, ReadOnlyMemory<byte> ciphertext, CancellationToken ct = default) =>
        Blobs.PutIfAbsentAsync(KeyOf(name), ciphertext, ct);

    public ValueTask<bool> ExistsAsync(ChunkName name, CancellationToken ct = default) =>
        Blobs.ExistsAsync(KeyOf(name), ct);
}
