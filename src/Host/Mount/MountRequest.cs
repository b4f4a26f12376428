using Snapshots.Host.Restore;

namespace Snapshots.Host.Mount;

/// <summary>One ChunkFs mount: which snapshots become files of which directory, the tiers, the memory tier per
/// snapshot, prefetch, and the FUSE settings. Sizes in bytes; times wall-clock.</summary>
public sealed record MountRequest
{
    /// <summary>The directory the files appear in (DIR/NAME for each name).</summary>
    public required string MountPoint { get; init; }

    /// <summary>The snapshots to expose, each as a file of its name.</summary>
    public required IReadOnlyList<string> Names { get; init; }

    public string? Tenant { get; init; }
    public TierSettings Tiers { get; init; } = TierSettings.OriginOnly;

    /// <summary>Decrypted chunks kept in memory, per snapshot.</summary>
    public long MemoryBudgetBytes { get; init; } = 2L << 30;

    public int BufferReserve { get; init; } = RestoreRequest.DefaultBufferReserve;

    /// <summary>Auto: push each snapshot's attached plan into the page cache from the mount on; Off: on demand
    /// only. (A plan file is for one snapshot: <see cref="PlanPath"/> with one name.)</summary>
    public PrefetchMode Prefetch { get; init; } = PrefetchMode.Auto;
    public string? PlanPath { get; init; }

    /// <summary>The kernel's read-ahead; null: 0 when recording (page-exact logs), 128 KiB otherwise.</summary>
    public int? ReadAheadBytes { get; init; }

    public int MaxReadBytes { get; init; } = 1 << 20;
    public int Threads { get; init; } = 4;

    /// <summary>A read not served within this gets EIO.</summary>
    public TimeSpan ReadDeadline { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The files' owner (the VMM's user); null: the mounting user.</summary>
    public uint? OwnerUid { get; init; }
    public uint? OwnerGid { get; init; }

    /// <summary>Where to write each file's access log on exit; null: not recorded. With several names, each
    /// log goes to RECORD.NAME.</summary>
    public string? RecordPath { get; init; }

    /// <summary>Called once the mount is ready (files can be opened).</summary>
    public Action<string>? Ready { get; init; }
}
