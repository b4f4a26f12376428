using System.Globalization;
using Microsoft.Win32.SafeHandles;
using Snapshots.ChunkFs.Native;
using Snapshots.Store;
using Snapshots.Store.Files;

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
    /// <summary>The mount point's directory, held (with its lock) for the mount's life.</summary>
    private SafeFileHandle? _dir;

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

    /// <param name="mountPoint">An existing, empty directory reached without symbolic links; a dead ChunkFs mount
    /// left there by a crash is cleared first, any other mount there is refused as busy.</param>
    /// <param name="maxRead">The largest read the kernel may send (bytes).</param>
    /// <param name="allowOther">Let users other than the mounting one reach the mount (VMMs run as their own
    /// users); permissions are still checked against each file's owner and mode.</param>
    /// <param name="log">Where to say what was cleared.</param>
    /// <exception cref="InvalidInputException">The mount point is missing, not a directory, reached through a
    /// link, not empty, a system directory, or busy.</exception>
    /// <exception cref="SnapshotException">/dev/fuse or mount(2) failed (not root, no FUSE).</exception>
    public static FuseMount Mount(string mountPoint, int maxRead, bool allowOther, Action<string> log)
    {
        string path = Normalize(mountPoint);
        ClearDeadMount(path, log);
        // The directory itself, pinned: the mount goes onto what was checked even if the path changes meanwhile,
        // and its lock makes two mounts starting at once on one directory one mount and one refusal.
        var dir = OpenMountPoint(path);
        try
        {
            if (!LockExclusive(dir))
                throw Busy(path, "another snapctl mount holds it (starting, or serving a mount detached from it)");
            if (MountTable.Find(path) is { } entry) throw Busy(path, $"{entry.FsType} is mounted there");
            string self = $"/proc/self/fd/{dir.DangerousGetHandle()}";
            if (Directory.EnumerateFileSystemEntries(self).Any())
            {
                throw new InvalidInputException(
                    $"mountpoint {path} is not empty: the mount would hide its files; use an empty directory",
                    "mountpoint");
            }
            int fd = LibC.open("/dev/fuse", LibC.O_RDWR | LibC.O_CLOEXEC);
            if (fd < 0)
            {
                int e = LibC.Errno;
                throw new SnapshotException($"cannot open /dev/fuse: {LibC.StrError(e)} (ChunkFs needs the fuse "
                    + "module and root)")
                { Parameter = "mountpoint" };
            }
            // default_permissions: the kernel checks each file's owner and mode, so only the owner opens an image.
            string data = string.Create(CultureInfo.InvariantCulture,
                $"fd={fd},rootmode=40000,user_id={LibC.geteuid()},group_id={LibC.getegid()},default_permissions,"
                + $"max_read={maxRead}{(allowOther ? ",allow_other" : "")}");
            if (LibC.mount("chunkfs", self, FsType, LibC.MS_NOSUID | LibC.MS_NODEV, data) != 0)
            {
                int e = LibC.Errno;
                LibC.close(fd);
                throw new SnapshotException($"cannot mount ChunkFs on {path}: {LibC.StrError(e)}"
                    + (e == LibC.EPERM ? " (mounting needs root)" : ""))
                { Parameter = "mountpoint" };
            }
            var mounted = MountTable.Find(path);
            return new FuseMount(path, fd, mounted?.Minor ?? -1, log) { _dir = dir };
        }
        catch
        {
            dir.Dispose();
            throw;
        }
    }

    /// <summary>Absolute, without a trailing slash or dot segments: the form /proc/self/mountinfo uses.</summary>
    private static string Normalize(string mountPoint)
    {
        string full = System.IO.Path.GetFullPath(mountPoint);
        full = full.Length > 1 ? full.TrimEnd('/') : full;
        foreach (var system in (string[])["/proc", "/sys", "/dev", "/"])
        {
            if (full == system || (system != "/" && full.StartsWith(system + "/", StringComparison.Ordinal)))
                throw new InvalidInputException($"mountpoint {full} is a system directory", "mountpoint");
        }
        return full;
    }

    private static SafeFileHandle OpenMountPoint(string path)
    {
        var dir = NoSymlinks.OpenDirectory(path, out int errno);
        if (dir is not null) return dir;
        throw errno switch
        {
            LibC.ENOENT => new InvalidInputException($"mountpoint {path} does not exist", "mountpoint"),
            LibC.ENOTDIR => new InvalidInputException($"mountpoint {path} is not a directory", "mountpoint"),
            40 /* ELOOP */ => new InvalidInputException($"mountpoint {path} is reached through a symbolic link: "
                + "give the real path", "mountpoint"),
            _ => new InvalidInputException($"mountpoint {path}: {LibC.StrError(errno)}", "mountpoint"),
        };
    }

    private static bool LockExclusive(SafeFileHandle dir)
    {
        const int LOCK_EX = 2, LOCK_NB = 4;
        return LibC.flock((int)dir.DangerousGetHandle(), LOCK_EX | LOCK_NB) == 0;
    }

    private static InvalidInputException Busy(string path, string why) =>
        new($"mountpoint {path} is busy: {why}", "mountpoint");

    /// <summary>Unmounts a dead ChunkFs at <paramref name="path"/> (its server was killed), if one is there; a
    /// daemon's start-up cleanup. Throws <see cref="SnapshotException"/> when a live server or another file system
    /// is mounted there.</summary>
    internal static void ClearDead(string path, Action<string> log) =>
        ClearDeadMount(System.IO.Path.GetFullPath(path), log);

    /// <summary>A ChunkFs whose server died (SIGKILL, OOM) answers ENOTCONN to everyone until unmounted: cleared.
    /// Any other mount there, a live ChunkFs included, is refused as busy.</summary>
    private static void ClearDeadMount(string path, Action<string> log)
    {
        var entry = MountTable.Find(path);
        if (entry is null) return;
        if (entry.FsType != FsType) throw Busy(path, $"{entry.FsType} is mounted there");
        switch (Probe(path))
        {
            case ServerState.Answering: throw Busy(path, "a running ChunkFs serves it");
            case ServerState.Silent: throw Busy(path, "a ChunkFs is mounted there and does not answer (stopped?)");
        }
        if (LibC.umount2(path, LibC.MNT_DETACH) != 0)
        {
            int e = LibC.Errno;
            throw new SnapshotException($"cannot clear the dead ChunkFs mount at {path}: {LibC.StrError(e)}")
            { Parameter = "mountpoint" };
        }
        log($"cleared a dead ChunkFs mount at {path} (its server had exited)");
    }

    private enum ServerState { Answering, Dead, Silent }

    /// <summary>statfs always reaches the server (FUSE never caches it): a dead one answers ENOTCONN at once; a
    /// stopped one not at all, so the probe is bounded (its thread stays waiting until the server goes on or
    /// dies).</summary>
    private static unsafe ServerState Probe(string path)
    {
        var probe = Task.Run(() =>
        {
            byte* buffer = stackalloc byte[256];
            return LibC.statfs(path, buffer) != 0 && LibC.Errno == LibC.ENOTCONN;
        });
        if (!probe.Wait(TimeSpan.FromSeconds(2))) return ServerState.Silent;
        return probe.Result ? ServerState.Dead : ServerState.Answering;
    }

    /// <summary>Unmounts. A mount still in use (a VMM has its file open or mapped) is detached, then its
    /// connection aborted: its readers get errors (EIO, or SIGBUS on a mapping), never a hang.</summary>
    public void Unmount()
    {
        if (_unmounted) return;
        _unmounted = true;
        // Only our own mount is unmounted by its path: after an outside `umount -l`, another mount may be there.
        if (MountTable.Find(Path) is not { } top || top.FsType != FsType || top.Minor != Connection)
        {
            Abort();
            return;
        }
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
        _dir?.Dispose();
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
