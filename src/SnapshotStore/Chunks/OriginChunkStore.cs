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

    public async ValueTask<int> TryGetAsync(ChunkName name, Memory<byte> buffer, CancellationToken ct = default) =>
        await Blobs.ReadAsync(KeyOf(name), buffer, ct) ?? -1;

    public ValueTask<bool> PutIfAbsentAsync(
        ChunkName name, ReadOnlyMemory<byte> ciphertext, CancellationToken ct = default) =>
        Blobs.PutIfAbsentAsync(KeyOf(name), ciphertext, ct);

    public ValueTask<bool> ExistsAsync(ChunkName name, CancellationToken ct = default) =>
        Blobs.ExistsAsync(KeyOf(name), ct);
}
