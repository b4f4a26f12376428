using Snapshots.Store;
using Snapshots.Store.Files;

namespace Snapshots.Snapd;

/// <summary>One daemon per state directory: two would both take back the same VMs and serve the same sockets.
/// STATE/snapd.lock opened with FileShare.None, which .NET holds as an exclusive flock: released by the kernel when
/// the process dies, however it dies.</summary>
public static class InstanceLock
{
    /// <summary>Holds the lock until the returned stream is disposed; a <see cref="SnapshotException"/> naming the
    /// state directory when another process holds it, or when something other than a file is in its place.
    /// </summary>
    public static FileStream Acquire(string stateDirectory)
    {
        string path = Path.Combine(stateDirectory, "snapd.lock");
        // Never through a link planted in its place (the lock would be taken, and the file created, elsewhere).
        var kind = FileKinds.Of(path, followLinks: false);
        if (kind is not (FileKind.Missing or FileKind.Regular))
        {
            throw new SnapshotException(
                $"{path} is {FileKinds.Describe(kind)}, not snapd's lock file; it is left alone")
            {
                Parameter = "state",
            };
        }
        try
        {
            return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException ex)
        {
            throw new SnapshotException(
                $"another snapd runs with the state directory {stateDirectory} ({path} is locked: {ex.Message})")
            {
                Parameter = "state",
            };
        }
    }
}
