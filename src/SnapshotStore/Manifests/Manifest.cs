using Snapshots.Store.Crypto;

namespace Snapshots.Store.Manifests;

/// <summary>
/// A layer's manifest as stored: header, chunk table and the still-sealed key table. Parsing it needs no key
/// (gc and `ls` read manifests without keys); <see cref="ManifestCodec.OpenKeyTable"/> unseals the secrets.
/// </summary>
public sealed class Manifest
{
    public required byte[] Id { get; init; }
    public required string Name { get; init; }
    public required LayerKind Layer { get; init; }
    public required TrustDomain Domain { get; init; }
    public required byte[] Salt { get; init; }
    public required long ImageSize { get; init; }
    public required int ChunkSize { get; init; }
    public required DateTimeOffset Created { get; init; }

    /// <summary>The publication number of this name in its store: 1 for the first, one more for each
    /// <c>--replace</c> (0: a version 1 manifest, from before there were numbers). Authenticated with the header
    /// under the layer key; a reader that saw a higher one refuses a lower one (a rollback).</summary>
    public long Sequence { get; init; }
    public string? ParentName { get; init; }
    /// <summary>BLAKE3 of the parent manifest's bytes: a child is bound to one exact parent version.</summary>
    public byte[]? ParentHash { get; init; }
    public required byte[] WrappedLayerKey { get; init; }
    public required ManifestEntry[] Entries { get; init; }

    /// <summary>The sealed key table (nonce, ciphertext, tag) and the bytes it authenticates.</summary>
    internal byte[] SealedKeyTable { get; init; } = [];
    internal int AuthenticatedLength { get; init; }
    internal byte[] Raw { get; init; } = [];

    /// <summary>BLAKE3 of the whole serialized manifest (its trailer). Children bind to it.</summary>
    public byte[] Hash { get; init; } = [];

    public int ChunkCount => Chunks.ChunkGeometry.ChunkCount(ImageSize);
    public int SerializedSize => Raw.Length;
}
