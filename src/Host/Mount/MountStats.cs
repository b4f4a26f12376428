using Snapshots.ChunkFs.Fuse;
using Snapshots.Store.Chunks;

namespace Snapshots.Host.Mount;

/// <summary>What a ChunkFs mount served, from mount to unmount.</summary>
public sealed record MountStats
{
    public required string MountPoint { get; init; }
    public int ReadAheadBytes { get; init; }
    public double Seconds { get; init; }
    public required IReadOnlyList<ChunkFsFileStats> Files { get; init; }
    /// <summary>What each tier served (all files share the tiers).</summary>
    public IReadOnlyList<TierSummary> Tiers { get; init; } = [];
}
