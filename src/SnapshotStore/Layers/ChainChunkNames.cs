using Snapshots.Store.Chunks;
using Snapshots.Store.Manifests;

namespace Snapshots.Store.Layers;

/// <summary>
/// The data chunks a snapshot's resolved image reads, from the manifests alone: names and indices are not
/// secret, so warming a cache needs no key (the cache only ever holds ciphertext). Each child must name its
/// parent's current manifest hash, as when the chain is opened for reading.
/// </summary>
public static class ChainChunkNames
{
    /// <summary>The distinct data chunks the image reads, in image order.</summary>
    public static async Task<List<ChunkName>> ResolveAsync(
        SnapshotCatalog catalog, string name, CancellationToken ct = default)
    {
        var (_, slots, _) = await ResolveSlotsAsync(catalog, name, ct);
        var names = new List<ChunkName>();
        var seen = new HashSet<ChunkName>();
        foreach (var n in slots) if (n is { } v && seen.Add(v)) names.Add(v);
        return names;
    }

    /// <summary>The chunk each index of the resolved image reads (null: a zero chunk), the top manifest, and the
    /// chain's manifests, top first. Throws <see cref="SnapshotNotFoundException"/> for an unknown name, and
    /// <see cref="SnapshotException"/> for a missing or mismatched parent.</summary>
    public static async Task<(Manifest Top, ChunkName?[] Slots, List<Manifest> Chain)> ResolveSlotsAsync(
        SnapshotCatalog catalog, string name, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        var top = await catalog.LoadAsync(name, ct);
        var chain = new List<Manifest> { top };
        var slots = new ChunkName?[ChunkGeometry.ChunkCount(top.ImageSize)];
        var set = new bool[slots.Length];
        var current = top;
        for (int depth = 0; ; depth++)
        {
            foreach (var e in current.Entries)
            {
                if (e.Index >= slots.Length || set[e.Index]) continue; // a nearer layer already decided this index
                set[e.Index] = true;
                if (e.Kind == EntryKind.Data) slots[e.Index] = e.Name;
            }
            if (current.ParentName is not { } parentName) break;
            if (depth + 1 >= SnapshotChain.MaxDepth)
            {
                throw new ManifestFormatException(
                    $"snapshot '{name}': chain deeper than {SnapshotChain.MaxDepth} layers");
            }
            var parent = await catalog.TryLoadAsync(parentName, ct)
                ?? throw new SnapshotException($"snapshot '{current.Name}' needs parent '{parentName}', "
                    + $"which is not in {catalog.Blobs.Describe}");
            if (!parent.Hash.AsSpan().SequenceEqual(current.ParentHash))
            {
                throw new SnapshotException($"snapshot '{current.Name}' was built on another version of '{parentName}' "
                    + "(parent manifest hash mismatch)");
            }
            current = parent;
            chain.Add(parent);
        }
        return (top, slots, chain);
    }
}
