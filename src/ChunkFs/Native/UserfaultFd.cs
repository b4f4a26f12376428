using static Snapshots.ChunkFs.Native.LibC;

namespace Snapshots.ChunkFs.Native;

/// <summary>The outcome of a UFFDIO_COPY or UFFDIO_ZEROPAGE (kernel mm/userfaultfd.c; docs/loader.md has the
/// table of what the handler does with each).</summary>
internal enum InstallStatus
{
    /// <summary>Every page landed.</summary>
    Done,
    /// <summary>Some pages landed (the count says how many, from the first), then the next one failed: the kernel
    /// returns -EAGAIN with a positive count. The pages after them were not installed.</summary>
    Partial,
    /// <summary>EEXIST: the first page is present already (prefetched, or raced): not an error.</summary>
    Exists,
    /// <summary>EAGAIN with nothing copied: a non-cooperative event (REMOVE) is pending: read events, then
    /// retry.</summary>
    Again,
    /// <summary>ENOENT: the range is not inside one vma registered with this uffd (the VMM mapped fresh memory
    /// over part of it, or it crosses a region's end).</summary>
    NotRegistered,
    /// <summary>ESRCH: the VMM's address space is gone. Whether the VMM exited is learnt from its pidfd.</summary>
    MemoryGone,
    /// <summary>ENOMEM: the kernel could not allocate the page: transient, retried within the fault's
    /// deadline.</summary>
    NoMemory,
    /// <summary>EFAULT, EINVAL or anything else: a bug on this side (an unreadable source, a bad range).</summary>
    Failed,
}

/// <summary>
/// A userfaultfd received from a VMM. Owns the descriptor; exposes the few ioctls the handler needs with
/// no allocation per call. Addresses are the VMM's, never dereferenced here.
/// </summary>
internal sealed unsafe class UserfaultFd(int fd) : IDisposable
{
    public int Fd { get; private set; } = fd;

    /// <summary>Copies <paramref name="len"/> bytes from <paramref name="src"/> (our memory) to the guest at
    /// <paramref name="dst"/>; <paramref name="copied"/> is what landed before any error.</summary>
    public InstallStatus Copy(ulong dst, nint src, ulong len, bool wake, out long copied, out int errno)
    {
        var c = new UffdioCopy
        {
            Dst = dst, Src = (ulong)src, Len = len, Mode = wake ? 0 : UffdAbi.UFFDIO_COPY_MODE_DONTWAKE,
        };
        // SAFETY: c lives on this stack frame for the call; the kernel reads src..src+len from our address space,
        // which the caller keeps pinned (ResidentChunks pin) until this returns.
        int rc = ioctl(Fd, UffdAbi.UFFDIO_COPY, &c);
        errno = rc < 0 ? Errno : 0;
        copied = c.Copy > 0 ? c.Copy : 0;
        return Classify(rc, errno, copied);
    }

    public InstallStatus ZeroPage(ulong start, ulong len, out long zeroed, out int errno)
    {
        var z = new UffdioZeropage { Range = new UffdioRange { Start = start, Len = len } };
        // SAFETY: z lives on this stack frame for the call.
        int rc = ioctl(Fd, UffdAbi.UFFDIO_ZEROPAGE, &z);
        errno = rc < 0 ? Errno : 0;
        zeroed = z.Zeropage > 0 ? z.Zeropage : 0;
        return Classify(rc, errno, zeroed);
    }

    /// <summary>Wakes threads waiting on a range whose pages are present (needed after EEXIST).</summary>
    public void Wake(ulong start, ulong len)
    {
        var r = new UffdioRange { Start = start, Len = len };
        // SAFETY: r lives on this stack frame for the call.
        ioctl(Fd, UffdAbi.UFFDIO_WAKE, &r);
    }

    /// <summary>Reads pending events into <paramref name="buffer"/>; 0 when none are pending, -1 on error.</summary>
    public int ReadEvents(Span<UffdMsg> buffer, out int errno)
    {
        nint n;
        fixed (UffdMsg* p = buffer)
        {
            // SAFETY: p points at buffer.Length * 32 writable bytes, pinned by fixed for the call.
            n = read(Fd, p, (nuint)(buffer.Length * sizeof(UffdMsg)));
        }
        errno = n < 0 ? Errno : 0;
        if (n < 0) return errno == EAGAIN ? 0 : -1;
        return (int)(n / sizeof(UffdMsg));
    }

    private static InstallStatus Classify(int rc, int errno, long done) => rc >= 0 ? InstallStatus.Done : errno switch
    {
        // A partial copy: the kernel reports the bytes copied and returns -EAGAIN.
        EAGAIN when done > 0 => InstallStatus.Partial,
        EAGAIN => InstallStatus.Again,
        EEXIST => InstallStatus.Exists,
        ENOENT => InstallStatus.NotRegistered,
        ESRCH => InstallStatus.MemoryGone,
        ENOMEM => InstallStatus.NoMemory,
        _ => InstallStatus.Failed,
    };

    public void Dispose()
    {
        if (Fd >= 0) { close(Fd); Fd = -1; }
    }
}
