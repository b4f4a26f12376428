using Snapshots.Prefetch;
using Snapshots.Store.Chunks;
using Snapshots.Store.Layers;

namespace Snapshots.Host;

public sealed partial class SnapshotHost
{
    /// <summary>Stores a prefetch plan with a snapshot, bound to its current manifest, replacing the previous one
    /// atomically; with <paramref name="withPack"/>, first builds and publishes its working-set pack (the plan's
    /// pages back to back, read through <paramref name="tiers"/>); <paramref name="progress"/> then counts the
    /// bytes of the snapshot chunks it reads.</summary>
    public async Task<AttachResult> AttachPlanAsync(string name, string? tenant, PrefetchPlan plan, bool withPack,
        TierSettings tiers, IByteProgress? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(plan);
        // A tenant's plan steers what is installed in its VMs: only that tenant may replace it.
        SnapshotChain.CheckWrite(await Catalog.LoadAsync(name, ct), tenant);
        Func<Task<BuildResult>>? buildPack = null;
        ChunkReader? reader = null;
        try
        {
            if (withPack)
            {
                var chain = await OpenChainAsync(name, tenant, ct);
                reader = await OpenReaderAsync(tiers, ct);
                var packReader = reader;
                progress?.Begin(WorkingSetPack.SourceBytes(plan));
                buildPack = () => WorkingSetPack.BuildAsync(Blobs, Keys, chain, packReader, plan, progress, ct);
            }
            var bound = await new PlanStore(Blobs, Keys).AttachAsync(name, plan, buildPack, ct);
            return new AttachResult(name, plan.Pages.Length, plan.RunsMerged, bound.PackName);
        }
        finally
        {
            reader?.Dispose();
        }
    }
}

/// <summary>What `log attach` did: the snapshot, the plan's pages and merged runs, and its pack (null: none).</summary>
public sealed record AttachResult(string Attached, int Pages, int Runs, string? Pack);
