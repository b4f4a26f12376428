namespace Snapshots.Snapd.Restores;

/// <summary>How a restore serves guest memory.</summary>
public enum RestoreMode
{
    /// <summary>userfaultfd: the VMM connects to a Unix socket and hands over its uffd (Firecracker's Uffd
    /// backend).</summary>
    Uffd,
    /// <summary>A file on a ChunkFs (FUSE) mount: the VMM maps it (Firecracker's File backend, QEMU's
    /// memory-backend-file).</summary>
    File,
}

/// <summary>A create-restore request as the API received it, checked (<see cref="Api.RestoreRequestBody"/>).
/// </summary>
public sealed record RestoreSpec
{
    public required string Snapshot { get; init; }
    public string? Tenant { get; init; }
    public RestoreMode Mode { get; init; } = RestoreMode.Uffd;
    /// <summary>"auto" (the attached plan when valid), "off".</summary>
    public bool Prefetch { get; init; } = true;
    /// <summary>The uid whose VMM may connect (uffd) or who owns the file (file); null: the daemon's.</summary>
    public uint? VmmUid { get; init; }
    /// <summary>This restore's fault deadline; null: the daemon's.</summary>
    public TimeSpan? FaultDeadline { get; init; }
    /// <summary>Record this restore's page-access log regardless of the record share.</summary>
    public bool Record { get; init; }
}

/// <summary>Where a restore is in its life.</summary>
public enum RestoreState
{
    /// <summary>Ready: the socket listens (uffd) or the file is mounted (file); no VMM yet.</summary>
    Ready,
    /// <summary>A VMM connected; its faults are being served.</summary>
    Serving,
    /// <summary>The VMM exited (uffd), or the file was released (file).</summary>
    Exited,
    /// <summary>The VM was failed (killed: a fault past its deadline, a refused handshake) or never connected.
    /// </summary>
    Failed,
    /// <summary>Handed over: the daemon stopped serving it without failing it (a drain that ran out of time); the
    /// next daemon takes it back from its record.</summary>
    Detached,
}
