using Snapshots.Prefetch;

namespace Snapshots.ChunkFs.Uffd;

public sealed record UffdHandlerOptions
{
    /// <summary>A demand fault not served within this is a failed VM: it is killed, never left hanging.</summary>
    public TimeSpan FaultDeadline { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Record first touches (demand faults) into an access log.</summary>
    public bool Record { get; init; }
    public PrefetchPlan? Plan { get; init; }
    /// <summary>
    /// The plan's working-set pack, in memory tier form; null: prefetch from the snapshot's own chunks.
    /// </summary>
    public Memory.ResidentChunks? Pack { get; init; }
    public PrefetchOptions Prefetch { get; init; } = new();
    /// <summary>
    /// Pages per UFFDIO_COPY when installing prefetched runs; demand faults are checked between runs.
    /// </summary>
    public int InstallBatchPages { get; init; } = 32;
    /// <summary>
    /// Pages a demand fault installs from its chunk: the faulting page and the ones after it (1: none).
    /// </summary>
    public int FaultAroundPages { get; init; } = 4;
    public Action<string> Log { get; init; } = _ => { };
    /// <summary>Told each demand fault's service time; on the fault thread. Null: none.</summary>
    public IFaultObserver? FaultObserver { get; init; }
}
