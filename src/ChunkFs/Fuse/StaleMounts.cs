namespace Snapshots.ChunkFs.Fuse;

/// <summary>What a killed ChunkFs server leaves: a mount answering ENOTCONN to everyone until it is unmounted.
/// </summary>
public static class StaleMounts
{
    /// <summary>Unmounts a dead ChunkFs at <paramref name="path"/>, if one is there (a daemon's start-up cleanup);
    /// throws <see cref="Store.SnapshotException"/> when a live server or another file system is mounted there.
    /// </summary>
    public static void ClearDead(string path, Action<string> log) => FuseMount.ClearDead(path, log);
}
