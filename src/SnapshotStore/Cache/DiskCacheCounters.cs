namespace Snapshots.Store.Cache;

/// <summary>
/// A point-in-time view of a <see cref="DiskChunkCache"/>, for metrics (<see cref="DiskChunkCache.Counters"/>).
/// Gauges are now; counters count since the cache was opened in this process. Bytes are chunk file lengths.
/// </summary>
/// <param name="OccupancyBytes">Gauge: bytes of the entries in the index.</param>
/// <param name="Entries">Gauge: entries in the index.</param>
/// <param name="BudgetBytes">The budget (<see cref="DiskCacheOptions.BudgetBytes"/>).</param>
/// <param name="HighWatermarkBytes">Occupancy past which a batch of evictions starts.</param>
/// <param name="LowWatermarkBytes">Occupancy a batch of evictions goes down to.</param>
/// <param name="ProtectedChunks">Gauge: distinct chunk names under at least one live protection lease.</param>
/// <param name="Evictions">Entries evicted (watermarks or a full disk), not counting corrupt ones.</param>
/// <param name="EvictedBytes">Bytes of those entries.</param>
/// <param name="FullDiskEvents">Writes that found the disk full: ENOSPC or EDQUOT, or free space under the
/// floor before writing. Each makes room by evicting a batch.</param>
/// <param name="FullDiskSkips">Fills dropped because the disk was still full after making room.</param>
/// <param name="CorruptDropped">Entries deleted as corrupt: wrong size, wrong hash, or not a regular file (at
/// open, at a rebuild of the index, or at read).</param>
/// <param name="ProtectedSkips">Times eviction passed over an entry because a lease protected it.</param>
/// <param name="ProtectedOverruns">Eviction passes that ended above the high watermark because what was left
/// was protected: the cache went over its target rather than evict a chunk a restore is serving.</param>
public sealed record DiskCacheCounters(
    long OccupancyBytes,
    int Entries,
    long BudgetBytes,
    long HighWatermarkBytes,
    long LowWatermarkBytes,
    int ProtectedChunks,
    long Evictions,
    long EvictedBytes,
    long FullDiskEvents,
    long FullDiskSkips,
    long CorruptDropped,
    long ProtectedSkips,
    long ProtectedOverruns);
