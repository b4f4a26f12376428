using Snapshots.Store;
using Snapshots.Store.Keys;
using Snapshots.Store.Layers;
using Snapshots.Store.Origin;

namespace Snapshots.Prefetch;

/// <summary>Prefetch plans kept with their snapshots on the origin (plans/NAME.plan), replaced atomically, sealed
/// under the snapshot's domain key and bound to its manifest (<see cref="PlanSeal"/>).</summary>
public sealed class PlanStore(IBlobStore blobs, IKeyProvider keys)
{
    public const string Prefix = "plans/";

    public static string KeyOf(string name) => Prefix + Store.Manifests.SnapshotName.Validate(name) + ".plan";

    /// <summary>Binds the plan to the snapshot's current manifest (and to its working-set pack, when one was
    /// built for it), seals it and publishes it. The pack is published first, so a plan never names a missing
    /// pack.</summary>
    public async Task<PrefetchPlan> AttachAsync(
        string name, PrefetchPlan plan, Func<Task<BuildResult>>? buildPack = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var manifest = await new SnapshotCatalog(blobs).LoadAsync(name, ct);
        if (manifest.ImageSize != plan.ImageSize)
        {
            throw new InvalidInputException(
                $"the plan is for a {plan.ImageSize}-byte image; snapshot '{name}' is {manifest.ImageSize} bytes",
                "plan");
        }
        PrefetchPlan bound = plan.BoundTo(manifest.Hash);
        if (buildPack is not null)
        {
            var pack = await buildPack();
            bound = plan.BoundTo(manifest.Hash, pack.Name, Convert.FromHexString(pack.ManifestHash));
        }
        await blobs.PutAsync(KeyOf(name), PlanSeal.Seal(bound.Serialize(), manifest, keys), ct);
        return bound;
    }

    /// <summary>
    /// The snapshot's plan, or null (with the reason) when it has none. A plan whose seal does not verify for the
    /// snapshot's current manifest (altered, forged, another snapshot's or version's) is a
    /// <see cref="ManifestFormatException"/>: the caller serves on demand.
    /// </summary>
    public async Task<(PrefetchPlan? Plan, string? Why)> TryLoadAsync(
        string name, Store.Manifests.Manifest manifest, CancellationToken ct = default)
    {
        var bytes = await blobs.ReadAllAsync(KeyOf(name), PrefetchPlan.MaxBytes + 64, ct);
        if (bytes is null) return (null, $"snapshot '{name}' has no prefetch plan");
        return (PlanSeal.Open(bytes, manifest, keys, $"'{name}' in {blobs.Describe}"), null);
    }
}
