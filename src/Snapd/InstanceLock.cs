using System.Runtime.InteropServices;
using Snapshots.Store;

namespace Snapshots.Snapd;

/// <summary>One daemon per state directory: two would both take back the same VMs and serve the same sockets.
/// An exclusive flock on STATE/snapd.lock, released by the kernel when the process dies, however it dies.</summary>
public static partial class InstanceLock
{
    private const int LockExclusive = 2, LockNonBlocking = 4;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int flock(int fd, int operation);

    /// <summary>Holds the lock until the returned stream is disposed; a <see cref="SnapshotException"/> naming the
    /// state directory when another process holds it.</summary>
    public static FileStream Acquire(string stateDirectory)
    {
        string path = Path.Combine(stateDirectory, "snapd.lock");
        // Never through a link planted in its place (the lock would be taken, and the file created, elsewhere).
        var kind = Store.Files.FileKinds.Of(path, followLinks: false);
        if (kind is not (Store.Files.FileKind.Missing or Store.Files.FileKind.Regular))
        {
            throw new SnapshotException(
                $"{path} is {Store.Files.FileKinds.Describe(kind)}, not snapd's lock file; it is left alone")
            {
                Parameter = "state",
            };
        }
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite);
        }
        catch (IOException ex)
        {
            // .NET's own advisory lock (FileShare) refused the open: another process holds ours.
            throw Held(stateDirectory, path, ex.Message);
        }
        if (flock((int)stream.SafeFileHandle.DangerousGetHandle(), LockExclusive | LockNonBlocking) == 0)
            return stream;
        int errno = Marshal.GetLastPInvokeError();
        stream.Dispose();
        throw Held(stateDirectory, path, $"errno {errno}");
    }

    private static SnapshotException Held(string stateDirectory, string path, string why) =>
        new($"another snapd runs with the state directory {stateDirectory} ({path} is locked: {why})")
        {
            Parameter = "state",
        };
}
