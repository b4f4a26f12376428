using Snapshots.Store.Chunks;
using Snapshots.Store.Manifests;

namespace Snapshots.Host;

/// <summary>What `inspect` and `ls` show of a manifest: everything readable without a key, and, when the
/// keyring holds the key that wraps the layer, that key's fingerprint (<see cref="KeyFingerprint"/>; null when it
/// does not, or it was not asked). Sizes in bytes; <see cref="ManifestRatio"/> is manifest bytes over image
/// bytes; <see cref="Sequence"/> the publication number (rollback protection).</summary>
public sealed record LayerInfo(
    string Name, string Layer, string Domain, string? Parent, long ImageBytes, int Chunks, int DataEntries,
    int ZeroEntries, int ManifestBytes, double ManifestRatio, string ManifestHash, int FormatVersion,
    DateTimeOffset Created)
{
    public long Sequence { get; init; }
    public string? KeyFingerprint { get; init; }

    /// <summary>Why no fingerprint is given when the keyring refuses its key for the domain (null otherwise).
    /// </summary>
    public string? KeyProblem { get; init; }

    /// <summary>As <see cref="Of(Manifest)"/>, with the fingerprint of the keyring's key for the layer's domain
    /// when that key opens the layer's key.</summary>
    public static LayerInfo Of(Manifest m, Store.Keys.IKeyProvider keys)
    {
        ArgumentNullException.ThrowIfNull(m);
        ArgumentNullException.ThrowIfNull(keys);
        string? fingerprint = null, problem = null;
        try
        {
            if (keys.Fingerprint(m.Domain) is { } fp)
            {
                var layerKey = keys.UnwrapLayerKey(m.Domain, m.WrappedLayerKey,
                    ManifestCodec.LayerKeyContext(m.Id, m.Domain));
                System.Security.Cryptography.CryptographicOperations.ZeroMemory(layerKey);
                fingerprint = fp;
            }
        }
        catch (Store.KeyUnavailableException e) when (e.Message.Contains("does not open", StringComparison.Ordinal))
        {
            // Another key wrapped it: not this keyring's to name.
        }
        catch (Store.SnapshotException e) { problem = e.Message; } // the keyring refuses its key: say why
        return Of(m) with { KeyFingerprint = fingerprint, KeyProblem = problem };
    }

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
            Convert.ToHexStringLower(m.Hash), m.Sequence == 0 ? 1 : ManifestCodec.Version, m.Created)
        {
            Sequence = m.Sequence,
        };
    }
}

/// <summary>One row of a store's listing: the layer, or why its manifest could not be read.</summary>
public sealed record SnapshotListing(string Name, LayerInfo? Layer, string? Error);

/// <summary>What `rm` did: the snapshot removed, and the children left without their parent (when forced).</summary>
public sealed record RemoveResult(string Removed, IReadOnlyList<string> OrphanedChildren);
