using Snapshots.Store.Cache;
using Snapshots.Store.Faults;
using Snapshots.Store.Tiers;

namespace Snapshots.Host;

/// <summary>The read tiers in front of the origin for one operation: a local disk cache, a distributed cache,
/// and the origin's deadline. The default is the origin alone with its default deadline.</summary>
public sealed record TierSettings
{
    /// <summary>Local disk cache directory (ciphertext only); null: none.</summary>
    public string? CacheDirectory { get; init; }

    /// <summary>The disk cache's budget in bytes.</summary>
    public long CacheBytes { get; init; } = 10L << 30;

    /// <summary>The disk cache's watermarks, free-space floor and start-up check (a daemon's); null: the defaults
    /// over <see cref="CacheBytes"/>, without hashing every entry at open (a short-lived command).</summary>
    public DiskCacheOptions? CacheOptions { get; init; }

    /// <summary>The distributed cache: redis://HOST:PORT[,HOST:PORT...][?layout=..&amp;deadline=MS]; null or
    /// blank: none.</summary>
    public string? Distributed { get; init; }

    /// <summary>How long the origin may take for one chunk before the read fails naming it.</summary>
    public TimeSpan OriginDeadline { get; init; } = TierOptions.Origin.Deadline;

    /// <summary>How long a chunk that no tier could serve for a transient reason is retried, from the first
    /// attempt (<see cref="RetryPolicy"/>); a restore uses its fault deadline.</summary>
    public TimeSpan RetryWindow { get; init; } = new RetryPolicy().Window;

    /// <summary>Faults injected into every origin read, for chaos tests and benchmarks: a far, slow or failing
    /// origin on a machine without one (<see cref="FaultProfile"/>; its delays cost no CPU). Null: none.</summary>
    public FaultProfile? OriginFaults { get; init; }

    public static TierSettings OriginOnly { get; } = new();
}
