using System.Diagnostics;
using Snapshots.ChunkFs.Uffd;
using Snapshots.Host.Mount;
using Snapshots.Host.Restore;
using Snapshots.Store;
using Snapshots.Store.Chunks;

namespace Snapshots.Snapd.Restores;

/// <summary>
/// One restore the daemon runs: a prepared <see cref="RestoreSession"/> (uffd) or <see cref="MountSession"/>
/// (file), serving in the background until its VMM exits, it is failed, or it is deleted. Its state and counters
/// are read from API threads at any time.
/// </summary>
public sealed class ManagedRestore : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _mounted = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private RestoreSession? _uffd;
    private MountSession? _mount;
    private volatile RestoreState _state = RestoreState.Ready;
    private RestoreStats? _stats;
    private MountStats? _mountStats;
    private string? _reason;
    private int _vmmPid;
    private int _released;

    public ManagedRestore(string id, RestoreSpec spec, DateTimeOffset? createdAt = null)
    {
        Id = id;
        Spec = spec;
        CreatedAt = createdAt ?? DateTimeOffset.UtcNow;
    }

    public string Id { get; }
    public RestoreSpec Spec { get; }
    public DateTimeOffset CreatedAt { get; }
    public DateTimeOffset? EndedAt { get; private set; }

    /// <summary>From the API call to the socket listening (uffd) or the file mounted (file), in seconds.</summary>
    public double ReadySeconds { get; private set; }

    /// <summary>The socket the VMM connects to (uffd).</summary>
    public string? SocketPath { get; private set; }

    /// <summary>The memory file on the restore's ChunkFs mount (file).</summary>
    public string? FilePath { get; private set; }

    public RestoreState State => _state;
    public string? Reason => _reason;
    public RestoreStats? Stats => _stats;
    public MountStats? MountStats => _mountStats;
    public int VmmPid => _uffd?.Progress?.VmmPid ?? _vmmPid;
    public HandlerProgress? Progress => _uffd?.Progress;
    public bool Ended => _state is RestoreState.Exited or RestoreState.Failed or RestoreState.Detached;

    /// <summary>Taken back from an earlier daemon's record after a restart.</summary>
    public bool TakenBack { get; private set; }

    /// <summary>What this restore's snapshot fetched from each tier so far (uffd, while serving).</summary>
    internal IReadOnlyList<TierSummary>? LiveTiers() => Ended ? null : _uffd?.Tiers;

    /// <summary>Completes when the restore has ended (never faults).</summary>
    public Task Completion { get; private set; } = Task.CompletedTask;

    /// <summary>Starts serving a prepared uffd session whose socket already listens.</summary>
    internal void Start(RestoreSession session, string socketPath, long startedTicks, Action<ManagedRestore> ended)
    {
        _uffd = session;
        SocketPath = socketPath;
        ReadySeconds = Stopwatch.GetElapsedTime(startedTicks).TotalSeconds;
        Completion = Serve(() => session.ServeAsync(_stop.Token), ended);
    }

    /// <summary>Serves a VM taken back after a restart (<see cref="UffdSession.TakeBack"/>).</summary>
    internal void StartTakenBack(RestoreSession session, UffdSession taken, string? socketPath,
        Action<ManagedRestore> ended)
    {
        _uffd = session;
        SocketPath = socketPath;
        TakenBack = true;
        _vmmPid = taken.VmmPid;
        _state = RestoreState.Serving;
        Completion = Serve(() => session.ServeTakenBackAsync(taken, _stop.Token), ended);
    }

    private Task Serve(Func<Task<RestoreStats>> serve, Action<ManagedRestore> ended) => Task.Run(async () =>
    {
        try
        {
            var stats = await serve();
            _stats = stats;
            _reason = stats.Reason;
            _state = stats.Outcome switch
            {
                RestoreStats.FailedOutcome => RestoreState.Failed,
                RestoreStats.DetachedOutcome => RestoreState.Detached,
                _ => RestoreState.Exited,
            };
        }
        catch (Exception ex) when (ex is SnapshotException or OperationCanceledException or IOException)
        {
            _reason = ex is OperationCanceledException ? "deleted before a VMM connected" : ex.Message;
            _state = RestoreState.Failed;
        }
        finally
        {
            EndedAt = DateTimeOffset.UtcNow;
            ended(this);
        }
    });

    /// <summary>Starts serving a prepared ChunkFs mount; returns once the file is mounted (the request's Ready
    /// callback calls <see cref="Mounted"/>). A mount that fails throws here, to the API call.</summary>
    internal async Task StartAsync(MountSession session, string filePath, long startedTicks,
        Action<ManagedRestore> ended)
    {
        _mount = session;
        var serve = Task.Run(() => session.ServeAsync(_stop.Token));
        await Task.WhenAny(_mounted.Task, serve);
        if (!_mounted.Task.IsCompleted)
        {
            await serve;
            throw new SnapshotException($"the ChunkFs mount for '{Spec.Snapshot}' ended before it was ready");
        }
        FilePath = filePath;
        ReadySeconds = Stopwatch.GetElapsedTime(startedTicks).TotalSeconds;
        _state = RestoreState.Serving;
        Completion = Task.Run(async () =>
        {
            try
            {
                _mountStats = await serve;
                _state = RestoreState.Exited;
            }
            catch (Exception ex) when (ex is SnapshotException or OperationCanceledException or IOException)
            {
                _reason = ex.Message;
                _state = RestoreState.Failed;
            }
            finally
            {
                EndedAt = DateTimeOffset.UtcNow;
                ended(this);
            }
        });
    }

    /// <summary>Stops serving a uffd VM without failing it: it is left to the next daemon (drain out of time).
    /// </summary>
    public bool Detach() => _uffd?.Detach() ?? false;

    /// <summary>The ChunkFs file is mounted.</summary>
    internal void Mounted() => _mounted.TrySetResult();

    /// <summary>The VMM connected (called on the serving thread before its first fault).</summary>
    internal void Connected(UffdSession session)
    {
        _vmmPid = session.VmmPid;
        _state = RestoreState.Serving;
    }

    /// <summary>Stops serving: a uffd VM still connected is failed (killed: it cannot run without its handler);
    /// a file restore is unmounted.</summary>
    public void Stop()
    {
        if (!Ended) _stop.Cancel();
    }

    /// <summary>Releases what the restore served from (its memory tier, reader, mount) once it has ended; its
    /// figures stay readable.</summary>
    /// <summary>The restore's chunks held in the disk cache while it runs.</summary>
    internal IDisposable? Protection { get; set; }

    internal void Release()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0) return;
        Protection?.Dispose();
        _uffd?.Dispose();
        _mount?.Dispose();
    }

    public void Dispose()
    {
        Release();
        _stop.Dispose();
    }
}
