using Snapshots.ChunkFs.Memory;
using Snapshots.ChunkFs.Uffd;
using Snapshots.Prefetch;
using Snapshots.Store;
using Snapshots.Store.Chunks;
using Snapshots.Store.Files;
using Snapshots.Store.Layers;

namespace Snapshots.Host.Restore;

/// <summary>
/// The whole restore recipe for one VM: the chain, its tiers and memory tier, the prefetch plan and working-set
/// pack, a warm read path, then the userfaultfd handler serving one VMM until it exits or is failed.
/// <see cref="PrepareAsync"/> does everything that can be done before a VMM connects; <see cref="ServeAsync"/>
/// listens, accepts and serves. Dispose releases the memory tier and the reader (or, with
/// <see cref="RestoreRequest.Shared"/>, only this restore's leases of the shared ones).
/// </summary>
public sealed class RestoreSession : IDisposable
{
    private readonly SnapshotHost _host;
    private readonly RestoreRequest _request;
    private readonly ChunkReader _reader;
    private readonly RestoreMemory _owned;
    private readonly ResidentChunks _memory;
    private readonly ResidentChunks? _pack;
    private HandshakeListener? _listener;
    private volatile UffdHandler? _handler;

    private RestoreSession(SnapshotHost host, RestoreRequest request, SnapshotChain chain, RestoreMemory owned,
        ResidentChunks memory, PrefetchPlan? plan, ResidentChunks? pack)
    {
        _host = host;
        _request = request;
        Chain = chain;
        _owned = owned;
        _reader = owned.Reader;
        _memory = memory;
        Plan = plan;
        _pack = pack;
    }

    public SnapshotChain Chain { get; }

    /// <summary>The plan this restore follows; null: on demand only.</summary>
    public PrefetchPlan? Plan { get; }

    public bool HasPack => _pack is not null;

    /// <summary>Opens the chain and tiers, chooses the plan and pack, and warms the read path, before any VMM
    /// connects. Throws <see cref="SnapshotException"/>s naming the snapshot, plan or input at fault.</summary>
    public static async Task<RestoreSession> PrepareAsync(SnapshotHost host, RestoreRequest request,
        CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(request);
        if (request.FaultAroundPages is < 1 or > 128)
        {
            throw new InvalidInputException(
                $"fault-around of {request.FaultAroundPages} pages: use 1-128", "fault-around");
        }
        if (request.BufferReserve is < 0 or > 65536)
        {
            throw new InvalidInputException(
                $"buffer reserve of {request.BufferReserve} chunks: use 0-65536", "buffer-reserve");
        }
        if (request.PrefetchConcurrency is < 1 or > 256)
        {
            throw new InvalidInputException(
                $"prefetch concurrency {request.PrefetchConcurrency}: use 1-256", "prefetch-concurrency");
        }
        // Refuse a bad --record path now, not after the whole VM has been served.
        if (request.RecordPath is { } record) OutputFile.Check(record, "record");
        var chain = await host.OpenChainAsync(request.Name, request.Tenant, ct);
        var plan = await PlanChoice.ChooseAsync(host, chain, request.Prefetch, request.PlanPath, ct);
        var owned = await RestoreMemory.OpenAsync(host, request, ct);
        try
        {
            var memory = owned.Open(chain);
            // A demand fetch runs on the thread pool beside the prefetch workers: with only as many pool threads as
            // cores it can wait in the queue behind them (the pool adds threads only slowly), stalling a vCPU.
            ThreadPool.GetMinThreads(out int workers, out int io);
            int wanted = (4 * Environment.ProcessorCount) + request.PrefetchConcurrency;
            ThreadPool.SetMinThreads(Math.Max(workers, wanted), io);
            if (request.Preload) await memory.PreloadAsync(Environment.ProcessorCount, ct);
            // Before the VMM may connect, fetch one chunk: the whole read path (tiers, verification, decryption) is
            // then compiled and warm, and a VM's first fault does not pay tens of milliseconds for it.
            int firstData = Array.FindIndex(chain.Chunks, c => !c.IsZero);
            if (firstData >= 0) await WarmUpAsync(memory.LoadAsync(firstData, ct));
            var pack = await PlanChoice.OpenPackAsync(host, request.Tenant, plan, owned.Open, ct);
            // The pack's first chunk holds the plan's first pages.
            if (pack is not null && !pack.IsZeroChunk(0)) await WarmUpAsync(pack.LoadAsync(0, ct));
            return new RestoreSession(host, request, chain, owned, memory, plan, pack);
        }
        catch
        {
            owned.Dispose();
            throw;
        }
    }

    /// <summary>Binds the request's socket now, so that a VMM may connect as soon as this returns (a daemon answers
    /// its API call only then); <see cref="ServeAsync"/> accepts on it. Idempotent. Throws
    /// <see cref="InvalidInputException"/> naming "uffd-socket" as <see cref="HandshakeListener"/> does.</summary>
    public string Listen()
    {
        _listener ??= new HandshakeListener(_request.SocketPath, _host.Log, _request.VmmUid);
        return _listener.Path;
    }

    /// <summary>The handler's counters while it serves (null before a VMM has connected); read from any thread.
    /// </summary>
    public HandlerProgress? Progress => _handler?.Progress;

    /// <summary>Stops serving without failing the VM (<see cref="UffdHandler.Detach"/>): the serve ends with outcome
    /// "detached", the VMM left running for another process to take back. False when no VMM is being served.
    /// </summary>
    public bool Detach()
    {
        if (_handler is not { } h) return false;
        h.Detach();
        return true;
    }

    /// <summary>What each tier has served this restore so far (the origin last).</summary>
    public IReadOnlyList<TierSummary> Tiers => TierSummaryNow();

    /// <summary>The whole reader's summary when this session owns it; with a reader shared by many restores
    /// (<see cref="RestoreRequest.Shared"/>), what this snapshot's memory tier (and pack) fetched from each tier:
    /// chunks and bytes, the failures being the reader's, host-wide.</summary>
    private IReadOnlyList<TierSummary> TierSummaryNow()
    {
        if (_request.Shared is null) return TierSummary.Of(_reader);
        var loads = _memory.TierLoads();
        var pack = _pack?.TierLoads();
        long total = 0;
        var chunks = new long[loads.Count];
        var bytes = new long[loads.Count];
        for (int i = 0; i < loads.Count; i++)
        {
            chunks[i] = loads[i].Chunks + (pack?[i].Chunks ?? 0);
            bytes[i] = loads[i].Bytes + (pack?[i].Bytes ?? 0);
            total += chunks[i];
        }
        var rows = new TierSummary[loads.Count];
        for (int i = 0; i < rows.Length; i++)
        {
            rows[i] = new TierSummary(loads[i].Tier, chunks[i], total == 0 ? 0 : chunks[i] / (double)total, 0,
                bytes[i], 0, 0, 0, 0, 0, new Percentiles(0, 0));
        }
        return rows;
    }

    /// <summary>Chunk reads retried so far after every tier failed transiently.</summary>
    public long Retries => _reader.Retries;

    /// <summary>Listens on the request's socket (unless <see cref="Listen"/> did), accepts one VMM (within the
    /// accept timeout), and serves its faults on a dedicated thread until it exits or is failed. Writes the access
    /// log when recording.</summary>
    public async Task<RestoreStats> ServeAsync(CancellationToken ct = default)
    {
        Listen();
        using var listener = _listener!;
        _host.Log($"serving '{Chain.Name}' on {listener.Path}{Describe()}");
        using var acceptCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        if (_request.AcceptTimeout is { } limit) acceptCts.CancelAfter(limit);
        UffdSession session;
        try
        {
            // Firecracker sends its message right after it connects: a connection silent for a second is not a VMM
            // and must not hold the real one up.
            session = await listener.AcceptAsync(Chain.ImageSize, TimeSpan.FromSeconds(1), acceptCts.Token);
        }
        catch (VmmRefusedException ex)
        {
            _host.Log($"failing VM pid {ex.VmmPid}: {ex.Message}");
            return new RestoreStats
            {
                Snapshot = Chain.Name,
                VmmPid = ex.VmmPid,
                Regions = 0,
                Outcome = RestoreStats.FailedOutcome,
                Reason = ex.Message,
            };
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new SnapshotException(
                $"no VMM connected to {listener.Path} within {_request.AcceptTimeout!.Value.TotalSeconds:0.###} s")
            {
                Parameter = "accept-timeout",
            };
        }
        return await ServeSessionAsync(session, ct);
    }

    /// <summary>Serves a VM whose uffd was taken back from its VMM after a restart of the serving process
    /// (UffdSession.TakeBack), as <see cref="ServeAsync"/> serves one that connected. Pages installed
    /// before answer EEXIST; pages the guest freed are known from the request's removed-page file.</summary>
    public Task<RestoreStats> ServeTakenBackAsync(UffdSession session, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        _host.Log($"serving '{Chain.Name}' again to VMM pid {session.VmmPid} (taken back){Describe()}");
        return ServeSessionAsync(session, ct);
    }

    private async Task<RestoreStats> ServeSessionAsync(UffdSession session, CancellationToken ct)
    {
        using (session)
        {
            RestoreStats stats;
            UffdHandler handler;
            try
            {
                _request.VmmConnected?.Invoke(session);
                handler = new UffdHandler(session, _memory, HandlerOptions());
                _handler = handler;
            }
            catch
            {
                session.KillVmm(); // never leave a connected VMM without a handler
                throw;
            }
            try
            {
                stats = await RunOnOwnThreadAsync(handler, ct);
            }
            finally
            {
                handler.Dispose();
            }
            if (_request.RecordPath is { } logPath && handler.RecordedLog is { } log)
            {
                try
                {
                    OutputFile.WriteAllBytes(logPath, log.Serialize(), "record");
                }
                catch (Exception ex) when (ex is SnapshotException or IOException or UnauthorizedAccessException)
                {
                    // The VM was served: its figures still count; only the log is lost, and said so.
                    _host.Log($"warning: the access log could not be written to {logPath}: {ex.Message}");
                }
            }
            return stats with { Tiers = TierSummaryNow() };
        }
    }

    /// <summary>A dedicated thread: the fault loop must not share a pool thread whose earlier work (hashing,
    /// decrypting) left wide vector state for every context switch to save and restore. Awaited, not joined: a
    /// daemon serving many VMs must not hold a pool thread per VM. A failure of the handler (it has already failed
    /// its VM) is rethrown to the caller, never left to end the process.</summary>
    private static Task<RestoreStats> RunOnOwnThreadAsync(UffdHandler handler, CancellationToken ct)
    {
        var done = new TaskCompletionSource<RestoreStats>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try { done.SetResult(handler.Run(ct)); }
            catch (Exception ex) { done.SetException(ex); }
        })
        { Name = "uffd-handler", IsBackground = true };
        thread.Start();
        return done.Task;
    }

    private UffdHandlerOptions HandlerOptions() => new()
    {
        FaultDeadline = _request.FaultDeadline,
        Record = _request.RecordPath is not null,
        Plan = Plan,
        Pack = _pack,
        FaultAroundPages = _request.FaultAroundPages,
        Prefetch = new PrefetchOptions
        {
            Concurrency = _request.PrefetchConcurrency,
            BandwidthBytesPerSecond = _request.PrefetchBandwidth,
            Bucket = _request.Shared?.PrefetchBucket,
        },
        Log = _host.Log,
        FaultObserver = _request.FaultObserver,
        RemovedPagesPath = _request.RemovedPagesPath,
    };

    private string Describe() => Plan is null ? ""
        : $" with a {Plan.Pages.Length}-page prefetch plan{(_pack is null ? "" : " and its working-set pack")}";

    /// <summary>Best effort and bounded: a tier that fails here fails the VM later, at a fault, with its
    /// reason.</summary>
    internal static async Task WarmUpAsync(Task load)
    {
        try { await load.WaitAsync(TimeSpan.FromSeconds(2)); }
        catch (Exception ex) when (ex is SnapshotException or TimeoutException) { }
    }

    public void Dispose()
    {
        _listener?.Dispose();
        _owned.Dispose();
    }
}
