namespace Snapshots.Prefetch;

/// <summary>What the scheduler drives: a loader that can bring a chunk into memory and install pages from it.</summary>
public interface IPrefetchTarget
{
    /// <summary>
    /// Brings the unit's chunk into memory through the tiers (shared with demand: one fetch per chunk).
    /// </summary>
    ValueTask LoadChunkAsync(PrefetchUnit unit, CancellationToken ct);

    /// <summary>The unit's chunk is in memory: install its pages. Must not block: the loader installs them on its
    /// own thread between demand faults, so demand always goes first.</summary>
    void ChunkReady(PrefetchUnit unit);
}
