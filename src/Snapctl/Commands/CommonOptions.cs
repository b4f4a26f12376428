using System.CommandLine;
using Snapshots.Store.Cache;
using Snapshots.Store.Chunks;
using Snapshots.Store.Distributed;
using Snapshots.Store.Keys;
using Snapshots.Store.Origin;
using Snapshots.Store.Tiers;

namespace Snapshots.Snapctl.Commands;

/// <summary>Options shared by the commands, and what they open.</summary>
public static class CommonOptions
{
    public static Option<string> Store() => new("--store", "-s")
    {
        Description = "The origin: a directory, file://DIR, or s3://BUCKET/PREFIX?endpoint=URL "
            + "(credentials from AWS_* or the AWS profile) ($SNAPSHOTS_STORE)",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("SNAPSHOTS_STORE") ?? "",
    };

    public static Option<string> Keyring() => new("--keyring")
    {
        Description = "Key provider directory (0600 key files, created on first use; $SNAPSHOTS_KEYRING)",
        DefaultValueFactory = _ => LocalKeyring.DefaultDirectory(),
    };

    public static Option<string> Name() => new("--name", "-n") { Description = "Snapshot name", Required = true };
    public static Option<string?> Tenant() => new("--tenant")
    {
        Description = "Tenant whose function layers this request may read or write",
    };
    public static Option<bool> Json() => new("--json") { Description = "Print the result as JSON" };
    public static Option<string?> CacheDir() => new("--cache-dir")
    {
        Description = "Local disk cache directory (ciphertext only)",
    };
    public static Option<string> CacheSize() => new("--cache-size")
    {
        Description = "Local disk cache budget (e.g. 2G)", DefaultValueFactory = _ => "10G",
    };

    public static Option<string?> Distributed() => new("--distributed")
    {
        Description = "Distributed cache: redis://HOST:PORT[,HOST:PORT...][?layout=auto|whole|striped&deadline=MS] "
            + "($SNAPSHOTS_DISTRIBUTED)",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("SNAPSHOTS_DISTRIBUTED"),
    };

    public static Option<double> Deadline() => new("--deadline")
    {
        Description = "Seconds the origin may take for one chunk before the read fails naming it",
        DefaultValueFactory = _ => TierOptions.Origin.Deadline.TotalSeconds,
    };

    public static IBlobStore OpenStore(string address, bool create = false) => StoreLocation.Open(address, create);

    /// <summary>The one place the CLI builds its reader: local disk cache, then the distributed cache, then the
    /// origin, each with its deadline and concurrency bound.</summary>
    public static ChunkReader Reader(
        IBlobStore blobs, string? cacheDir, string cacheSize, string? distributed = null, double deadlineSeconds = 0)
    {
        var caches = new List<IChunkCache>();
        var options = new List<TierOptions>();
        if (cacheDir is not null)
        {
            caches.Add(new DiskChunkCache(cacheDir, SizeParser.Parse(cacheSize, "--cache-size")));
            options.Add(TierOptions.LocalDisk);
        }
        if (!string.IsNullOrWhiteSpace(distributed))
        {
            var address = RedisAddress.Parse(distributed);
            // Console start-up, no synchronization context: waiting here is safe and bounded by the connect timeout.
            caches.Add(RedisChunkCache.ConnectAsync(address).GetAwaiter().GetResult());
            options.Add(TierOptions.Distributed with { Deadline = address.NodeDeadline * 2.5 });
        }
        var origin = deadlineSeconds > 0
            ? TierOptions.Origin with { Deadline = TimeSpan.FromSeconds(deadlineSeconds) }
            : TierOptions.Origin;
        return new ChunkReader(
            new ReaderOptions(options, origin) { OwnsTiers = true }, new OriginChunkStore(blobs), [.. caches]);
    }
}
