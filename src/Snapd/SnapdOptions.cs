namespace Snapshots.Snapd;

/// <summary>
/// snapd's settings, bound from (later wins) its JSON file (<c>--config</c>, default /etc/snapd/snapd.json when
/// it exists), the environment (<c>SNAPD_STORE</c>, <c>SNAPD_CACHEDIRECTORY</c>, ...) and flags (<c>--store</c>,
/// <c>--cache-dir</c>, ...; <see cref="SnapdConfiguration"/>). Sizes take K, M, G, T suffixes (powers of 1024);
/// durations are seconds. docs/api.md lists them.
/// </summary>
public sealed class SnapdOptions
{
    /// <summary>The store: a directory, file://DIR or s3://BUCKET[/PREFIX] made by <c>snapctl init</c>.</summary>
    public string Store { get; set; } = "";

    /// <summary>The local keyring directory; null: snapctl's default.</summary>
    public string? Keyring { get; set; }

    /// <summary>The API's Unix socket (owner-only: root by default).</summary>
    public string ApiSocket { get; set; } = "/run/snapd/api.sock";

    /// <summary>A uid besides this process's that may call the API (SO_PEERCRED); null: none.</summary>
    public uint? ApiUid { get; set; }

    /// <summary>Restore records, VMM sockets and ChunkFs mounts: kept across a restart of the daemon.</summary>
    public string StateDirectory { get; set; } = "/run/snapd";

    /// <summary>The host's local disk cache (ciphertext); null: none.</summary>
    public string? CacheDirectory { get; set; }

    public string CacheSize { get; set; } = "10G";

    /// <summary>Occupancy (a share of CacheSize) past which the disk cache evicts a batch, down to the low mark.
    /// </summary>
    public double CacheHighWatermark { get; set; } = 0.9;

    public double CacheLowWatermark { get; set; } = 0.8;

    /// <summary>Free space the cache always leaves on its filesystem (the larger of this and 2 %): a fuller disk is
    /// a full one (fills stop; reads go on).</summary>
    public string CacheMinFree { get; set; } = "64M";

    /// <summary>Hash every cache entry at start, dropping corrupt ones (about a second per GiB).</summary>
    public bool VerifyCacheAtStart { get; set; } = true;

    /// <summary>The distributed cache (redis://, rediss://, or a StackExchange.Redis configuration string).</summary>
    public string? Redis { get; set; }

    /// <summary>Decrypted chunks kept in memory, for all restores together.</summary>
    public string MemoryBudget { get; set; } = "2G";

    /// <summary>Restores at once; more are refused (429) until one ends.</summary>
    public int MaxRestores { get; set; } = 64;

    /// <summary>A demand fault not served within this fails its VM (killed, never left hanging).</summary>
    public double FaultDeadlineSeconds { get; set; } = 10;

    /// <summary>A uffd restore whose VMM has not connected within this is failed and its socket removed.</summary>
    public double AcceptTimeoutSeconds { get; set; } = 60;

    /// <summary>How long a chunk may take from the origin.</summary>
    public double OriginDeadlineSeconds { get; set; } = 10;

    /// <summary>Prefetch bandwidth of all restores together, per second ("200M"); "0": none.</summary>
    public string PrefetchBandwidth { get; set; } = "0";

    /// <summary>Chunk fetches in flight for each restore's prefetch.</summary>
    public int PrefetchConcurrency { get; set; } = 2;

    /// <summary>The share of uffd restores whose page-access log is recorded (0-1): the logs of a snapshot are
    /// merged in the background into a new attached plan version.</summary>
    public double RecordShare { get; set; }

    /// <summary>Recorded logs of one snapshot merged into a plan at once.</summary>
    public int PlanMergeLogs { get; set; } = 3;

    /// <summary>The largest API request body, in bytes.</summary>
    public int MaxRequestBytes { get; set; } = 64 * 1024;

    /// <summary>SIGTERM waits this long for running restores (their VMMs) to end before the daemon exits; the VMs
    /// left are not killed: a restarted daemon takes them back.</summary>
    public double DrainSeconds { get; set; } = 30;

    /// <summary>Faults injected into every origin read (<see cref="Store.Faults.FaultProfileText"/>:
    /// <c>latency=5ms,error=0.2,...</c>), for chaos benchmarks only: a far, slow or failing origin on a host without
    /// one. Null: none.</summary>
    public string? OriginFaults { get; set; }
}
