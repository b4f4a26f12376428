using System.Runtime.InteropServices;

namespace Snapshots.ChunkFs.Native;

/// <summary>Every syscall the loaders make, in one place. Wrappers elsewhere keep pointers out of the rest of
/// the code; errno comes back through Marshal.GetLastPInvokeError. The constants are typed by hand (x86_64)
/// and checked against the kernel and libc headers by native/abi-probe (UffdAbiTests).</summary>
internal static unsafe partial class LibC
{
    public const int EAGAIN = 11, EEXIST = 17, ESRCH = 3, ENOENT = 2, EINTR = 4, EINVAL = 22, ENOMEM = 12;
    public const short POLLIN = 1, POLLERR = 8, POLLHUP = 16;
    public const int SOL_SOCKET = 1, SCM_RIGHTS = 1, SO_PEERCRED = 17;
    public const int MSG_CMSG_CLOEXEC = 0x40000000, MSG_DONTWAIT = 0x40;

    /// <summary>A control message carrying one descriptor: its cmsg_len (CMSG_LEN(sizeof(int))) and the buffer
    /// it needs (CMSG_SPACE(sizeof(int))). The descriptor itself starts at sizeof(CmsgHdr).</summary>
    public const int CMSG_LEN_FD = 20, CMSG_SPACE_FD = 24;

    public const int SIGKILL = 9;
    public const int EFD_CLOEXEC = 0x80000, EFD_NONBLOCK = 0x800;
    public const int O_CLOEXEC = 0x80000, O_NONBLOCK = 0x800;
    public const long SYS_userfaultfd = 323, SYS_pidfd_open = 434, SYS_pidfd_getfd = 438, SYS_kcmp = 312;
    /// <summary>kcmp's type for "do these two descriptors refer to the same open file description".</summary>
    public const int KCMP_FILE = 0;
    public const int EBADF = 9;

    [LibraryImport("libc", SetLastError = true)]
    public static partial int ioctl(int fd, ulong request, void* arg);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint read(int fd, void* buf, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint write(int fd, void* buf, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int poll(PollFd* fds, nuint nfds, int timeoutMs);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int close(int fd);

    public const int EPOLL_CLOEXEC = 0x80000, EPOLL_CTL_ADD = 1;
    public const uint EPOLLIN = 1, EPOLLERR = 8, EPOLLHUP = 16;

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_create1(int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_ctl(int epfd, int op, int fd, EpollEvent* ev);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_wait(int epfd, EpollEvent* events, int maxevents, int timeoutMs);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint recvmsg(int fd, MsgHdr* msg, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint sendmsg(int fd, MsgHdr* msg, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int kill(int pid, int sig);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int eventfd(uint initval, int flags);

    public const int PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20;
    public const int MADV_POPULATE_WRITE = 23;

    [LibraryImport("libc", SetLastError = true)]
    public static partial void* mmap(void* addr, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int munmap(void* addr, nuint length);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int madvise(void* addr, nuint length, int advice);

    public const int PRIO_PROCESS = 0;

    /// <summary>With who = a thread id (gettid), sets that thread's nice value (Linux: nice is per thread).</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static partial int setpriority(int which, uint who, int prio);

    [LibraryImport("libc")]
    public static partial int gettid();

    [LibraryImport("libc")]
    public static partial uint geteuid();

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int chown(string path, uint owner, uint group);

    [LibraryImport("libc")]
    public static partial uint getegid();

    [LibraryImport("libc", SetLastError = true)]
    private static partial long syscall(long number, long a1, long a2);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long syscall5(long number, long a1, long a2, long a3, long a4, long a5);

    public static int PidfdOpen(int pid) => (int)syscall(SYS_pidfd_open, pid, 0);

    /// <summary>A duplicate, in this process, of descriptor <paramref name="targetFd"/> of the process behind
    /// <paramref name="pidfd"/> (close-on-exec). Needs PTRACE_MODE_ATTACH over it (root or CAP_SYS_PTRACE, or
    /// same uid where Yama allows): EPERM otherwise; EBADF: no such descriptor; ESRCH: the process exited.</summary>
    public static int PidfdGetfd(int pidfd, int targetFd) => (int)syscall5(SYS_pidfd_getfd, pidfd, targetFd, 0, 0, 0);

    /// <summary>0 when descriptor <paramref name="fd1"/> of <paramref name="pid1"/> and <paramref name="fd2"/> of
    /// <paramref name="pid2"/> are the same open file description; 1 or 2 (an ordering) when not; -1 on error
    /// (ENOSYS without CONFIG_KCMP, EPERM, EBADF).</summary>
    public static int KcmpFile(int pid1, int pid2, int fd1, int fd2) =>
        (int)syscall5(SYS_kcmp, pid1, pid2, KCMP_FILE, fd1, fd2);

    public static int UserfaultFd(int flags) => (int)syscall(SYS_userfaultfd, flags, 0);

    public const int ENOTCONN = 107, ENODEV = 19, EIO = 5, EROFS = 30, ENOSYS = 38, EOPNOTSUPP = 95, EBUSY = 16,
        EPERM = 1, EACCES = 13, EISDIR = 21, ENOTDIR = 20;
    public const int O_RDWR = 2;
    public const ulong MS_NOSUID = 2, MS_NODEV = 4;
    public const int MNT_DETACH = 2;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int mount(string source, string target, string fstype, ulong flags, string data);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int umount2(string target, int flags);

    /// <summary>Only the result matters here: FUSE never caches statfs, so a mount whose server is gone answers
    /// ENOTCONN (a cached stat or access would not). The buffer must hold a struct statfs (120 bytes).</summary>
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int statfs(string path, byte* buf);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint writev(int fd, IoVec* iov, int iovcnt);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int flock(int fd, int operation);

    [LibraryImport("libc", EntryPoint = "strerror")]
    private static partial nint StrErrorPtr(int errnum);

    /// <summary>The C library's text for an errno ("Transport endpoint is not connected").</summary>
    public static string StrError(int errno) => Marshal.PtrToStringUTF8(StrErrorPtr(errno)) ?? $"errno {errno}";

    public static int Errno => Marshal.GetLastPInvokeError();
}
