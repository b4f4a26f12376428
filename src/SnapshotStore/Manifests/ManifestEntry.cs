using Snapshots.Store.Chunks;

namespace Snapshots.Store.Manifests;

public enum EntryKind : byte
{
    /// <summary>The chunk is all zeros in this layer (it overrides a parent's data at this index).</summary>
    Zero = 0,
    /// <summary>The chunk is stored under <see cref="ManifestEntry.Name"/>.</summary>
    Data = 1,
}

/// <summary>One chunk index this layer sets. Indices a layer does not list come from its parent, or are zero.</summary>
public readonly record struct ManifestEntry(int Index, EntryKind Kind, ChunkName Name);

/// <summary>The secret half of an entry, kept only in the encrypted key table.</summary>
public readonly struct ChunkSecret
{
    public const int Size = 64;
    public readonly Bytes32 Key;
    public readonly Bytes32 PlaintextHash;

    public ChunkSecret(ReadOnlySpan<byte> key, ReadOnlySpan<byte> plaintextHash)
    {
        key.CopyTo(Key);
        plaintextHash.CopyTo(PlaintextHash);
    }
}
