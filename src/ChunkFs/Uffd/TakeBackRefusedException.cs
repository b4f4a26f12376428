using Snapshots.Store;

namespace Snapshots.ChunkFs.Uffd;

/// <summary>Why <see cref="UffdSession.TakeBack"/> could not take a VMM's uffd back.</summary>
public enum TakeBackFailure
{
    /// <summary>The VMM has exited: the VM is gone.</summary>
    Exited,
    /// <summary>The pid now names another process (a different start time): the VMM exited and the pid was
    /// reused. The VM is gone; that process must be left alone.</summary>
    PidReused,
    /// <summary>The VMM has no such descriptor: it closed its copy of the uffd (or none was recorded).</summary>
    NoDescriptor,
    /// <summary>The descriptor is not a userfaultfd (the VMM closed its copy and the number was reused).</summary>
    NotUserfaultFd,
    /// <summary>This process may not take descriptors from the VMM: it needs root or CAP_SYS_PTRACE.</summary>
    NotPermitted,
    /// <summary>Anything else (out of descriptors, a kernel without pidfd_getfd): the message names the
    /// errno.</summary>
    Other,
}

/// <summary>A VMM's uffd could not be taken back (<see cref="UffdSession.TakeBack"/>); nothing was killed. The
/// message names the pid and the reason; <see cref="Reason"/> says it for code.</summary>
public sealed class TakeBackRefusedException(string message, int vmmPid, TakeBackFailure reason)
    : SnapshotException(message)
{
    public override string Kind => "take-back-refused";
    public int VmmPid { get; } = vmmPid;
    public TakeBackFailure Reason { get; } = reason;
}
