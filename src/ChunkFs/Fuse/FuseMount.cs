using System.Globalization;
using Snapshots.ChunkFs.Native;
using Snapshots.Store;

namespace Snapshots.ChunkFs.Fuse;

/// <summary>
/// A FUSE mount made with mount(2) directly (root only, as fusermount3 does for itself): /dev/fuse is opened, its
/// descriptor passed in the mount options, and the kernel then sends this process every request on the mount.
/// Owns the descriptor and the mount: <see cref="Unmount"/> unmounts and aborts the connection, so no reader of
/// the mount is left waiting on a server that is gone.
/// </summary>
internal sealed class FuseMount : IDisposable
{
    public const string FsType = "fuse.chunkfs";
    private readonly Action<string> _log;
    private int _fd;
    private bool _disposed, _unmounted;

    private FuseMount(string path, int fd, int connection, Action<string> log)
    {
        Path = path;
        _fd = fd;
        Connection = connection;
        _log = log;
    }

    /// <summary>The mount point (absolute, links resolved).</summary>
    public string Path { get; }

    /// <summary>The /dev/fuse descriptor requests are read from and replies written to.</summary>
    public int Fd => _fd;

    /// <summary>The connection's id: its directory under /sys/fs/fuse/connections.</summary>
    public int Connection { get; }

    /// <param name="mountPoint">An existing directory; a dead ChunkFs mount left there by a crash is cleared
    /// first, any other mount there is refused as busy.</param>
    /// <param name="maxRead">The largest read the kernel may send (bytes).</param>
    /// <param name="allowOther">Let users other than the mounting one reach the mount (VMMs run as their own
    /// users); permissions are still checked against each file's owner and mode.</param>
    /// <param name="log"></param>
    /// <exception cref="InvalidInputException">The mount point is missing, not a directory or busy.</exception>
    /// <exception cref="SnapshotException">/dev/fuse or mount(2) failed (not root, no FUSE).</exception>
    public static FuseMount Mount(string mountPoint, int maxRead, bool allowOther, Action<string> log)
    {
        var path = Prepare(mountPoint, log);
        int fd = LibC.open("/dev/fuse", LibC.O_RDWR | LibC.O_CLOEXEC);
        if (fd < 0)
        {
            int e = LibC.Errno;
            throw new SnapshotException($"cannot open /dev/fuse: {LibC.StrError(e)} (ChunkFs needs the fuse module "
                + "and root)")
            { Parameter = "mountpoint" };
        }
        // default_permissions: the kernel checks each file's owner and mode, so only the owner opens an image.
        string data = string.Create(CultureInfo.InvariantCulture,
            $"fd={fd},rootmode=40000,user_id={LibC.geteuid()},group_id={LibC.getegid()},default_permissions,"
            + $"max_read={maxRead}{(allowOther ? ",allow_other" : "")}");
        if (LibC.mount("chunkfs", path, FsType, LibC.MS_NOSUID | LibC.MS_NODEV, data) != 0)
        {
            int e = LibC.Errno;
            LibC.close(fd);
            throw new SnapshotException($"cannot mount ChunkFs on {path}: {LibC.StrError(e)}"
                + (e == LibC.EPERM ? " (mounting needs root)" : ""))
            { Parameter = "mountpoint" };
        }
        var entry = MountTable.Find(path);
        return new FuseMount(path, fd, entry?.Minor ?? -1, log);
    }

    /// <summary>Resolves the mount point and clears a dead ChunkFs mount from it; refuses anything else mounted
    /// there.</summary>
    private static string Prepare(string mountPoint, Action<string> log)
    {
        string full = System.IO.Path.GetFullPath(mountPoint);
        var entry = MountTable.Find(full.TrimEnd('/').Length == 0 ? "/" : full.TrimEnd('/'));
        if (entry is not null)
        {
            bool dead = IsDead(full);
            if (entry.FsType != FsType || !dead)
            {
                throw new InvalidInputException($"mountpoint {full} is busy: {entry.FsType} is mounted there"
                    + (entry.FsType == FsType ? " by a running ChunkFs" : ""), "mountpoint");
            }
            // A ChunkFs whose server died (SIGKILL, OOM): its mount answers ENOTCONN to everyone until unmounted.
            if (LibC.umount2(full, LibC.MNT_DETACH) != 0)
            {
                int e = LibC.Errno;
                throw new SnapshotException($"cannot clear the dead ChunkFs mount at {full}: {LibC.StrError(e)}")
                { Parameter = "mountpoint" };
            }
            log($"cleared a dead ChunkFs mount at {full} (its server had exited)");
        }
        if (!Directory.Exists(full))
        {
            throw new InvalidInputException(File.Exists(full) ? $"mountpoint {full} is not a directory"
                : $"mountpoint {full} does not exist", "mountpoint");
        }
        var resolved = new DirectoryInfo(full).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? full;
        return resolved;
    }

    /// <summary>A FUSE mount whose server is gone: statfs always reaches the server, and answers ENOTCONN.
    /// </summary>
    private static unsafe bool IsDead(string path)
    {
        byte* buffer = stackalloc byte[256];
        return LibC.statfs(path, buffer) != 0 && LibC.Errno == LibC.ENOTCONN;
    }

    /// <summary>Unmounts. A mount still in use (a VMM has its file open or mapped) is detached, then its
    /// connection aborted: its readers get errors (EIO, or SIGBUS on a mapping), never a hang.</summary>
    public void Unmount()
    {
        if (_unmounted) return;
        _unmounted = true;
        if (LibC.umount2(Path, 0) != 0)
        {
            int e = LibC.Errno;
            if (e == LibC.EBUSY)
            {
                _log($"{Path} is still in use: detaching it and aborting its connection (its readers get errors)");
                LibC.umount2(Path, LibC.MNT_DETACH);
                Abort();
            }
            else if (e != LibC.EINVAL && e != LibC.ENOENT)
            {
                _log($"warning: unmounting {Path}: {LibC.StrError(e)}");
                Abort();
            }
        }
    }

    /// <summary>Unmounts (if not yet done) and closes the descriptor: call once no thread reads from it.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Unmount();
        LibC.close(_fd);
        _fd = -1;
    }

    /// <summary>Ends the connection through fusectl: every request waiting on it fails, and our reader threads
    /// wake with ENODEV.</summary>
    public void Abort()
    {
        if (Connection < 0) return;
        const string Control = "/sys/fs/fuse/connections";
        // fusectl is often not mounted; mounting it is harmless (one instance per host, shared by all mounts).
        if (!Directory.Exists($"{Control}/{Connection}")) LibC.mount("fusectl", Control, "fusectl", 0, "");
        // Gone already: the last user let go after the detach, and the kernel ended the connection itself.
        if (!Directory.Exists($"{Control}/{Connection}")) return;
        try
        {
            File.WriteAllText($"{Control}/{Connection}/abort", "1");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _log($"warning: cannot abort FUSE connection {Connection}: {ex.Message}");
        }
    }
}
