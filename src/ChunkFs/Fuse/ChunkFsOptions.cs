namespace Snapshots.ChunkFs.Fuse;

/// <summary>How a ChunkFs mount serves its files. Sizes in bytes.</summary>
public sealed record ChunkFsOptions
{
    /// <summary>The kernel's read-ahead per file (the INIT reply's max_readahead): how far past a page fault or
    /// read it asks in one request. 0 makes every request one page or the caller's own size (used when
    /// recording: the log then holds the pages the VM touched, not its read-ahead).</summary>
    public int ReadAheadBytes { get; init; } = DefaultReadAhead;

    /// <summary>128 KiB: a fault reads 32 pages around it, a quarter of a chunk (bench/results/chunkfs-guest.md).
    /// </summary>
    public const int DefaultReadAhead = 128 << 10;

    /// <summary>The largest request the kernel sends (max_read, max_pages): 1 MiB, two chunks.</summary>
    public int MaxReadBytes { get; init; } = 1 << 20;

    /// <summary>Threads reading requests from /dev/fuse. A read whose chunk must be fetched waits off these threads,
    /// so a few suffice.</summary>
    public int Threads { get; init; } = 4;

    /// <summary>A read not served within this gets EIO (with a log line naming the chunk and snapshot): a VMM
    /// never waits on the mount without a bound.</summary>
    public TimeSpan ReadDeadline { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The owner of the files (the VMM's user); null: the mounting user. Files are mode 0600: only the
    /// owner opens an image, read-write as QEMU does, and writes are refused.</summary>
    public uint? OwnerUid { get; init; }
    public uint? OwnerGid { get; init; }

    /// <summary>Record the pages each file's reads cover, in first-read order (an access log per file).</summary>
    public bool Record { get; init; }

    public Action<string> Log { get; init; } = _ => { };
}
