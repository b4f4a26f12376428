using Snapshots.Host.Mount;

namespace Snapshots.Host;

public sealed partial class SnapshotHost
{
    /// <summary>Exposes snapshots as files of a ChunkFs mount (<see cref="MountSession"/>) until
    /// <paramref name="ct"/> is cancelled or the mount is unmounted; returns what it served.</summary>
    public async Task<MountStats> MountAsync(MountRequest request, CancellationToken ct = default)
    {
        using var session = await MountSession.PrepareAsync(this, request, ct);
        return await session.ServeAsync(ct);
    }
}
