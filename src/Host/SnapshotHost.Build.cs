using Snapshots.Store.Layers;

namespace Snapshots.Host;

public sealed partial class SnapshotHost
{
    /// <summary>Builds a layer from a raw memory file and publishes its manifest (chunks first, manifest last:
    /// no partial manifest is ever visible). Progress is in bytes of the memory file.</summary>
    public Task<BuildResult> BuildAsync(
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
        return new LayerBuilder(Blobs, Keys).BuildAsync(request, progress, ct);
    }
}
