using Snapshots.Store;
using Snapshots.Store.Layers;
using Snapshots.Store.Origin;

namespace Snapshots.Prefetch;

/// <summary>Prefetch plans kept with their snapshots on the origin (plans/NAME.plan), replaced atomically.</summary>
public sealed class PlanStore(IBlobStore blobs)
{
    public const string Prefix = "plans/";

    public static string KeyOf(string name) => Prefix + Store.Manifests.SnapshotName.Validate(name) + ".plan";

    /// <summary>Binds the plan to the snapshot's current manifest (and to its working-set pack, when one was
    /// built for it) and publishes it. The pack is published first, so a plan never names a missing pack.</summary>
    public async Task<PrefetchPlan> AttachAsync(
        string name, PrefetchPlan plan, Func<Task<BuildResult>>? buildPack = null, CancellationToken ct = default)
    {
        var manifest = await new SnapshotCatalog(blobs).LoadAsync(name, ct);
        if (manifest.ImageSize != plan.ImageSize)
        {
            throw new InvalidInputException(
                $"the plan is for a {plan.ImageSize}-byte image; snapshot '{name}' is {manifest.ImageSize} bytes");
        }
        PrefetchPlan bound = plan.BoundTo(manifest.Hash);
        if (buildPack is not null)
        {
            var pack = await buildPack();
            bound = plan.BoundTo(manifest.Hash, pack.Name, Convert.FromHexString(pack.ManifestHash));
        }
        await blobs.PutAsync(KeyOf(name), bound.Serialize(), ct);
        return bound;
    }

    /// <summary>
    /// The snapshot's plan, or null (with the reason) when it has none or it was made for another version.
    /// </summary>
    public async Task<(PrefetchPlan? Plan, string? Why)> TryLoadAsync(
        string name, byte[] manifestHash, CancellationToken ct = default)
    {
        var bytes = await blobs.ReadAllAsync(KeyOf(name), PrefetchPlan.MaxBytes, ct);
        if (bytes is null) return (null, $"snapshot '{name}' has no prefetch plan");
        var plan = PrefetchPlan.Parse(bytes, $"'{name}' in {blobs.Describe}");
        if (!plan.ManifestHash.AsSpan().SequenceEqual(manifestHash))
            return (null, $"the prefetch plan of '{name}' was made for another version of the snapshot");
        return (plan, null);
    }
}
