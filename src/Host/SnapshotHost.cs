using Snapshots.Store.Cache;
using Snapshots.Store.Chunks;
using Snapshots.Store.Distributed;
using Snapshots.Store.Faults;
using Snapshots.Store.Keys;
using Snapshots.Store.Layers;
using Snapshots.Store.Origin;
using Snapshots.Store.Tiers;

namespace Snapshots.Host;

/// <summary>
/// The composition root: one store (its origin, catalog and key provider) and the recipes that use it: build,
/// export, verify, warm, inspect, list, remove, gc, attach a plan, restore. Front ends (snapctl, the daemon, the
/// chaos harness, the tests) parse their input, call a method here and print the typed result; none of them
/// wires tiers, keys or loaders itself. Model: garnet's libs/host, which its benchmarks run in-process.
/// Expected failures are <see cref="Store.SnapshotException"/>s (docs/errors.md).
/// </summary>
public sealed partial class SnapshotHost : IDisposable
{
    private readonly Lazy<IKeyProvider> _keys;

    /// <summary>A host over a store and key provider made elsewhere (tests, the harness's fault-injecting
    /// stores). The host does not dispose them.</summary>
    public SnapshotHost(IBlobStore blobs, IKeyProvider keys, Action<string>? log = null)
        : this(blobs, new Lazy<IKeyProvider>(keys), log ?? (_ => { }), ownsBlobs: false) { }

    private SnapshotHost(IBlobStore blobs, Lazy<IKeyProvider> keys, Action<string> log, bool ownsBlobs)
    {
        Blobs = blobs;
        Catalog = new SnapshotCatalog(blobs);
        _keys = keys;
        Log = log;
        OwnsBlobs = ownsBlobs;
    }

    /// <summary>Opens the store at <see cref="StoreOptions.Address"/>, which must have been made by
    /// <see cref="InitAsync"/>: a location without a store marker (a mistyped path, a missing directory or
    /// bucket) is a <see cref="Store.NotAStoreException"/>, never an empty or a fresh store; a marker of a later
    /// version is a <see cref="Store.SnapshotException"/> naming it. Bad addresses are
    /// <see cref="Store.InvalidInputException"/>s naming the "store" input.</summary>
    public static async Task<SnapshotHost> OpenAsync(StoreOptions options, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var blobs = StoreLocation.Open(options.Address, create: false);
        try
        {
            await StoreMarker.RequireAsync(blobs, ct);
        }
        catch
        {
            (blobs as IDisposable)?.Dispose();
            throw;
        }
        var keyring = options.KeyringDirectory;
        var keys = new Lazy<IKeyProvider>(() => new LocalKeyring(keyring, options.Log));
        return new SnapshotHost(blobs, keys, options.Log, ownsBlobs: true) { AllowRollback = options.AllowRollback };
    }

    /// <summary>Makes <see cref="StoreOptions.Address"/> a store: creates the directory (or S3 bucket) if missing
    /// and writes the store marker. Idempotent: a marked store is left alone
    /// (<see cref="StoreInitOutcome.AlreadyInitialised"/>), an unmarked location holding this project's objects is
    /// adopted. Returns what was done and the store as it describes itself (file://DIR, s3://BUCKET/PREFIX).
    /// </summary>
    public static async Task<(StoreInitOutcome Outcome, string Store)> InitAsync(
        StoreOptions options, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var blobs = StoreLocation.Open(options.Address, create: true);
        try
        {
            return (await StoreMarker.InitAsync(blobs, ct), blobs.Describe);
        }
        finally
        {
            (blobs as IDisposable)?.Dispose();
        }
    }

    public IBlobStore Blobs { get; }
    public SnapshotCatalog Catalog { get; }

    /// <summary>The key provider, opened on first use (inspect, ls, rm and gc need no key).</summary>
    public IKeyProvider Keys => _keys.Value;

    /// <summary>Operational notes: warnings and progress lines, one per call.</summary>
    public Action<string> Log { get; }

    private bool OwnsBlobs { get; }

    /// <summary>Resolves a snapshot through its parents with its keys, as <paramref name="tenant"/> (null: the
    /// shared domain only).</summary>
    public Task<SnapshotChain> OpenChainAsync(string name, string? tenant, CancellationToken ct = default) =>
        SnapshotChain.OpenAsync(Catalog, Keys, name, tenant, AllowRollback, ct);

    /// <summary>Opening a chain accepts publications older than this reader has seen (an explicit rollback).
    /// </summary>
    public bool AllowRollback { get; init; }

    /// <summary>The one place tiers are composed: local disk cache, then the distributed cache, then the origin,
    /// each with its deadline and concurrency bound. The reader owns (and disposes) the caches it opened.</summary>
    public async Task<ChunkReader> OpenReaderAsync(TierSettings tiers, CancellationToken ct = default) =>
        (await OpenTiersAsync(tiers, ct)).Reader;

    /// <summary>The tiers as <see cref="OpenReaderAsync"/> composes them, with the caches it opened: a process
    /// that shares one reader among many restores (the daemon) reads their counters and protects the chunks it
    /// serves in the disk cache. Disposing the reader disposes the caches.</summary>
    public async Task<OpenedTiers> OpenTierSetAsync(TierSettings tiers, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(tiers);
        return await OpenTiersAsync(tiers, ct);
    }

    /// <summary><see cref="OpenReaderAsync"/>, and the caches it opened (null: not asked for).</summary>
    private async Task<OpenedTiers> OpenTiersAsync(TierSettings tiers, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(tiers);
        RedisChunkCache? distributed = null;
        DiskChunkCache? disk = null;
        var caches = new List<IChunkCache>();
        var options = new List<TierOptions>();
        if (tiers.CacheDirectory is not null)
        {
            disk = tiers.CacheOptions is { } cacheOptions
                ? new DiskChunkCache(tiers.CacheDirectory, cacheOptions)
                : new DiskChunkCache(tiers.CacheDirectory, tiers.CacheBytes);
            caches.Add(disk);
            options.Add(TierOptions.LocalDisk);
        }
        if (!string.IsNullOrWhiteSpace(tiers.Distributed))
        {
            try
            {
                var address = RedisAddress.Parse(tiers.Distributed);
                ct.ThrowIfCancellationRequested();
                var redis = await RedisChunkCache.ConnectAsync(address);
                caches.Add(redis);
                distributed = redis;
                options.Add(TierOptions.DistributedOver(address));
                // Said at once, not only as "0 hits" at the end: the reads go on through the other tiers.
                if (redis.Unreachable is { } why)
                    Log($"warning: distributed cache {address.Redacted} unreachable: {why}; reading without it");
            }
            catch
            {
                foreach (var c in caches) (c as IDisposable)?.Dispose();
                throw;
            }
        }
        var origin = TierOptions.Origin with { Deadline = tiers.OriginDeadline };
        var readerOptions = new ReaderOptions(options, origin)
        {
            OwnsTiers = true,
            Retry = new RetryPolicy { Window = tiers.RetryWindow },
        };
        IChunkStore originStore = new OriginChunkStore(Blobs);
        if (tiers.OriginFaults is { } faults) originStore = new FaultInjectingChunkStore(originStore, faults, seed: 1);
        return new OpenedTiers(new ChunkReader(readerOptions, originStore, [.. caches]), disk, distributed);
    }

    public void Dispose()
    {
        if (OwnsBlobs) (Blobs as IDisposable)?.Dispose();
    }
}

/// <summary>A reader's tiers with the caches behind it (<see cref="SnapshotHost.OpenTierSetAsync"/>): the local
/// disk cache and the distributed cache, null when not asked for.</summary>
public sealed record OpenedTiers(ChunkReader Reader, DiskChunkCache? Disk, RedisChunkCache? Distributed);
