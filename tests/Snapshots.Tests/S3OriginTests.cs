using System.Diagnostics;
using Snapshots.Store;
using Snapshots.Store.Chunks;
using Snapshots.Store.Crypto;
using Snapshots.Store.Layers;
using Snapshots.Store.Origin;
using Snapshots.Tests.Services;

namespace Snapshots.Tests;

/// <summary>The S3 origin against a real S3 server (s3rver): layout, put-if-absent, gc, and its failures.</summary>
[Collection(ServicesCollection.Name)]
[Trait("Category", Category.Services)]
public class S3OriginTests(ServicesFixture services)
{
    [Fact]
    public async Task Build_export_verify_and_gc_work_unchanged_over_S3()
    {
        using var t = new RemoteStore(services.S3);
        var os = t.Image("os.img");
        var fn = t.Image("fn.img", function: 5);
        var b = await t.BuildAsync("os", os);
        var f = await t.BuildAsync("fn", fn, parent: "os", tenant: "acme");
        Assert.True(f.InheritedChunks > 0);

        // Objects are stored byte-exact (no aws-chunked framing): every full chunk is 512 KiB + tag.
        var sizes = new List<long>();
        await foreach (var o in t.Blobs.ListAsync(OriginChunkStore.Prefix)) sizes.Add(o.Size);
        Assert.Equal(b.NewChunks + f.NewChunks, sizes.Count);
        Assert.All(sizes, s => Assert.Equal(ConvergentCipher.MaxCiphertextSize, s));

        using var reader = t.Reader(null, null);
        Assert.True(TestStore.SameBytes(fn, await t.ExportAsync("fn", reader, "fn.out", "acme")));
        var verify = await new ChainVerifier(new OriginChunkStore(t.Blobs))
            .VerifyAsync(await SnapshotChain.OpenAsync(t.Catalog, t.Keys, "fn", "acme"));
        Assert.True(verify.Ok);

        // Rebuilding the same image dedups every chunk (HEAD then PUT finds them all).
        var again = await new LayerBuilder(t.Blobs, t.Keys)
            .BuildAsync(new BuildRequest
            {
                Name = "os", Layer = Store.Manifests.LayerKind.Os, MemoryPath = os, Replace = true,
            });
        Assert.Equal(b.NewChunks, again.DedupedChunks);
        Assert.Equal(0, again.NewChunks);

        await t.Catalog.DeleteAsync("fn");
        var gc = await new GarbageCollector(t.Blobs).CollectAsync();
        Assert.Equal(f.NewChunks, gc.ChunksDeleted);
        var trash = 0;
        await foreach (var _ in t.Blobs.ListAsync("trash/")) trash++;
        Assert.Equal(0, trash);
        using var reader2 = t.Reader(null, null);
        Assert.True(TestStore.SameBytes(os, await t.ExportAsync("os", reader2, "os.out")));
    }

    /// <summary>Before: a damaged object in S3 was reported as "cannot reach the endpoint" and retried as an
    /// outage. It is a corrupt chunk, named as one.</summary>
    [Fact]
    public async Task A_damaged_object_in_S3_is_a_corrupt_chunk_not_an_unreachable_endpoint()
    {
        using var t = new RemoteStore(services.S3);
        var img = t.Image("os.img", 16L << 20);
        await t.BuildAsync("os", img);
        var m = await t.Catalog.LoadAsync("os");
        var name = m.Entries.First(e => e.Kind == Store.Manifests.EntryKind.Data).Name;
        var file = Directory.EnumerateFiles(services.S3.DataDir, "*", SearchOption.AllDirectories)
            .Where(f => f.Contains(name.ToString(), StringComparison.Ordinal))
            .OrderByDescending(f => new FileInfo(f).Length).First(); // the object's bytes, not its metadata
        var bytes = File.ReadAllBytes(file);
        bytes[1000] ^= 0x20;
        File.WriteAllBytes(file, bytes);

        using var reader = t.Reader(null, null);
        var e = await Assert.ThrowsAsync<ChunkUnavailableException>(() => t.ExportAsync("os", reader, "os.out"));
        Assert.True(e.Fault == ChunkFault.Corrupt, e.Message);
        Assert.Contains(name.ToString(), e.Message);
        Assert.DoesNotContain("cannot reach", e.Message);
    }

    [Fact]
    public async Task Listing_and_gc_page_through_many_objects()
    {
        using var t = new RemoteStore(services.S3);
        var b = await t.BuildAsync("os", t.Image("os.img"));
        t.Blobs.ListPageSize = 7;
        var keys = new List<string>();
        await foreach (var o in t.Blobs.ListAsync(OriginChunkStore.Prefix)) keys.Add(o.Key);
        Assert.Equal(b.NewChunks, keys.Count);
        Assert.Equal(keys.Count, keys.Distinct().Count());
        Assert.All(keys, k => Assert.True(OriginChunkStore.TryParseKey(k, out _), k));
        await t.Catalog.DeleteAsync("os");
        var gc = await new GarbageCollector(t.Blobs).CollectAsync();
        Assert.Equal(b.NewChunks, gc.ChunksScanned);
        Assert.Equal(b.NewChunks, gc.ChunksDeleted);
    }

    [Fact]
    public async Task Wrong_credentials_are_a_clear_error()
    {
        using var blobs = new S3BlobStore(
            S3Address.Parse(services.S3.Address("creds")), create: false,
            new Amazon.Runtime.BasicAWSCredentials("WRONGKEY", "nope"));
        var clock = Stopwatch.StartNew();
        var ex = await Assert.ThrowsAsync<SnapshotException>(() => new SnapshotCatalog(blobs).LoadAsync("os"));
        Assert.Contains("access denied", ex.Message);
        Assert.Contains("AWS_ACCESS_KEY_ID", ex.Message);
        Assert.Contains(services.S3.Endpoint, ex.Message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task Unreachable_endpoint_is_a_clear_error_within_the_deadline()
    {
        using var blobs = new S3BlobStore(
            S3Address.Parse("s3://snapshots-test/x?endpoint=http://127.0.0.1:4608&timeout=2"), create: false,
            S3Server.Credentials);
        var clock = Stopwatch.StartNew();
        var ex = await Assert.ThrowsAsync<SnapshotException>(() => new SnapshotCatalog(blobs).LoadAsync("os"));
        Assert.Contains("cannot reach the endpoint", ex.Message);
        Assert.Contains("127.0.0.1:4608", ex.Message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task Chunk_missing_everywhere_names_chunk_and_snapshot_within_the_deadline()
    {
        using var t = new RemoteStore(services.S3);
        await t.BuildAsync("os", t.Image("os.img"));
        var m = await t.Catalog.LoadAsync("os");
        var victim = m.Entries[m.Entries.Length / 2].Name;
        await t.Blobs.DeleteAsync(OriginChunkStore.KeyOf(victim));
        using var redis = await Store.Distributed.RedisChunkCache.ConnectAsync(
            Store.Distributed.RedisAddress.Parse(services.Redis.Address()));
        using var reader = t.Reader(t.Disk(), redis, TimeSpan.FromSeconds(5));
        var clock = Stopwatch.StartNew();
        var ex = await Assert.ThrowsAsync<ChunkUnavailableException>(() => t.ExportAsync("os", reader, "os.out"));
        Assert.Contains($"chunk {victim} of snapshot 'os'", ex.Message);
        Assert.Contains("is missing from origin s3://", ex.Message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
        Assert.False(File.Exists(t.Path_("os.out")));
    }
}
