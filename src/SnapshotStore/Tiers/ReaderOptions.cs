using Snapshots.Store.Chunks;

namespace Snapshots.Store.Tiers;

/// <summary>Per-tier limits for a <see cref="ChunkReader"/>: one entry per cache, nearest first, then the origin.</summary>
public sealed record ReaderOptions(IReadOnlyList<TierOptions> Caches, TierOptions Origin)
{
    /// <summary>Disk-like limits for every cache (a reader built without options).</summary>
    public static ReaderOptions For(int caches)
    {
        var list = new TierOptions[caches];
        Array.Fill(list, TierOptions.LocalDisk);
        return new ReaderOptions(list, TierOptions.Origin);
    }
}
