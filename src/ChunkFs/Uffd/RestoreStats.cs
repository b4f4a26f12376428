using Snapshots.Store.Chunks;

namespace Snapshots.ChunkFs.Uffd;

/// <summary>What one restore did. Fault latency is the handler's service time per demand fault (message read to
/// page installed); the VM sees that plus the kernel's fault round trip.</summary>
public sealed record RestoreStats
{
    public required string Snapshot { get; init; }
    public required int VmmPid { get; init; }
    public required int Regions { get; init; }
    public long Faults { get; init; }
    public long PagesCopied { get; init; }
    public long ZeroPages { get; init; }
    public long PrefetchedPages { get; init; }
    public long PlannedPages { get; init; }
    public long ExistingPages { get; init; }
    public long RemoveEvents { get; init; }
    public long RemovedPages { get; init; }
    /// <summary>Faults on pages the VMM had mapped other memory over by the time they were served.</summary>
    public long UnregisteredFaults { get; init; }
    /// <summary>Demand faults that waited for their chunk to be fetched while the handler served others.</summary>
    public long ParkedFaults { get; init; }
    /// <summary>The handler's service time per demand fault, in seconds: p50, p99, max.</summary>
    public Percentiles FaultLatencySeconds { get; init; } = new(0, 0);
    /// <summary>
    /// The sum of the handler's service times, in seconds: how long vCPUs waited on it, the kernel's round trips
    /// aside.
    /// </summary>
    public double FaultServiceSeconds { get; init; }
    public long ChunksLoaded { get; init; }
    public long ChunkEvictions { get; init; }
    /// <summary>A snapshot chunk's load, from its fetch's start to resident (tiers, verification, decryption), p50
    /// and p99 over the last 4,096 loads, in seconds; and its verification and decryption alone.</summary>
    public Percentiles ChunkLoadLatencySeconds { get; init; } = new(0, 0);
    public Percentiles ChunkDecryptLatencySeconds { get; init; } = new(0, 0);
    /// <summary>Chunk loads that found no populated buffer ready and paid a page fault per 4 KiB page of theirs
    /// (<c>--buffer-reserve</c>).</summary>
    public long ColdBuffers { get; init; }
    public double Seconds { get; init; }
    /// <summary>How long the fault-handling thread was ready to run but waiting for a CPU during the restore
    /// (/proc/thread-self/schedstat): faults the VM saw wait longer than the handler's service time because the
    /// host's CPUs were busy, not because the handler was; 0 where the kernel does not report it. Seconds.</summary>
    public double HandlerRunDelaySeconds { get; init; }
    /// <summary>How the VM's run ended: "exited" (the VMM went away by itself), or "failed" when the handler
    /// killed it; then <see cref="Reason"/> says why (docs/errors.md); or "detached": the handler stopped
    /// (<see cref="UffdHandler.Detach"/>) and left the VM running for another handler to take back.</summary>
    public required string Outcome { get; init; }
    /// <summary>Why the VM was failed, naming the chunk, fault or syscall; null when it exited.</summary>
    public string? Reason { get; init; }
    public bool Failed => Outcome == FailedOutcome;
    /// <summary>What each tier served during the restore (set by the host, which owns the reader).</summary>
    public IReadOnlyList<TierSummary> Tiers { get; init; } = [];

    public const string ExitedOutcome = "exited", FailedOutcome = "failed", DetachedOutcome = "detached";
    public string? Prefetch { get; init; }
}
