using Amazon.Runtime;
using Amazon.S3;
using Snapshots.Store.Cache;
using Snapshots.Store.Chunks;
using Snapshots.Store.Distributed;
using Snapshots.Store.Origin;
using Snapshots.Store.Tiers;

namespace Snapshots.TierBench;

/// <summary>The tiers under test and the bare clients they are compared with, over the same services.</summary>
public sealed class Setup : IDisposable
{
    public Services Services { get; }
    public S3BlobStore Blobs { get; }
    public OriginChunkStore Origin { get; }
    public AmazonS3Client BareS3 { get; }
    public RedisChunkCache Whole { get; }
    public RedisChunkCache Striped { get; }
    public string DiskDir { get; }

    public Setup(Services services)
    {
        Services = services;
        var creds = new BasicAWSCredentials("S3RVER", "S3RVER");
        var address = S3Address.Parse($"s3://bench/tiers?endpoint={services.S3Endpoint}");
        Blobs = new S3BlobStore(address, create: true, creds);
        Origin = new OriginChunkStore(Blobs);
        // The bare client: the SDK configured as the S3 origin configures it (path style, checksums when required).
        BareS3 = new AmazonS3Client(creds, new AmazonS3Config
        {
            ServiceURL = services.S3Endpoint, ForcePathStyle = true, AuthenticationRegion = "us-east-1",
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
        });
        Whole = Connect(services.RedisAddress("layout=whole&deadline=100&cooldown=1000"));
        Striped = Connect(services.RedisAddress("layout=striped&stripes=5&deadline=100&cooldown=1000"));
        DiskDir = Path.Combine(Services.Root, ".work", "bench-disk-" + Guid.NewGuid().ToString("N")[..8]);
    }

    private static RedisChunkCache Connect(string address) =>
        RedisChunkCache.ConnectAsync(RedisAddress.Parse(address)).GetAwaiter().GetResult();

    public static ReaderOptions Options(params TierOptions[] caches) => new(caches, TierOptions.Origin);
    public static TierOptions RedisTier => TierOptions.Distributed; // node deadline 100 ms inside, 250 ms for the tier

    public ChunkReader Reader(params IChunkCache[] caches)
    {
        var opts = new TierOptions[caches.Length];
        for (int i = 0; i < caches.Length; i++)
            opts[i] = caches[i] is DiskChunkCache ? TierOptions.LocalDisk : RedisTier;
        return new ChunkReader(Options(opts), Origin, caches);
    }

    public void Dispose()
    {
        Whole.Dispose();
        Striped.Dispose();
        BareS3.Dispose();
        Blobs.Dispose();
        try { Directory.Delete(DiskDir, recursive: true); } catch (IOException) { }
    }
}
