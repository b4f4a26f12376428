using Snapshots.Store.Chunks;

namespace Snapshots.Store.Tiers;

/// <summary>
/// Per-tier limits for a <see cref="ChunkReader"/>: one entry per cache, nearest first, then the origin.
/// </summary>
public sealed record ReaderOptions(IReadOnlyList<TierOptions> Caches, TierOptions Origin)
{
    /// <summary>When true, disposing the reader disposes the tiers that hold connections (the CLI's reader
    /// owns its tiers; a test or daemon that shares a cache between readers does not).</summary>
    public bool OwnsTiers { get; init; }

    /// <summary>How transient failures are retried (<see cref="RetryPolicy"/>); none unless asked for (the host
    /// retries for 10 s, a restore for its fault deadline).</summary>
    public RetryPolicy Retry { get; init; } = RetryPolicy.None;

    /// <summary>Disk-like limits for every cache (a reader built without options).</summary>
    public static ReaderOptions For(int caches)
    {
        var list = new TierOptions[caches];
        Array.Fill(list, TierOptions.LocalDisk);
        return new ReaderOptions(list, TierOptions.Origin);
    }
}
