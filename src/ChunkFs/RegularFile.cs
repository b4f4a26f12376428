using Snapshots.ChunkFs.Native;

namespace Snapshots.ChunkFs;

/// <summary>Whether a path names a regular file (after symlinks), checked without opening it: opening a FIFO
/// for reading blocks until a writer comes, so optional inputs (a plan file) are checked before they are read.
/// </summary>
public static class RegularFile
{
    public static unsafe bool Is(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        Stat st;
        // SAFETY: st lives on this frame for the call; stat writes at most sizeof(struct stat) into it.
        return LibC.stat(path, &st) == 0 && (st.Mode & LibC.S_IFMT) == LibC.S_IFREG;
    }
}
