namespace Snapshots.ChunkFs.Uffd;

/// <summary>A serving handler's counters at one moment (<see cref="UffdHandler.Progress"/>): demand faults, pages
/// installed on demand (copied, zero), pages prefetched of the plan's, faults that waited for their chunk (all so
/// far, and parked now), pages the guest freed, and the VMM's pid.</summary>
public sealed record HandlerProgress(
    long Faults, long PagesCopied, long ZeroPages, long PrefetchedPages, long PlannedPages, long ParkedFaults,
    int ParkedNow, long RemovedPages, int VmmPid);
