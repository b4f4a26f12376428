using Snapshots.ChunkFs.Memory;
using Snapshots.Store.Chunks;
using Snapshots.Store.Layers;

namespace Snapshots.Host.Restore;

/// <summary>
/// The reader and memory tiers of one restore, and what it must release. Without
/// <see cref="RestoreRequest.Shared"/>: its own reader, and its own tiers each with the request's budget. With it:
/// the shared reader and leases of the host's memory (restores of the same chain share one tier); only the leases
/// are this restore's to release.
/// </summary>
internal sealed class RestoreMemory : IDisposable
{
    private readonly RestoreRequest _request;
    private readonly List<IDisposable> _owned = [];

    private RestoreMemory(RestoreRequest request, ChunkReader reader)
    {
        _request = request;
        Reader = reader;
    }

    public ChunkReader Reader { get; }

    public static async Task<RestoreMemory> OpenAsync(SnapshotHost host, RestoreRequest request,
        CancellationToken ct)
    {
        if (request.Shared is { } shared) return new RestoreMemory(request, shared.Reader);
        // A transient tier failure is retried for as long as a fault may wait: only the deadline fails a VM.
        var reader = await host.OpenReaderAsync(request.Tiers with { RetryWindow = request.FaultDeadline }, ct);
        var opened = new RestoreMemory(request, reader);
        opened._owned.Add(reader);
        return opened;
    }

    /// <summary>A memory tier serving <paramref name="chain"/> (opened for the request's tenant), released with
    /// this object.</summary>
    public ResidentChunks Open(SnapshotChain chain)
    {
        if (_request.Shared is { } shared)
        {
            var lease = shared.Memory.Lease(chain, _request.Tenant, Reader);
            _owned.Add(lease);
            return lease.Memory;
        }
        var own = new ResidentChunks(chain, Reader, _request.MemoryBudgetBytes, _request.BufferReserve);
        _owned.Add(own);
        return own;
    }

    /// <summary>Releases the tiers, then the reader (when it is this restore's own), last opened first.</summary>
    public void Dispose()
    {
        for (int i = _owned.Count - 1; i >= 0; i--) _owned[i].Dispose();
        _owned.Clear();
    }
}
