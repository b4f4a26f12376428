using Snapshots.ChunkFs.Uffd;
using Snapshots.Host.Restore;

namespace Snapshots.Host;

public sealed partial class SnapshotHost
{
    /// <summary>Prepares and serves one restore (<see cref="RestoreSession"/>): returns the handler's figures
    /// when the VMM has exited or been failed (<see cref="RestoreStats.Failed"/>).</summary>
    public async Task<RestoreStats> RestoreAsync(RestoreRequest request, CancellationToken ct = default)
    {
        using var session = await RestoreSession.PrepareAsync(this, request, ct);
        return await session.ServeAsync(ct);
    }
}
