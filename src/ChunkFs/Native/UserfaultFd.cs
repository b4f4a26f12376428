using static Snapshots.ChunkFs.Native.LibC;

namespace Snapshots.ChunkFs.Native;

/// <summary>The outcome of a UFFDIO_COPY or UFFDIO_ZEROPAGE.</summary>
internal enum InstallStatus
{
    Done,
    /// <summary>Some page in the range is already present (prefetched, or raced): not an error.</summary>
    Exists,
    /// <summary>A REMOVE (or other mapping change) is pending: read events, then retry.</summary>
    Again,
    /// <summary>The VMM's memory is gone: it exited.</summary>
    Gone,
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
        return Classify(rc, errno);
    }

    public InstallStatus ZeroPage(ulong start, ulong len, out long zeroed, out int errno)
    {
        var z = new UffdioZeropage { Range = new UffdioRange { Start = start, Len = len } };
        // SAFETY: z lives on this stack frame for the call.
        int rc = ioctl(Fd, UffdAbi.UFFDIO_ZEROPAGE, &z);
        errno = rc < 0 ? Errno : 0;
        zeroed = z.Zeropage > 0 ? z.Zeropage : 0;
        return Classify(rc, errno);
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

    private static InstallStatus Classify(int rc, int errno) => rc >= 0 ? InstallStatus.Done : errno switch
    {
        EEXIST => InstallStatus.Exists,
        EAGAIN => InstallStatus.Again,
        ESRCH or ENOENT => InstallStatus.Gone,
        _ => InstallStatus.Failed,
    };

    public void Dispose()
    {
        if (Fd >= 0) { close(Fd); Fd = -1; }
    }
}
