using Snapshots.ChunkFs.Memory;
using Snapshots.Prefetch;
using Snapshots.Store;
using Snapshots.Store.Files;
using Snapshots.Store.Layers;

namespace Snapshots.Host.Restore;

/// <summary>Which prefetch plan and working-set pack a loader follows (the userfaultfd restore and the ChunkFs
/// mount alike).</summary>
internal static class PlanChoice
{
    /// <summary>The plan to follow. A plan is a speed-up: a missing, damaged, foreign or unreadable one means a
    /// warning and serving on demand, never a refused or hung restore.</summary>
    public static async Task<PrefetchPlan?> ChooseAsync(SnapshotHost host, SnapshotChain chain,
        PrefetchMode mode, string? planPath, CancellationToken ct)
    {
        PrefetchPlan? plan;
        try
        {
            switch (mode)
            {
                case PrefetchMode.Off:
                    return null;
                case PrefetchMode.File:
                    if (planPath is null
                        || FileKinds.Of(planPath, followLinks: true) != FileKind.Regular)
                    {
                        host.Log($"warning: prefetch plan {planPath} is not a readable regular file; "
                            + "serving on demand");
                        return null;
                    }
                    plan = LoadPlanFile(host, chain, planPath);
                    break;
                default:
                    var (attached, why) = await new PlanStore(host.Blobs, host.Keys).TryLoadAsync(
                        chain.Name, chain.Top, ct);
                    if (attached is null && mode == PrefetchMode.Attached)
                        host.Log($"warning: {why}; serving on demand");
                    plan = attached;
                    break;
            }
        }
        catch (Exception ex) when (ex is SnapshotException or IOException or UnauthorizedAccessException)
        {
            host.Log($"warning: the prefetch plan is unusable ({ex.Message}); serving on demand");
            return null;
        }
        if (plan is not null && plan.ImageSize != chain.ImageSize)
        {
            host.Log($"warning: the prefetch plan is for a {plan.ImageSize}-byte image; '{chain.Name}' is "
                + $"{chain.ImageSize} bytes; serving on demand");
            return null;
        }
        return plan;
    }

    /// <summary>A plan given as a file. A sealed one (copied from a store) is opened like a stored plan; an
    /// unsealed one (from `log merge`) is not authenticated, so only its page order is used: pages are prefetched
    /// from their own chunks, never placed from a working-set pack it names.</summary>
    private static PrefetchPlan LoadPlanFile(SnapshotHost host, SnapshotChain chain, string path)
    {
        var bytes = InputFile.ReadAll(path, "plan", PrefetchPlan.MaxBytes + 64); // + the seal
        if (PlanSeal.IsSealed(bytes)) return PlanSeal.Open(bytes, chain.Top, host.Keys, path);
        var plan = PrefetchPlan.Parse(bytes, path);
        if (plan.PackName is null) return plan;
        host.Log($"warning: plan file {path} is not sealed: its working-set pack is not used");
        return plan.BoundTo(plan.ManifestHash);
    }

    /// <summary>The working-set pack the plan was made with, as a memory tier; null (with a warning when the plan
    /// names one that is missing, unreadable or not the one it was made with) to prefetch from the snapshot's own
    /// chunks.</summary>
    public static async Task<ResidentChunks?> OpenPackAsync(SnapshotHost host, string? tenant, PrefetchPlan? plan,
        Func<SnapshotChain, ResidentChunks> open, CancellationToken ct)
    {
        if (plan?.PackName is not { } packName) return null;
        SnapshotChain packChain;
        try
        {
            packChain = await host.OpenChainAsync(packName, tenant, ct);
        }
        catch (SnapshotException ex)
        {
            host.Log($"warning: working-set pack '{packName}' is unusable ({ex.Message}); prefetching snapshot "
                + "chunks");
            return null;
        }
        if (packChain.Top.Hash.AsSpan().SequenceEqual(plan.PackHash))
            return open(packChain);
        host.Log($"warning: working-set pack '{packName}' is not the one the plan was made with; prefetching "
            + "snapshot chunks");
        return null;
    }
}
