using Snapshots.Store.Cache;
using Snapshots.Store.Chunks;
using Snapshots.Store.Distributed;
using Snapshots.Store.Images;
using Snapshots.Store.Keys;
using Snapshots.Store.Layers;
using Snapshots.Store.Origin;
using Snapshots.Store.Tiers;

namespace Snapshots.Tests.Services;

/// <summary>A scratch directory (images, keyring, caches) with an S3 origin under a fresh prefix.</summary>
public sealed class RemoteStore : IDisposable
{
    public string Dir { get; } = Path.Combine(Path.GetTempPath(), "snapshots-tests", Guid.NewGuid().ToString("N"));
    public S3BlobStore Blobs { get; }
    public LocalKeyring Keys { get; }
    public SnapshotCatalog Catalog { get; }
    public string Prefix { get; } = Guid.NewGuid().ToString("N");

    public RemoteStore(S3Server s3, double timeoutSeconds = 5)
    {
        Directory.CreateDirectory(Dir);
        Blobs = s3.NewStore(Prefix, timeoutSeconds);
        Keys = new LocalKeyring(Path.Combine(Dir, "keyring"));
        Catalog = new SnapshotCatalog(Blobs);
    }

    public string Path_(string name) => Path.Combine(Dir, name);

    public string Image(string name, long size = 64L << 20, int function = 0)
    {
        var path = Path_(name);
        VmImageGenerator.Write(new VmImageSpec { Size = size, OsSeed = 1, FunctionSeed = function }, path);
        return path;
    }

    public Task<BuildResult> BuildAsync(string name, string memory, string? parent = null, string? tenant = null) =>
        new LayerBuilder(Blobs, Keys).BuildAsync(
            new BuildRequest
            {
                Name = name, MemoryPath = memory, Parent = parent, Tenant = tenant,
                HolesAreZero = parent is not null, // generated images: full snapshots, sparse where zero
                Layer = tenant is not null ? Store.Manifests.LayerKind.Function
                    : parent is null ? Store.Manifests.LayerKind.Os : Store.Manifests.LayerKind.Runtime,
            });

    public DiskChunkCache Disk(string name = "cache") => new(Path_(name), 1L << 30);

    /// <summary>A reader over disk (optional) -> redis (optional) -> this origin, with test deadlines.</summary>
    public ChunkReader Reader(DiskChunkCache? disk, RedisChunkCache? redis, TimeSpan? originDeadline = null)
    {
        var caches = new List<IChunkCache>();
        var options = new List<TierOptions>();
        if (disk is not null) { caches.Add(disk); options.Add(TierOptions.LocalDisk); }
        if (redis is not null)
        {
            caches.Add(redis);
            options.Add(TierOptions.DistributedOver(redis.Address));
        }
        var origin = TierOptions.Origin with { Deadline = originDeadline ?? TimeSpan.FromSeconds(10) };
        return new ChunkReader(new ReaderOptions(options, origin), new OriginChunkStore(Blobs), [.. caches]);
    }

    public async Task<string> ExportAsync(string name, ChunkReader reader, string outName, string? tenant = null)
    {
        var chain = await SnapshotChain.OpenAsync(Catalog, Keys, name, tenant);
        var output = Path_(outName);
        await new ImageExporter(reader).ExportAsync(chain, output);
        return output;
    }

    public void Dispose()
    {
        Blobs.Dispose();
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
    }
}
