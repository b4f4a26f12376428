using Snapshots.ChunkFs.Native;
using static Snapshots.ChunkFs.Native.LibC;

namespace Snapshots.ChunkFs.Uffd;

/// <summary>What a VMM handed over: its uffd, its regions and its pid (SO_PEERCRED); and what a handler needs to
/// take the uffd back from the VMM after this one is gone (<see cref="TakeBack"/>).</summary>
public sealed class UffdSession(GuestRegion[] regions, int vmmPid) : IDisposable
{
    internal UserfaultFd Uffd { get; init; } = null!;
    public GuestRegion[] Regions { get; } = regions;
    public int VmmPid { get; } = vmmPid;

    /// <summary>The number of this same uffd in the VMM's own descriptor table (found at accept: the descriptor of
    /// the VMM that kcmp says is the same open file as ours), or -1 when the VMM kept no copy (it closed it after
    /// the handshake) or it could not be found: such a VM cannot be taken back.</summary>
    public int VmmUffdFd { get; init; } = -1;

    /// <summary>When the VMM started, in clock ticks since boot (/proc/PID/stat field 22; 0: unknown): a pid with
    /// another start time is another process, not this VMM.</summary>
    public ulong VmmStartTime { get; init; }

    /// <summary>Kills the VMM (SIGKILL by its SO_PEERCRED pid): once it has handed over its memory, a VMM that
    /// nobody will serve must fail loudly, never hang on a fault. Returns false when there is nobody to kill (the
    /// peer was this process, or pid 0/1).</summary>
    public bool KillVmm() => Kill(VmmPid);

    internal static bool Kill(int pid) =>
        pid > 1 && pid != Environment.ProcessId && kill(pid, SIGKILL) == 0;

    /// <summary>
    /// Takes a running VMM's uffd back, from the VMM itself, after the handler it was handed to is gone (a daemon
    /// restarted after SIGKILL, or another one draining it): the VMM's own copy, descriptor
    /// <paramref name="vmmUffdFd"/> of <paramref name="vmmPid"/>, duplicated into this process with pidfd_getfd.
    /// The arguments are the <see cref="VmmPid"/>, <see cref="VmmStartTime"/>, <see cref="VmmUffdFd"/> and
    /// <see cref="Regions"/> of the session the VMM first handed over, as the caller saved them.
    ///
    /// Every thread of the VMM waiting on a fault is then woken (UFFDIO_WAKE over each region): a fault the old
    /// handler read but never served is asked again, and the new handler reads it. Pages already installed stay
    /// (installing them again answers EEXIST). Pages the guest freed are known only from the old handler's
    /// <see cref="UffdHandlerOptions.RemovedPagesPath"/>: give the new handler the same file.
    ///
    /// Needs the right to ptrace the VMM (root, CAP_SYS_PTRACE, or the same uid where Yama's ptrace_scope is 0).
    /// Never kills anything: on a refusal the caller decides what becomes of the VM.
    /// </summary>
    /// <exception cref="TakeBackRefusedException">The VMM exited, its pid now names another process, the VMM
    /// has no such descriptor or it is not a userfaultfd, or this process may not take it
    /// (<see cref="TakeBackRefusedException.Reason"/>); the message names the pid and why.</exception>
    public static UffdSession TakeBack(int vmmPid, ulong vmmStartTime, int vmmUffdFd, GuestRegion[] regions)
    {
        ArgumentNullException.ThrowIfNull(regions);
        if (vmmPid <= 1 || vmmPid == Environment.ProcessId)
            throw new ArgumentOutOfRangeException(nameof(vmmPid), vmmPid, "not a VMM's pid");
        if (vmmUffdFd < 0)
        {
            throw Refuse(vmmPid, TakeBackFailure.NoDescriptor,
                "no descriptor of its uffd was recorded (it kept no copy after the handshake)");
        }
        int pidfd = PidfdOpen(vmmPid);
        if (pidfd < 0)
        {
            int errno = Errno;
            throw errno == ESRCH ? Refuse(vmmPid, TakeBackFailure.Exited, "it has exited")
                : Refuse(vmmPid, TakeBackFailure.Other, $"pidfd_open failed: {StrError(errno)}");
        }
        try
        {
            // Read after pidfd_open: the pidfd then names the process whose start time this is, or one that has
            // exited since (pidfd_getfd says ESRCH); never a later process given the same pid.
            switch (VmmProcess.StartTime(vmmPid))
            {
                case null:
                    throw Refuse(vmmPid, TakeBackFailure.Exited, "it has exited");
                case var started when started != vmmStartTime:
                    throw Refuse(vmmPid, TakeBackFailure.PidReused,
                        $"the pid was reused: the process now behind it started at tick {started}, the VMM at "
                        + $"{vmmStartTime}; the VM is gone");
            }
            var uffd = new UserfaultFd(GetFd(pidfd, vmmPid, vmmUffdFd));
            try
            {
                if (VmmProcess.FdTarget(Environment.ProcessId, uffd.Fd) is var target
                    && target != HandshakeListener.UffdLinkTarget)
                {
                    throw Refuse(vmmPid, TakeBackFailure.NotUserfaultFd,
                        $"its descriptor {vmmUffdFd} is not a userfaultfd ({target ?? "unreadable"})");
                }
                // A fault's message is delivered once: one the old handler read and never served would leave its vCPU
                // asleep for good. Woken, it faults again and queues a new message (TakeBackTests).
                foreach (var r in regions) uffd.Wake(r.BaseHostVirtAddr, r.Size);
                return new UffdSession(regions, vmmPid)
                {
                    Uffd = uffd, VmmUffdFd = vmmUffdFd, VmmStartTime = vmmStartTime,
                };
            }
            catch
            {
                uffd.Dispose();
                throw;
            }
        }
        finally
        {
            close(pidfd);
        }
    }

    private static int GetFd(int pidfd, int vmmPid, int vmmUffdFd)
    {
        int fd = PidfdGetfd(pidfd, vmmUffdFd);
        if (fd >= 0) return fd;
        int errno = Errno;
        throw errno switch
        {
            ESRCH => Refuse(vmmPid, TakeBackFailure.Exited, "it has exited"),
            EBADF => Refuse(vmmPid, TakeBackFailure.NoDescriptor,
                $"it has no descriptor {vmmUffdFd} (it closed its copy of the uffd)"),
            EPERM or EACCES => Refuse(vmmPid, TakeBackFailure.NotPermitted,
                $"pidfd_getfd was refused ({StrError(errno)}): taking a descriptor from another process needs "
                    + "root or CAP_SYS_PTRACE"),
            _ => Refuse(vmmPid, TakeBackFailure.Other, $"pidfd_getfd failed: {StrError(errno)}"),
        };
    }

    private static TakeBackRefusedException Refuse(int pid, TakeBackFailure reason, string why) =>
        new($"cannot take back the uffd of VMM pid {pid}: {why}", pid, reason);

    public void Dispose() => Uffd.Dispose();
}
