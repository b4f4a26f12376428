using Snapshots.Store.Chunks;
using Snapshots.Store.Manifests;

namespace Snapshots.Snapctl.Commands;

/// <summary>What `inspect` and `ls` show of a manifest: everything readable without a key.</summary>
public sealed record LayerInfo(
    string Name, string Layer, string Domain, string? Parent, long ImageBytes, int Chunks, int DataEntries,
    int ZeroEntries, int ManifestBytes, double ManifestFraction, string ManifestHash, int FormatVersion,
    DateTimeOffset Created)
{
    public static LayerInfo Of(Manifest m)
    {
        int data = 0, zero = 0;
        foreach (var e in m.Entries) if (e.Kind == EntryKind.Data) data++; else zero++;
        return new LayerInfo(
            m.Name, m.Layer.ToText(), m.Domain.Id, m.ParentName, m.ImageSize, ChunkGeometry.ChunkCount(m.ImageSize),
            data, zero, m.SerializedSize, m.SerializedSize / (double)m.ImageSize, Convert.ToHexStringLower(m.Hash),
            ManifestCodec.Version, m.Created);
    }

    public string Line() =>
        $"{Name}: {Layer} layer, domain {Domain}, {Output.Bytes(ImageBytes)} image, {Chunks} chunks, " +
        $"{DataEntries} data + {ZeroEntries} zero entries, " +
        $"manifest {Output.Bytes(ManifestBytes)} ({ManifestFraction:P4}), " +
        $"parent {Parent ?? "-"}, created {Created:u}, hash {ManifestHash}";

    public string Row() => $"{Name,-24} {Layer,-8} {Domain,-20} {Output.Bytes(ImageBytes),10}  parent {Parent ?? "-"}";
}
