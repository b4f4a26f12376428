using System.Diagnostics;
using Snapshots.ChunkFs.Fuse;
using Snapshots.ChunkFs.Memory;
using Snapshots.Host.Restore;
using Snapshots.Prefetch;
using Snapshots.Store;
using Snapshots.Store.Chunks;
using Snapshots.Store.Files;

namespace Snapshots.Host.Mount;

/// <summary>
/// The ChunkFs recipe: each snapshot's chain, plan and memory tier over one set of tiers, exposed as the files of
/// a FUSE mount until it is cancelled or unmounted. <see cref="PrepareAsync"/> opens and warms everything before
/// mounting; <see cref="ServeAsync"/> mounts, serves, unmounts and writes the access logs.
/// </summary>
public sealed class MountSession : IDisposable
{
    private readonly SnapshotHost _host;
    private readonly MountRequest _request;
    private readonly ChunkReader _reader;
    private readonly List<ResidentChunks> _tiers;
    private readonly ChunkFsServer _server;
    private readonly int _readAhead;

    private MountSession(SnapshotHost host, MountRequest request, ChunkReader reader, List<ResidentChunks> tiers,
        ChunkFsServer server, int readAhead)
    {
        _host = host;
        _request = request;
        _reader = reader;
        _tiers = tiers;
        _server = server;
        _readAhead = readAhead;
    }

    /// <summary>Opens every snapshot and its plan, and warms the read path. Throws
    /// <see cref="SnapshotException"/>s naming the snapshot or input at fault; nothing is mounted yet.</summary>
    public static async Task<MountSession> PrepareAsync(SnapshotHost host, MountRequest request,
        CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(request);
        if (request.Names.Count == 0) throw new InvalidInputException("no snapshot to mount: give --name", "name");
        if (request.PlanPath is not null && request.Names.Count != 1)
            throw new InvalidInputException("a plan file is for one snapshot: mount one name with --plan", "plan");
        if (request.RecordPath is not null)
        {
            foreach (var name in request.Names) OutputFile.Check(RecordPathOf(request, name), "record");
        }
        int readAhead = request.ReadAheadBytes ?? (request.RecordPath is null ? ChunkFsOptions.DefaultReadAhead : 0);
        var reader = await host.OpenReaderAsync(request.Tiers with { RetryWindow = request.ReadDeadline }, ct);
        var tiers = new List<ResidentChunks>();
        try
        {
            var files = new List<ChunkFsFile>();
            foreach (var name in request.Names)
                files.Add(await OpenFileAsync(host, request, name, reader, tiers, ct));
            var server = new ChunkFsServer(request.MountPoint, files, new ChunkFsOptions
            {
                ReadAheadBytes = readAhead,
                MaxReadBytes = request.MaxReadBytes,
                Threads = request.Threads,
                ReadDeadline = request.ReadDeadline,
                OwnerUid = request.OwnerUid,
                OwnerGid = request.OwnerGid,
                Record = request.RecordPath is not null,
                Log = host.Log,
            });
            return new MountSession(host, request, reader, tiers, server, readAhead);
        }
        catch
        {
            foreach (var t in tiers) t.Dispose();
            reader.Dispose();
            throw;
        }
    }

    private static async Task<ChunkFsFile> OpenFileAsync(SnapshotHost host, MountRequest request, string name,
        ChunkReader reader, List<ResidentChunks> tiers, CancellationToken ct)
    {
        var chain = await host.OpenChainAsync(name, request.Tenant, ct);
        var plan = await PlanChoice.ChooseAsync(host, chain, request.Prefetch, request.PlanPath, ct);
        var memory = new ResidentChunks(chain, reader, request.MemoryBudgetBytes, request.BufferReserve);
        tiers.Add(memory);
        // As for a restore: the read path compiled and warm before the first VM reads.
        int firstData = Array.FindIndex(chain.Chunks, c => !c.IsZero);
        if (firstData >= 0) await RestoreSession.WarmUpAsync(memory.LoadAsync(firstData, ct));
        var pack = await PlanChoice.OpenPackAsync(host, request.Tenant, plan,
            c => new ResidentChunks(c, reader, request.MemoryBudgetBytes, request.BufferReserve), ct);
        if (pack is not null) tiers.Add(pack);
        IReadOnlyList<PrefetchUnit>? units = plan is null ? null
            : pack is not null ? PrefetchUnit.FromPackChunks(plan)
            : PrefetchUnit.FromImageChunks(plan);
        return new ChunkFsFile(chain.Name, memory, units, pack);
    }

    /// <summary>Mounts and serves until <paramref name="ct"/> is cancelled (SIGTERM, SIGINT) or the mount is
    /// unmounted from outside; then unmounts and writes the access logs.</summary>
    public async Task<MountStats> ServeAsync(CancellationToken ct = default)
    {
        var started = Stopwatch.GetTimestamp();
        await _server.StartAsync(ct);
        string names = string.Join(", ", _server.Files.Select(f => $"'{f.Name}'"));
        int planned = _server.Files.Count(f => f.Prefetch is { Count: > 0 });
        string line = $"mounted {names} at {_server.MountPoint} (read-ahead {_readAhead >> 10} KiB"
            + (planned > 0 ? $", prefetch for {planned} of {_server.Files.Count}" : "") + ")";
        _host.Log(line);
        _request.Ready?.Invoke(_server.MountPoint);
        try
        {
            await _server.Completion.WaitAsync(ct);
            _host.Log($"{_server.MountPoint} was unmounted");
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Asked to stop: unmount below.
        }
        _server.Dispose();
        WriteLogs();
        return new MountStats
        {
            MountPoint = _server.MountPoint,
            ReadAheadBytes = _readAhead,
            Seconds = Stopwatch.GetElapsedTime(started).TotalSeconds,
            Files = _server.Stats(),
            Tiers = TierSummary.Of(_reader),
        };
    }

    private void WriteLogs()
    {
        if (_request.RecordPath is null) return;
        foreach (var (name, log) in _server.RecordedLogs())
        {
            string path = RecordPathOf(_request, name);
            try
            {
                OutputFile.WriteAllBytes(path, log.Serialize(), "record");
            }
            catch (Exception ex) when (ex is SnapshotException or IOException or UnauthorizedAccessException)
            {
                _host.Log($"warning: the access log of '{name}' could not be written to {path}: {ex.Message}");
            }
        }
    }

    private static string RecordPathOf(MountRequest request, string name) =>
        request.Names.Count == 1 ? request.RecordPath! : $"{request.RecordPath}.{name}";

    public void Dispose()
    {
        _server.Dispose();
        foreach (var t in _tiers) t.Dispose();
        _reader.Dispose();
    }
}
