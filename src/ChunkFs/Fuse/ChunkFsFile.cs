using Snapshots.ChunkFs.Memory;
using Snapshots.Prefetch;

namespace Snapshots.ChunkFs.Fuse;

/// <summary>One snapshot as a file of the mount: its name, inode and memory tier, the plan to prefetch when it is
/// first opened, and its counters.</summary>
public sealed class ChunkFsFile
{
    /// <param name="name">The file name (a snapshot name: a safe alphabet, no slash).</param>
    /// <param name="memory">The decrypted-chunk memory tier reads are served from.</param>
    /// <param name="prefetch">Chunks to push into the page cache, in order, from the mount on; null: on demand
    /// only.</param>
    /// <param name="pack">The working-set pack the prefetch units come from (<see cref="PrefetchUnit.FromPack"/>);
    /// null: the snapshot's own chunks.</param>
    public ChunkFsFile(string name, ResidentChunks memory, IReadOnlyList<PrefetchUnit>? prefetch = null,
        ResidentChunks? pack = null)
    {
        Name = name;
        Memory = memory;
        Prefetch = prefetch;
        Pack = pack;
    }

    public string Name { get; }
    public ResidentChunks Memory { get; }
    public IReadOnlyList<PrefetchUnit>? Prefetch { get; }
    public ResidentChunks? Pack { get; }
    public long Size => Memory.Size;

    /// <summary>The inode number the mount gives it (2 and up; 1 is the root).</summary>
    internal ulong NodeId { get; set; }

    internal ReadRecorder? Recorder { get; set; }
    internal ReadCounters Counters { get; } = new();
    private int _opened;

    /// <summary>True the first time only: prefetch starts once.</summary>
    internal bool FirstOpen() => Interlocked.Exchange(ref _opened, 1) == 0;
}
