using Snapshots.ChunkFs.Uffd;

namespace Snapshots.Host.Restore;

/// <summary>Which prefetch plan a restore follows.</summary>
public enum PrefetchMode
{
    /// <summary>The snapshot's attached plan when it has a valid one; on demand otherwise, silently.</summary>
    Auto,
    /// <summary>The attached plan; a warning when there is none or it does not fit, then on demand.</summary>
    Attached,
    /// <summary>The plan file at <see cref="RestoreRequest.PlanPath"/>.</summary>
    File,
    /// <summary>No plan: every page on demand.</summary>
    Off,
}

/// <summary>One restore: which snapshot, where the VMM connects, the tiers, the memory tier's budget, the plan,
/// and the handler's settings. Times are wall-clock; sizes in bytes.</summary>
public sealed record RestoreRequest
{
    public required string Name { get; init; }
    public string? Tenant { get; init; }

    /// <summary>The Unix socket the VMM connects to (Firecracker's mem_backend backend_path).</summary>
    public required string SocketPath { get; init; }

    public TierSettings Tiers { get; init; } = TierSettings.OriginOnly;

    /// <summary>Decrypted chunks kept in memory.</summary>
    public long MemoryBudgetBytes { get; init; } = 2L << 30;

    /// <summary>Chunk buffers (512 KiB each) populated ahead of loads, so that decrypting a chunk takes no page
    /// fault; 0: each load faults its buffer's pages in (<see cref="ChunkFs.Memory.ChunkBufferPool"/>).</summary>
    public int BufferReserve { get; init; } = DefaultBufferReserve;

    /// <summary>128 buffers: 64 MiB, populated in ~20 ms in the background while the VMM connects.</summary>
    public const int DefaultBufferReserve = ChunkFs.Memory.ResidentChunks.DefaultReserve;

    public PrefetchMode Prefetch { get; init; } = PrefetchMode.Auto;

    /// <summary>The plan file for <see cref="PrefetchMode.File"/>.</summary>
    public string? PlanPath { get; init; }

    /// <summary>A demand fault not served within this fails the VM (it is killed, never left hanging).</summary>
    public TimeSpan FaultDeadline { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Chunk fetches in flight for prefetch.</summary>
    public int PrefetchConcurrency { get; init; } = 2;

    /// <summary>Prefetch bandwidth cap in bytes per second; 0: none.</summary>
    public long PrefetchBandwidth { get; init; }

    /// <summary>Pages a demand fault installs from its chunk: the faulting page and those after it (1-128).</summary>
    public int FaultAroundPages { get; init; } = 4;

    /// <summary>Load every chunk into memory before the VMM connects (measures the handler alone).</summary>
    public bool Preload { get; init; }

    /// <summary>How long to wait for the VMM to connect; null: forever.</summary>
    public TimeSpan? AcceptTimeout { get; init; }

    /// <summary>The uid whose VMM may connect (SO_PEERCRED) and who owns the socket; null: this process's uid.
    /// </summary>
    public uint? VmmUid { get; init; }

    /// <summary>Told each demand fault's service time (a daemon's latency histogram); called on the fault thread,
    /// so it must be quick and allocation-free. Null: none.</summary>
    public IFaultObserver? FaultObserver { get; init; }

    /// <summary>Called once a VMM has connected and its handshake was accepted, before its first fault is served
    /// (a daemon persists its restore record here). Null: none.</summary>
    public Action<UffdSession>? VmmConnected { get; init; }

    /// <summary>The file keeping which pages the guest freed (UFFD_EVENT_REMOVE), so that a handler taking the VM
    /// back after a restart serves them as zeros (<see cref="UffdHandlerOptions.RemovedPagesPath"/>); null: in
    /// memory only.</summary>
    public string? RemovedPagesPath { get; init; }

    /// <summary>Where to write the first-touch page-access log of this restore; null: not recorded.</summary>
    public string? RecordPath { get; init; }

    /// <summary>The reader, memory budget and prefetch bandwidth shared with the process's other restores; null:
    /// this restore opens its own (with <see cref="Tiers"/>, <see cref="MemoryBudgetBytes"/> and
    /// <see cref="BufferReserve"/>, which are then ignored when set).</summary>
    public RestoreResources? Shared { get; init; }
}
