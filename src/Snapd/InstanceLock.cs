using Snapshots.Store;

namespace Snapshots.Snapd;

/// <summary>One daemon per state directory: two would both take back the same VMs and serve the same sockets.
/// An exclusive lock on STATE/snapd.lock (flock, released by the kernel when the process dies, however it dies).
/// </summary>
public static class InstanceLock
{
    public static FileStream Acquire(string stateDirectory)
    {
        string path = Path.Combine(stateDirectory, "snapd.lock");
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
