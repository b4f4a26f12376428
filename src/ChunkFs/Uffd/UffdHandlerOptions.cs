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
    /// <summary>
    /// A file that keeps which pages the guest freed (UFFD_EVENT_REMOVE), one bit per 4 KiB page of the memory
    /// file, mapped MAP_SHARED: it outlives this process, so a handler that takes the VM back after this one dies
    /// (<see cref="UffdSession.TakeBack"/>) and is given the same path still serves those pages as zeros. Created
    /// and sized on first use, reused as it is when it exists with the right size, refused
    /// (<see cref="Store.InvalidInputException"/>) otherwise, and while another live handler holds it (flock, held
    /// from the handler's construction to the end of its Run or its Dispose). One file per VM, for that VM's life;
    /// delete it once the VMM has exited. Null: the bits live in this process only.
    /// </summary>
    public string? RemovedPagesPath { get; init; }
    public Action<string> Log { get; init; } = _ => { };
    /// <summary>Told each demand fault's service time; on the fault thread. Null: none.</summary>
    public IFaultObserver? FaultObserver { get; init; }
}
