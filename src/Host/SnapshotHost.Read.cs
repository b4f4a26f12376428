using Snapshots.Store.Chunks;
using Snapshots.Store.Layers;
using Snapshots.Store.Tiers;

namespace Snapshots.Host;

public sealed partial class SnapshotHost
{
    /// <summary>Writes a snapshot's full image, resolved through its chain, to <paramref name="outPath"/> (sparse
    /// where zero; never a partial file under that name). Progress is in bytes of the image.</summary>
    public async Task<ExportResult> ExportAsync(string name, string? tenant, string outPath, TierSettings tiers,
        IByteProgress? progress = null, CancellationToken ct = default)
    {
        var chain = await OpenChainAsync(name, tenant, ct);
        using var reader = await OpenReaderAsync(tiers, ct);
        progress?.Begin(chain.ImageSize);
        var result = await new ImageExporter(reader).ExportAsync(chain, outPath, 0, progress, ct);
        return result with { Tiers = TierSummary.Of(reader) };
    }

    /// <summary>Reads every chunk of the chain (shadowed ones too) from the origin, bypassing caches, and checks
    /// and decrypts it. Bad chunks are listed in the result, not thrown. Progress is in bytes of chunks.</summary>
    public async Task<VerifyResult> VerifyAsync(string name, string? tenant, IByteProgress? progress = null,
        CancellationToken ct = default)
    {
        var chain = await OpenChainAsync(name, tenant, ct);
        long total = 0;
        foreach (var layer in chain.Layers) total += layer.Entries.LongLength * ChunkGeometry.ChunkSize;
        progress?.Begin(total);
        return await new ChainVerifier(new OriginChunkStore(Blobs)).VerifyAsync(chain, 0, progress, ct);
    }

    /// <summary>Pre-fills the local disk cache with every chunk the snapshot's image reads. Needs no key: caches
    /// hold ciphertext and manifests name their chunks in the clear.</summary>
    public async Task<WarmResult> WarmAsync(string name, TierSettings tiers, int parallelism,
        IByteProgress? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(tiers);
        if (tiers.CacheDirectory is null)
            throw new Store.InvalidInputException("warming needs a local cache directory to fill", "cache-dir");
        if (parallelism is < 1 or > 256)
            throw new Store.InvalidInputException($"parallelism {parallelism} must be 1-256", "parallel");
        var (reader, _, distributed) = await OpenTiersAsync(tiers, ct);
        using var _ = reader;
        var names = await ChainChunkNames.ResolveAsync(Catalog, name, ct);
        progress?.Begin((long)names.Count * ChunkGeometry.ChunkSize);
        var result = await CacheWarmer.WarmAsync(reader, name, names, parallelism, progress, ct);
        // Warming fills the tiers it was given: a distributed cache that could not be reached was not filled
        // (its fills are dropped while it is disconnected), however complete the local cache's fills are.
        if (distributed?.Unreachable is { } why)
        {
            throw new Store.SnapshotException($"warm '{name}': the distributed cache {distributed.Address.Redacted} "
                + $"was unreachable ({why}), so it was not filled; the local cache {tiers.CacheDirectory} holds the "
                + $"{names.Count} chunks")
            {
                Parameter = "distributed",
            };
        }
        return result with { Tiers = TierSummary.Of(reader) };
    }
}
