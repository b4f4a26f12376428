using Snapshots.Prefetch;
using Snapshots.Store;
using Snapshots.Store.Layers;
using Snapshots.Store.Manifests;

namespace Snapshots.Host;

public sealed partial class SnapshotHost
{
    /// <summary>A snapshot's manifest and its chain, top first, without any key: what gc and an operator see.</summary>
    public async Task<IReadOnlyList<LayerInfo>> InspectAsync(string name, CancellationToken ct = default)
    {
        var layers = new List<LayerInfo>();
        string? next = name;
        while (next is not null && layers.Count < SnapshotChain.MaxDepth)
        {
            var m = await Catalog.LoadAsync(next, ct);
            layers.Add(LayerInfo.Of(m, Keys));
            next = m.ParentName;
        }
        return layers;
    }

    /// <summary>Every snapshot in the store; one unreadable manifest is listed with its error and does not hide
    /// the others.</summary>
    public async Task<IReadOnlyList<SnapshotListing>> ListAsync(CancellationToken ct = default)
    {
        var rows = new List<SnapshotListing>();
        await foreach (var n in Catalog.ListNamesAsync(ct))
        {
            try
            {
                if (await Catalog.TryLoadAsync(n, ct) is { } m) rows.Add(new SnapshotListing(n, LayerInfo.Of(m), null));
            }
            catch (SnapshotException ex)
            {
                rows.Add(new SnapshotListing(n, null, ex.Message));
            }
        }
        return rows;
    }

    /// <summary>Removes a snapshot's manifest, with its prefetch plan and working-set pack (their chunks go at the
    /// next gc). A tenant's function layer can only be removed by that tenant (<paramref name="tenant"/>).
    /// Refuses, naming them, when other snapshots build on it, unless <paramref name="force"/>.</summary>
    public async Task<RemoveResult> RemoveAsync(string name, bool force, string? tenant = null,
        CancellationToken ct = default)
    {
        SnapshotChain.CheckWrite(await Catalog.LoadAsync(name, ct), tenant);
        var children = new List<string>();
        await foreach (var n in Catalog.ListNamesAsync(ct))
        {
            try
            {
                if ((await Catalog.TryLoadAsync(n, ct))?.ParentName == name) children.Add(n);
            }
            catch (SnapshotException)
            {
                // An unreadable manifest names no parent we can trust.
            }
        }
        if (children.Count > 0 && !force)
        {
            throw new InvalidInputException(
                $"snapshot '{name}' is the parent of {string.Join(", ", children)}; remove those first or force it")
            {
                Parameter = "force",
            };
        }
        await Catalog.DeleteAsync(name, ct);
        await Blobs.DeleteAsync(PlanStore.KeyOf(name), ct);
        var pack = name + WorkingSetPack.Suffix;
        if (!name.EndsWith(WorkingSetPack.Suffix, StringComparison.Ordinal) && SnapshotName.IsValid(pack)
            && await Catalog.ExistsAsync(pack, ct))
            await Catalog.DeleteAsync(pack, ct);
        return new RemoveResult(name, children);
    }

    /// <summary>Deletes chunks no manifest or running build references (safe against concurrent builds:
    /// docs/format.md).</summary>
    public Task<GcResult> CollectGarbageAsync(CancellationToken ct = default) =>
        new GarbageCollector(Blobs).CollectAsync(ct);

    /// <summary>What <see cref="CollectGarbageAsync"/> would delete now; changes nothing.</summary>
    public Task<GcResult> CollectGarbageDryRunAsync(CancellationToken ct = default) =>
        new GarbageCollector(Blobs).DryRunAsync(ct);
}
