namespace Snapshots.ChunkFs.Memory;

/// <summary>A host's memory tier at one moment, for metrics (<see cref="HostMemory.Counters"/>).</summary>
/// <param name="BudgetBytes">Plaintext allowed in memory, bytes.</param>
/// <param name="ResidentBytes">Plaintext in memory now, bytes.</param>
/// <param name="Loads">Chunks made resident so far, fetched or copied.</param>
/// <param name="Evictions">Chunks evicted so far to stay within the budget.</param>
/// <param name="SharedHits">Loads served by copying a chunk another instance had resident.</param>
/// <param name="Restores">Leases held now: restores attached.</param>
/// <param name="Instances">Distinct memory tiers alive now (restores of one chain share one).</param>
public readonly record struct HostMemoryCounters(long BudgetBytes, long ResidentBytes, long Loads, long Evictions,
    long SharedHits, int Restores, int Instances);
