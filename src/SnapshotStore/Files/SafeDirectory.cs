using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Snapshots.Store.Origin;

namespace Snapshots.Store.Files;

/// <summary>
/// Opens files that someone else may have planted or swapped (threat model item 9): beneath a directory the caller
/// trusts, never through a symlink at any step (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), never blocking (a
/// FIFO is opened O_NONBLOCK, then refused), and only a regular file of at most a given size, checked on the open
/// descriptor (fstat) before a byte is read: no check-then-open race, no unbounded read. Linux 5.6+; on older
/// kernels the final component alone is guarded (O_NOFOLLOW).
/// </summary>
public sealed class SafeDirectory : IDisposable
{
    private readonly SafeFileHandle _dir;

    /// <summary>Anchors opens beneath <paramref name="path"/> (which must exist): an O_PATH descriptor held open.
    /// </summary>
    public SafeDirectory(string path)
    {
        FullPath = Path.GetFullPath(path);
        int fd = Native.OpenDirectoryPath(FullPath);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"cannot open directory {FullPath} (errno {errno})");
        }
        _dir = new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>The directory's full path, for messages.</summary>
    public string FullPath { get; }

    /// <summary>Opens <paramref name="relative"/> (no "..", not absolute) for reading. Returns null when it does not
    /// exist; throws <see cref="HostileFileException"/> naming the path and what it is when it is not a regular
    /// file of at most <paramref name="maxBytes"/> reached without symlinks.</summary>
    public SafeFileHandle? OpenRegular(string relative, long maxBytes, out long length)
    {
        var handle = OpenRegular(relative, maxBytes, out FileFacts facts);
        length = facts.Length;
        return handle;
    }

    /// <summary>As <see cref="OpenRegular(string, long, out long)"/>, with the open file's size, mode and owner.
    /// </summary>
    public unsafe SafeFileHandle? OpenRegular(string relative, long maxBytes, out FileFacts facts)
    {
        ArgumentNullException.ThrowIfNull(relative);
        if (relative.Length == 0 || relative.StartsWith('/') || relative.Split('/').Contains(".."))
            throw new ArgumentException($"'{relative}' is not a path beneath {FullPath}", nameof(relative));
        facts = default;
        int fd = Open(relative, out int errno);
        if (fd < 0)
        {
            switch (errno)
            {
                case Native.ENOENT:
                case Native.ENOTDIR:
                    return null;
                case Native.ELOOP:
                    throw new HostileFileException(Full(relative), "reached through a symlink");
                case Native.EXDEV:
                    throw new HostileFileException(Full(relative), "outside its directory");
                case Native.ENXIO:
                    throw new HostileFileException(Full(relative), "a socket or a device without a driver");
                default:
                    throw new IOException($"cannot open {Full(relative)} (errno {errno})");
            }
        }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            Stat st;
            // SAFETY: st lives on this frame; fstat writes at most sizeof(struct stat) into it.
            if (Native.fstat(fd, &st) != 0)
                throw new IOException($"cannot stat {Full(relative)} (errno {Marshal.GetLastPInvokeError()})");
            var kind = FileKinds.FromMode(st.Mode);
            if (kind != FileKind.Regular) throw new HostileFileException(Full(relative), FileKinds.Describe(kind));
            if (st.Size > maxBytes)
            {
                throw new HostileFileException(
                    Full(relative), $"{st.Size} bytes, over the {maxBytes}-byte limit for it");
            }
            facts = new FileFacts(st.Size, st.Mode & 0xFFF, st.Uid);
            var result = handle;
            handle = null;
            return result;
        }
        finally
        {
            handle?.Dispose();
        }
    }

    /// <summary>Reads the whole regular file at <paramref name="relative"/> (at most <paramref name="maxBytes"/>);
    /// null when it does not exist. A file that shrinks while read yields what it has; one that grows is cut at the
    /// size it had when opened.</summary>
    public byte[]? ReadAll(string relative, int maxBytes) => ReadAll(relative, maxBytes, out _);

    /// <summary>As <see cref="ReadAll(string, int)"/>, with the file's size, mode and owner when opened.</summary>
    public byte[]? ReadAll(string relative, int maxBytes, out FileFacts facts)
    {
        using var handle = OpenRegular(relative, maxBytes, out facts);
        return handle is null ? null : FileKinds.ReadWhole(handle, facts.Length);
    }

    private int Open(string relative, out int errno)
    {
        int flags = Native.O_RDONLY | Native.O_NOFOLLOW | Native.O_NONBLOCK | Native.O_CLOEXEC;
        int max = Encoding.UTF8.GetMaxByteCount(relative.Length) + 1;
        Span<byte> path = max <= 1024 ? stackalloc byte[max] : new byte[max];
        int len = Encoding.UTF8.GetBytes(relative, path);
        path[len] = 0;
        bool added = false;
        try
        {
            _dir.DangerousAddRef(ref added);
            int dirfd = (int)_dir.DangerousGetHandle();
            int fd = Native.OpenAt2(dirfd, path, flags,
                Native.RESOLVE_BENEATH | Native.RESOLVE_NO_SYMLINKS | Native.RESOLVE_NO_MAGICLINKS, out errno);
            if (fd >= 0 || errno != Native.ENOSYS) return fd;
            // Before Linux 5.6: only the last component is guarded.
            int fallback = Native.openat(dirfd, relative, flags);
            errno = fallback < 0 ? Marshal.GetLastPInvokeError() : 0;
            return fallback;
        }
        finally
        {
            if (added) _dir.DangerousRelease();
        }
    }

    private string Full(string relative) => Path.Combine(FullPath, relative);

    public void Dispose() => _dir.Dispose();
}

/// <summary>An opened file's size in bytes, permission bits (mode &amp; 07777) and owner uid.</summary>
public readonly record struct FileFacts(long Length, uint Mode, uint Uid);
