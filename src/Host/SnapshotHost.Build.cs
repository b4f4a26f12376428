using Snapshots.Store.Layers;

namespace Snapshots.Host;

public sealed partial class SnapshotHost
{
    /// <summary>Builds a layer from a raw memory file and publishes its manifest (chunks first, manifest last:
    /// no partial manifest is ever visible). Progress is in bytes of the memory file. A diff build
    /// (<see cref="BuildRequest.Diff"/>) reads the parent's chunks it completes through the origin tier with the
    /// host's retries.</summary>
    public async Task<BuildResult> BuildAsync(
        BuildRequest request, IByteProgress? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Name.EndsWith(Prefetch.WorkingSetPack.Suffix, StringComparison.Ordinal))
        {
            throw new Store.InvalidInputException(
                $"snapshot name '{request.Name}' is reserved: names ending in {Prefetch.WorkingSetPack.Suffix} are "
                    + "the working-set packs restores read", "name");
        }
        if (File.Exists(request.MemoryPath)) progress?.Begin(new FileInfo(request.MemoryPath).Length);
        if (!request.Diff) return await new LayerBuilder(Blobs, Keys).BuildAsync(request, progress, ct);
        using var reader = await OpenReaderAsync(TierSettings.OriginOnly, ct);
        return await new LayerBuilder(Blobs, Keys, reader).BuildAsync(request, progress, ct);
    }
}
