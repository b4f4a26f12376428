using Snapshots.Store.Chunks;
using Snapshots.Store.Manifests;

namespace Snapshots.Host;

/// <summary>What `inspect` and `ls` show of a manifest: everything readable without a key. Sizes in bytes;
/// <see cref="ManifestFraction"/> is manifest bytes over image bytes.</summary>
public sealed record LayerInfo(
    string Name, string Layer, string Domain, string? Parent, long ImageBytes, int Chunks, int DataEntries,
    int ZeroEntries, int ManifestBytes, double ManifestFraction, string ManifestHash, int FormatVersion,
    DateTimeOffset Created)
{
    public static LayerInfo Of(Manifest m)
    {
        ArgumentNullException.ThrowIfNull(m);
        int data = 0, zero = 0;
        foreach (var e in m.Entries)
        {
            if (e.Kind == EntryKind.Data) data++;
            else zero++;
        }
        return new LayerInfo(m.Name, m.Layer.ToText(), m.Domain.Id, m.ParentName, m.ImageSize,
            ChunkGeometry.ChunkCount(m.ImageSize), data, zero, m.SerializedSize, m.SerializedSize / (double)m.ImageSize,
            Convert.ToHexStringLower(m.Hash), ManifestCodec.Version, m.Created);
    }
}

/// <summary>One row of a store's listing: the layer, or why its manifest could not be read.</summary>
public sealed record SnapshotListing(string Name, LayerInfo? Layer, string? Error);

/// <summary>What `rm` did: the snapshot removed, and the children left without their parent (when forced).</summary>
public sealed record RemoveResult(string Removed, IReadOnlyList<string> OrphanedChildren);
