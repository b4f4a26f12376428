using System.Runtime.InteropServices;

namespace Snapshots.Store.Origin;

/// <summary>The two syscalls .NET does not expose: syncfs (one durability barrier for a batch of chunk
/// files) and fsync of a directory (so a rename survives a crash). The constants are typed by hand (x86_64;
/// O_DIRECTORY differs on arm64) and checked against the libc headers by native/abi-probe (UffdAbiTests).</summary>
internal static partial class Native
{
    [LibraryImport("libc", SetLastError = true)]
    private static partial int syncfs(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fsync(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int sync_file_range(int fd, long offset, long nbytes, uint flags);

    internal const uint SYNC_FILE_RANGE_WRITE = 2;

    /// <summary>Starts writing a file's dirty pages back now, without waiting: the disk works while the build
    /// computes, and the syncfs before the manifest has little left to wait for. Best effort.</summary>
    public static void StartWriteback(Microsoft.Win32.SafeHandles.SafeFileHandle file) =>
        sync_file_range((int)file.DangerousGetHandle(), 0, 0, SYNC_FILE_RANGE_WRITE);

    /// <summary>lseek(2); with SEEK_DATA/SEEK_HOLE, where the next data or hole starts (builds skip holes
    /// without reading them). -1 with the errno (ENXIO: no data at or after the offset).</summary>
    [LibraryImport("libc", SetLastError = true)]
    internal static partial long lseek(Microsoft.Win32.SafeHandles.SafeFileHandle fd, long offset, int whence);

    internal const int SEEK_DATA = 3, SEEK_HOLE = 4;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int open(string path, int flags);

    [LibraryImport("libc")]
    private static partial int close(int fd);

    internal const int O_RDONLY = 0, O_DIRECTORY = 0x10000, O_CLOEXEC = 0x80000, O_NOFOLLOW = 0x20000,
        O_NONBLOCK = 0x800, O_PATH = 0x200000;
    internal const ulong RESOLVE_NO_MAGICLINKS = 0x02, RESOLVE_NO_SYMLINKS = 0x04, RESOLVE_BENEATH = 0x08;
    internal const long SYS_openat2 = 437;
    internal const int ENOENT = 2, ENOTDIR = 20, ELOOP = 40, EXDEV = 18, ENOSYS = 38, ENXIO = 6;

    [LibraryImport("libc", SetLastError = true)]
    internal static unsafe partial long syscall(long number, long dirfd, byte* path, OpenHow* how, nuint size);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int openat(int dirfd, string path, int flags);

    internal const int AT_FDCWD = -100;

    /// <summary>openat2(2): <paramref name="path"/> (UTF-8, NUL-terminated) opened from <paramref name="dirfd"/> with
    /// the open flags and the RESOLVE_* rules given; the descriptor, or -1 with the errno (ENOSYS before Linux
    /// 5.6).</summary>
    internal static unsafe int OpenAt2(int dirfd, ReadOnlySpan<byte> path, int flags, ulong resolve, out int errno)
    {
        var how = new OpenHow { Flags = (ulong)flags, Resolve = resolve };
        fixed (byte* p = path)
        {
            // SAFETY: p is NUL-terminated and pinned; how lives on this frame; the kernel copies both.
            long fd = syscall(SYS_openat2, dirfd, p, &how, (nuint)sizeof(OpenHow));
            errno = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
            return (int)fd;
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    internal static unsafe partial int fstat(int fd, Stat* buf);

    [LibraryImport("libc")]
    internal static partial uint geteuid();

    [LibraryImport("libc", EntryPoint = "realpath", StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint realpath_(string path, nint resolved);

    [LibraryImport("libc")]
    private static partial void free(nint p);

    /// <summary>The canonical absolute path (symlinks resolved, no trailing slash); null when it cannot be had.
    /// </summary>
    internal static string? RealPath(string path)
    {
        nint p = realpath_(path, 0);
        if (p == 0) return null;
        try { return Marshal.PtrToStringUTF8(p); }
        finally { free(p); }
    }

    internal const int ESRCH = 3, EEXIST = 17;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int link(string existing, string created);

    /// <summary>link(2): creates <paramref name="created"/> as another name of <paramref name="existing"/>, atomically
    /// failing (false) when the name exists: publish-if-absent. File.Move without overwrite is not that (it checks,
    /// then renames: two racing publishers can both succeed).</summary>
    internal static bool LinkNew(string existing, string created)
    {
        if (link(existing, created) == 0) return true;
        int errno = Marshal.GetLastPInvokeError();
        if (errno == EEXIST) return false;
        throw new IOException($"link {created}: errno {errno}");
    }

    /// <summary>kill(2); with sig 0, tells whether a process exists (ESRCH: it does not, in our namespace).</summary>
    [LibraryImport("libc", SetLastError = true)]
    internal static partial int kill(int pid, int sig);

    /// <summary>The mode (permission bits, mode &amp; 07777) and owner of <paramref name="path"/> itself (lstat);
    /// false when it does not exist.</summary>
    internal static unsafe bool TryOwnerAndMode(string path, out uint uid, out uint mode)
    {
        Stat st;
        // SAFETY: st lives on this frame; lstat writes at most sizeof(struct stat) into it.
        bool ok = lstat(path, &st) == 0;
        uid = ok ? st.Uid : 0;
        mode = ok ? st.Mode & 0xFFF : 0;
        return ok;
    }

    /// <summary>Opens a directory as an O_PATH handle: the anchor for <see cref="Files.SafeDirectory"/> opens beneath
    /// it.</summary>
    internal static int OpenDirectoryPath(string dir) => open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);

    internal const uint S_IFMT = 0xF000, S_IFSOCK = 0xC000, S_IFLNK = 0xA000, S_IFREG = 0x8000, S_IFDIR = 0x4000,
        S_IFIFO = 0x1000;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static unsafe partial int lstat(string path, Stat* buf);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static unsafe partial int stat(string path, Stat* buf);

    public static void SyncFileSystem(string dir) => WithDirectory(dir, fd => syncfs(fd), "syncfs");

    public static void FsyncDirectory(string dir) => WithDirectory(dir, fd => fsync(fd), "fsync");

    private static void WithDirectory(string dir, Func<int, int> op, string what)
    {
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) throw new IOException($"open {dir}: errno {Marshal.GetLastPInvokeError()}");
        try
        {
            if (op(fd) != 0) throw new IOException($"{what} {dir}: errno {Marshal.GetLastPInvokeError()}");
        }
        finally { _ = close(fd); } // a read-only directory fd: nothing is lost if close fails
    }
}

/// <summary>struct stat (x86_64): the file type and mode, owner and size.</summary>
[StructLayout(LayoutKind.Explicit, Size = 144)]
internal struct Stat
{
    [FieldOffset(24)] public uint Mode;
    [FieldOffset(28)] public uint Uid;
    [FieldOffset(48)] public long Size;
}

/// <summary>struct open_how (openat2(2)).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct OpenHow
{
    public ulong Flags;
    public ulong Mode;
    public ulong Resolve;
}
