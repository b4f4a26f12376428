using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Snapshots.ChunkFs.Memory;
using Snapshots.ChunkFs.Uffd;
using Snapshots.Host;
using Snapshots.Host.Mount;
using Snapshots.Host.Restore;
using Snapshots.Prefetch;
using Snapshots.Snapd.Metrics;
using Snapshots.Store;
using Snapshots.Store.Tiers;

namespace Snapshots.Snapd.Restores;

/// <summary>
/// The daemon's restores: creates them (prepared and listening before the API call returns), keeps them while
/// they serve and for a while after, stops them, and drains them on SIGTERM. Opens the store once, at start.
/// Every recipe is the host library's (<see cref="RestoreSession"/>, <see cref="MountSession"/>).
/// </summary>
public sealed partial class RestoreManager : IHostedLifecycleService, IDisposable
{
    /// <summary>Ended restores kept for GET (their figures) before the oldest is forgotten.</summary>
    public const int KeptEnded = 256;

    private readonly SnapdSettings _settings;
    private readonly SnapdMetrics _metrics;
    private readonly ILogger<RestoreManager> _log;
    private readonly ConcurrentDictionary<string, ManagedRestore> _restores = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _endedOrder = new();
    private readonly Lock _totalsLock = new();
    private readonly RestoreTotals _endedTotals = new();
    private readonly HashSet<string> _counted = new(StringComparer.Ordinal);
    private readonly RestoreRecords _records;
    private SnapshotHost? _host;
    private OpenedTiers? _tiers;
    private HostMemory? _memory;
    private TokenBucket? _bucket;
    private RestoreResources? _shared;
    private int _active;
    private volatile bool _draining;
    private int _disposed;

    public RestoreManager(SnapdSettings settings, SnapdMetrics metrics, ILogger<RestoreManager> log)
    {
        _settings = settings;
        _metrics = metrics;
        _log = log;
        _records = new RestoreRecords(settings.RestoresDirectory);
    }

    public SnapshotHost Host => _host ?? throw new InvalidOperationException("snapd has not opened its store");
    public SnapdSettings Settings => _settings;
    public bool Draining => _draining;
    public int Active => Volatile.Read(ref _active);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        SafeDirectories.CreatePassable(_settings.StateDirectory);
        SafeDirectories.CreatePassable(_settings.RestoresDirectory);
        // Owner-only and never a symlink: the start's stale-mount cleanup deletes the directories it finds there.
        SafeDirectories.CreatePassable(_settings.MountsDirectory);
        _host = await SnapshotHost.OpenAsync(new StoreOptions
        {
            Address = _settings.Store,
            KeyringDirectory = _settings.Options.Keyring ?? Store.Keys.LocalKeyring.DefaultDirectory(),
            Log = line => LogHost(_log, line),
        }, cancellationToken);
        // One set of tiers, one memory budget and one prefetch bandwidth for every uffd restore of the host.
        _tiers = await _host.OpenTierSetAsync(_settings.Tiers with { RetryWindow = _settings.FaultDeadline },
            cancellationToken);
        _memory = new HostMemory(_settings.MemoryBudgetBytes);
        if (_settings.PrefetchBandwidthBytes > 0)
        {
            _bucket = new TokenBucket(_settings.PrefetchBandwidthBytes,
                Math.Max(_settings.PrefetchBandwidthBytes / 10, 2L * Store.Chunks.ChunkGeometry.ChunkSize));
        }
        _shared = new RestoreResources(_tiers.Reader, _memory, _bucket);
        LogOpened(_log, _host.Blobs.Describe, _settings.StateDirectory);
        // Said at every start: a daemon left with a chaos setting serves every VM slower or worse than it could.
        if (_settings.Options.OriginFaults is { } faults && _settings.OriginFaults is not null)
            LogOriginFaults(_log, faults);
        await RecoverAsync(cancellationToken);
        StartPublisher();
    }

    /// <summary>Creates a restore and returns once it is ready: the socket listens (uffd) or the file is mounted
    /// (file). Errors are <see cref="SnapshotException"/>s naming what is wrong (unknown snapshot or tenant, a
    /// key the tenant may not use, the limit, draining).</summary>
    public async Task<ManagedRestore> CreateAsync(RestoreSpec spec, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(spec);
        long started = Stopwatch.GetTimestamp();
        if (_draining) throw new DrainingException();
        if (Interlocked.Increment(ref _active) > _settings.MaxRestores)
        {
            Interlocked.Decrement(ref _active);
            throw new TooManyRestoresException(_settings.MaxRestores);
        }
        var restore = new ManagedRestore(NewId(), spec);
        string mode = ModeName(spec.Mode);
        try
        {
            if (spec.Mode == RestoreMode.Uffd) await StartUffdAsync(restore, started, ct);
            else await StartFileAsync(restore, started, ct);
        }
        catch
        {
            Interlocked.Decrement(ref _active);
            restore.Dispose();
            throw;
        }
        // Seen (GET, DELETE, the drain) only once started: a DELETE while it was being made found nothing to wait
        // for, disposed it, and the start went on with what was disposed (a 500, a slot, socket or mount leaked).
        _restores[restore.Id] = restore;
        if (_draining && restore.State == RestoreState.Ready && spec.Mode == RestoreMode.Uffd) restore.Stop();
        _metrics.RestoresStarted.WithLabels(mode).Inc();
        _metrics.RestoresActive.WithLabels(mode).Inc();
        _metrics.ReadySeconds.WithLabels(mode).Observe(restore.ReadySeconds);
        LogCreated(_log, restore.Id, spec.Snapshot, spec.Tenant ?? "-", mode, restore.ReadySeconds * 1000);
        return restore;
    }

    private async Task StartUffdAsync(ManagedRestore restore, long started, CancellationToken ct)
    {
        var spec = restore.Spec;
        bool record = spec.Record || (_settings.RecordShare > 0 && Random.Shared.NextDouble() < _settings.RecordShare);
        var session = await RestoreSession.PrepareAsync(Host, UffdRequest(restore, record), ct);
        string socket;
        try
        {
            restore.Protection = Protect(session);
            socket = session.Listen();
        }
        catch
        {
            session.Dispose();
            throw;
        }
        restore.Start(session, socket, started, OnEnded);
    }

    /// <summary>The chunks a restore serves stay in the host's disk cache while it runs (never evicted for
    /// another's).</summary>
    internal IDisposable? Protect(RestoreSession session)
    {
        if (_tiers?.Disk is not { } disk) return null;
        var names = new List<Store.Chunks.ChunkName>(session.Chain.ChunkCount);
        foreach (var c in session.Chain.Chunks) if (!c.IsZero) names.Add(c.Name);
        return disk.Protect(names);
    }

    /// <summary>The host library's request for a uffd restore (a new one, or one taken back).</summary>
    private RestoreRequest UffdRequest(ManagedRestore restore, bool record)
    {
        var spec = restore.Spec;
        return new RestoreRequest
        {
            Name = spec.Snapshot,
            Tenant = spec.Tenant,
            SocketPath = Path.Combine(_settings.RestoresDirectory, restore.Id + ".sock"),
            Tiers = _settings.Tiers,
            MemoryBudgetBytes = _settings.MemoryBudgetBytes,
            Prefetch = spec.Prefetch ? PrefetchMode.Auto : PrefetchMode.Off,
            FaultDeadline = spec.FaultDeadline ?? _settings.FaultDeadline,
            PrefetchConcurrency = _settings.PrefetchConcurrency,
            AcceptTimeout = _settings.AcceptTimeout,
            RecordPath = record ? AccessLogPath(restore.Id) : null,
            RemovedPagesPath = RemovedPagesPath(restore.Id),
            VmmUid = spec.VmmUid,
            FaultObserver = _metrics,
            VmmConnected = session => OnConnected(restore, session, record),
            Shared = _shared,
        };
    }

    private async Task StartFileAsync(ManagedRestore restore, long started, CancellationToken ct)
    {
        var spec = restore.Spec;
        string mountPoint = Path.Combine(_settings.MountsDirectory, restore.Id);
        Directory.CreateDirectory(mountPoint);
        try
        {
            var request = new MountRequest
            {
                MountPoint = mountPoint,
                Names = [spec.Snapshot],
                Tenant = spec.Tenant,
                Tiers = _settings.Tiers,
                MemoryBudgetBytes = _settings.MemoryBudgetBytes,
                Prefetch = spec.Prefetch ? PrefetchMode.Auto : PrefetchMode.Off,
                ReadDeadline = spec.FaultDeadline ?? _settings.FaultDeadline,
                OwnerUid = spec.VmmUid,
                Ready = _ => restore.Mounted(),
            };
            var session = await MountSession.PrepareAsync(Host, request, ct);
            try
            {
                await restore.StartAsync(session, Path.Combine(mountPoint, spec.Snapshot), started, OnEnded);
            }
            catch
            {
                session.Dispose();
                throw;
            }
        }
        catch
        {
            TryRemoveDirectory(mountPoint);
            throw;
        }
    }

    private void OnConnected(ManagedRestore restore, UffdSession session, bool record)
    {
        restore.Connected(session);
        if (restore.TakenBack) return; // its record is the one it was taken back from
        var regions = new List<RecordedRegion>(session.Regions.Length);
        foreach (var r in session.Regions) regions.Add(new(r.BaseHostVirtAddr, r.Size, r.Offset, r.PageSize));
        _records.Write(new RestoreRecord
        {
            Id = restore.Id,
            Snapshot = restore.Spec.Snapshot,
            Tenant = restore.Spec.Tenant,
            Mode = ModeName(restore.Spec.Mode),
            SocketPath = restore.SocketPath,
            VmmPid = session.VmmPid,
            VmmStartTime = session.VmmStartTime,
            VmmUffdFd = session.VmmUffdFd,
            Regions = regions,
            RemovedPagesPath = RemovedPagesPath(restore.Id),
            CreatedAt = restore.CreatedAt,
            FaultDeadlineSeconds = restore.Spec.FaultDeadline?.TotalSeconds,
            VmmUid = restore.Spec.VmmUid,
            Record = record,
            Prefetch = restore.Spec.Prefetch,
        });
    }

    private void OnEnded(ManagedRestore restore)
    {
        string mode = ModeName(restore.Spec.Mode);
        lock (_totalsLock)
        {
            if (restore.Stats is { } s)
            {
                _endedTotals.Add(new HandlerProgress(s.Faults, s.PagesCopied, s.ZeroPages, s.PrefetchedPages,
                    s.PlannedPages, s.ParkedFaults, 0, s.RemovedPages, s.VmmPid));
            }
            else if (restore.MountStats is { } m)
            {
                _endedTotals.Add(m.Tiers);
            }
            _counted.Add(restore.Id);
        }
        Interlocked.Decrement(ref _active);
        if (restore.State != RestoreState.Detached)
        {
            // A detached VM runs on, waiting for the next daemon: its record and freed pages are what it needs.
            _records.Remove(restore.Id);
            TryDelete(RemovedPagesPath(restore.Id));
        }
        if (restore.Spec.Mode == RestoreMode.File)
            TryRemoveDirectory(Path.Combine(_settings.MountsDirectory, restore.Id));
        string outcome = restore.State switch
        {
            RestoreState.Failed => "failed",
            RestoreState.Detached => "detached",
            _ => "exited",
        };
        _metrics.RestoresActive.WithLabels(mode).Dec();
        _metrics.RestoresEnded.WithLabels(mode, outcome).Inc();
        if (restore.State == RestoreState.Failed) _metrics.Errors.WithLabels("restore-failed").Inc();
        LogEnded(_log, restore.Id, restore.Spec.Snapshot, outcome, restore.Reason is { } why ? ": " + why : "");
        restore.Release();
        _endedOrder.Enqueue(restore.Id);
        while (_endedOrder.Count > KeptEnded && _endedOrder.TryDequeue(out var old))
        {
            if (_restores.TryRemove(old, out var forgotten)) forgotten.Dispose();
            lock (_totalsLock) _counted.Remove(old);
        }
        OnAccessLog(restore);
    }

    public ManagedRestore Get(string id) =>
        _restores.TryGetValue(id, out var r) ? r : throw new UnknownRestoreException(id);

    /// <summary>Every restore known, newest first.</summary>
    public List<ManagedRestore> List()
    {
        var all = new List<ManagedRestore>(_restores.Values);
        all.Sort((a, b) => b.CreatedAt.CompareTo(a.CreatedAt));
        return all;
    }

    /// <summary>Stops a restore (a uffd VM still connected is killed: it cannot run without its handler; a file is
    /// unmounted), waits for it to end (10 s at most), and forgets it. Returns it as it ended.</summary>
    public async Task<ManagedRestore> DeleteAsync(string id)
    {
        var restore = Get(id);
        restore.Stop();
        await restore.Completion.WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        _restores.TryRemove(id, out _);
        lock (_totalsLock) _counted.Remove(id);
        restore.Dispose();
        return restore;
    }

    /// <summary>Ended restores' figures plus live ones' counters, consistently (never one counted twice).</summary>
    public RestoreTotals Totals()
    {
        lock (_totalsLock)
        {
            var t = _endedTotals.Clone();
            foreach (var r in _restores.Values)
            {
                if (_counted.Contains(r.Id)) continue;
                if (r.Progress is { } p) t.Add(p);
            }
            // Every uffd restore reads through the one shared reader: its counters are the host's (file restores
            // have their own, added as they end).
            if (_tiers is { } tiers)
            {
                t.Add(Store.Chunks.TierSummary.Of(tiers.Reader));
                t.Retries += tiers.Reader.Retries;
            }
            t.Disk = _tiers?.Disk?.Counters;
            if (_tiers?.Distributed is { } redis)
            {
                t.Redis = new RedisTotals(
                    redis.NodeFailures, redis.ShortCircuited, redis.Rebuilt, redis.DroppedCorrupt);
            }
            t.Memory = _memory?.Counters();
            return t;
        }
    }

    /// <summary>Fills the local cache with the snapshot's chunks (ciphertext: no key needed).</summary>
    public Task<WarmResult> WarmAsync(string name, CancellationToken ct)
    {
        if (_draining) throw new DrainingException();
        return Host.WarmAsync(name, _settings.Tiers, parallelism: 8, progress: null, ct);
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>The drain runs here, before any hosted service stops: the web server stops first (it was started
    /// last), and the API must go on answering (503 for new restores, health "draining") while restores drain.
    /// </summary>
    public Task StoppingAsync(CancellationToken cancellationToken) => DrainAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => DrainAsync(cancellationToken);

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>SIGTERM: no new restores; running ones are served until their VMMs exit, for the drain time.
    /// Once: a second call waits for the first.</summary>
    private Task DrainAsync(CancellationToken cancellationToken)
    {
        lock (_drainLock) return _drain ??= Task.Run(() => DrainOnceAsync(cancellationToken), CancellationToken.None);
    }

    private readonly Lock _drainLock = new();
    private Task? _drain;

    private async Task DrainOnceAsync(CancellationToken cancellationToken)
    {
        _draining = true;
        _merges.Writer.TryComplete();
        var live = new List<Task>();
        foreach (var r in _restores.Values)
        {
            if (r.Ended) continue;
            // No VMM yet: nothing to break; its socket goes now, and a VMM that comes later is refused at once.
            if (r.State == RestoreState.Ready && r.Spec.Mode == RestoreMode.Uffd) r.Stop();
            live.Add(r.Completion);
        }
        if (live.Count > 0)
        {
            LogDraining(_log, live.Count, _settings.Drain.TotalSeconds);
            try
            {
                await Task.WhenAll(live).WaitAsync(_settings.Drain, cancellationToken);
            }
            catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
            {
                StopRemaining();
            }
        }
        await _publisher.WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None)
            .ContinueWith(_ => { }, TaskScheduler.Default);
    }

    /// <summary>Idempotent: the container disposes the manager both as itself and as the hosted service.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _stopping.Cancel();
        _stopping.Dispose();
        foreach (var r in _restores.Values) r.Dispose();
        // After every session that used them.
        _tiers?.Reader.Dispose();
        _memory?.Dispose();
        _host?.Dispose();
    }

    private static string NewId() => "r-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));

    internal static string ModeName(RestoreMode mode) => mode == RestoreMode.Uffd ? "uffd" : "file";

    private string RemovedPagesPath(string id) => Path.Combine(_settings.RestoresDirectory, id + ".removed");

    private string AccessLogPath(string id) => Path.Combine(_settings.RestoresDirectory, id + ".access-log");

    private static void TryRemoveDirectory(string path)
    {
        try
        {
            Directory.Delete(path);
        }
        catch (IOException)
        {
            // Still mounted or not empty: left for the next start's cleanup.
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Line}")]
    private static partial void LogHost(ILogger log, string line);

    [LoggerMessage(Level = LogLevel.Information, Message = "store {Store} open; state in {State}")]
    private static partial void LogOpened(ILogger log, string store, string state);

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "OriginFaults '{Faults}': every origin read has faults injected (chaos benchmarks only)")]
    private static partial void LogOriginFaults(ILogger log, string faults);

    [LoggerMessage(Level = LogLevel.Information,
        Message = "restore {Id} of '{Snapshot}' (tenant {Tenant}, {Mode}) ready in {ReadyMs:F2} ms")]
    private static partial void LogCreated(ILogger log, string id, string snapshot, string tenant, string mode,
        double readyMs);

    [LoggerMessage(Level = LogLevel.Information, Message = "restore {Id} of '{Snapshot}' {Outcome}{Reason}")]
    private static partial void LogEnded(ILogger log, string id, string snapshot, string outcome, string reason);

    [LoggerMessage(Level = LogLevel.Information,
        Message = "draining: {Count} restores still serving; waiting up to {Seconds} s for their VMMs")]
    private static partial void LogDraining(ILogger log, int count, double seconds);
}
