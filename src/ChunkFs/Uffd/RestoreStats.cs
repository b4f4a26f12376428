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
    public double FaultP50Us { get; init; }
    public double FaultP99Us { get; init; }
    public double FaultMaxUs { get; init; }
    /// <summary>
    /// The sum of the handler's service times: how long vCPUs waited on it, the kernel's round trips aside.
    /// </summary>
    public double FaultServiceMs { get; init; }
    public long ChunksLoaded { get; init; }
    public long ChunkEvictions { get; init; }
    public double Seconds { get; init; }
    /// <summary>How the VM's run ended: "exited", or "failed: REASON" when the handler killed it.</summary>
    public required string Outcome { get; init; }
    public bool Failed => Outcome.StartsWith("failed", StringComparison.Ordinal);
    public IReadOnlyList<object> Tiers { get; init; } = [];
    public string? Prefetch { get; init; }
}
