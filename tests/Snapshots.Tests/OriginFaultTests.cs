using System.Diagnostics;
using Snapshots.Store;
using Snapshots.Store.Chunks;
using Snapshots.Store.Layers;
using Snapshots.Store.Origin;
using Snapshots.Store.Tiers;
using Snapshots.Tests.Services;

namespace Snapshots.Tests;

/// <summary>An origin that errs, stalls or restarts mid-read: the exact bytes or a clear error, in time.</summary>
[Collection(ServicesCollection.Name)]
[Trait("Category", Category.Services)]
public class OriginFaultTests(ServicesFixture services)
{
    private static async Task<(RemoteStore T, string Image, ChunkName Chunk)> BuiltAsync(
        S3Server s3, long size = 64L << 20)
    {
        var t = new RemoteStore(s3);
        var img = t.Image("os.img", size);
        await t.BuildAsync("os", img);
        var m = await t.Catalog.LoadAsync("os");
        return (t, img, m.Entries[0].Name);
    }

    /// <summary>A reader whose origin is another endpoint holding nothing, under a short deadline.</summary>
    private static ChunkReader ReaderAt(string endpoint, double requestTimeout, TimeSpan deadline)
    {
        var blobs = new S3BlobStore(
            S3Address.Parse($"s3://snapshots-test/p?endpoint={endpoint}&timeout={requestTimeout}"), create: false,
            S3Server.Credentials);
        return new ChunkReader(
            new ReaderOptions([], TierOptions.Origin with { Deadline = deadline }), new OriginChunkStore(blobs));
    }

    [Fact]
    public async Task Origin_answering_errors_is_a_named_error_without_a_retry_storm()
    {
        var (t, _, chunk) = await BuiltAsync(services.S3, 16L << 20);
        using var _ = t;
        using var bad = new FaultyHttpServer(4607, FaultyHttpServer.Mode.Error500);
        using var reader = ReaderAt("http://127.0.0.1:4607", 2, TimeSpan.FromSeconds(5));
        var clock = Stopwatch.StartNew();
        var ex = await Assert.ThrowsAsync<ChunkUnavailableException>(
            async () => await reader.ReadAsync(chunk, new byte[600_000], "snapshot 'os'"));
        Assert.Contains($"chunk {chunk} of snapshot 'os' could not be read", ex.Message);
        Assert.Contains("500", ex.Message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
        Assert.InRange(bad.Requests, 1, 3); // one try and at most two retries, under the SDK's retry quota
        Assert.Equal(1, reader.Counters[^1].Errors);
    }

    [Fact]
    public async Task A_manifest_read_is_retried_through_transient_errors_then_named()
    {
        using var bad = new FaultyHttpServer(4607, FaultyHttpServer.Mode.Error500);
        using var blobs = new S3BlobStore(
            S3Address.Parse("s3://snapshots-test/x?endpoint=http://127.0.0.1:4607&timeout=2"), create: false,
            S3Server.Credentials);
        var clock = Stopwatch.StartNew();
        var ex = await Assert.ThrowsAsync<SnapshotException>(() => new SnapshotCatalog(blobs).LoadAsync("os"));
        Assert.Contains("GET manifests/os.manifest", ex.Message);
        Assert.Contains("500", ex.Message);
        // More than the SDK's own three attempts: the store retried the whole read for its window, then gave up.
        Assert.True(bad.Requests > 3, $"{bad.Requests} requests");
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(15));
    }

    [Fact]
    public async Task Origin_that_never_answers_fails_at_the_deadline()
    {
        var (t, _, chunk) = await BuiltAsync(services.S3, 16L << 20);
        using var _ = t;
        using var silent = new FaultyHttpServer(4606, FaultyHttpServer.Mode.Silent);
        using var reader = ReaderAt("http://127.0.0.1:4606", 30, TimeSpan.FromSeconds(2));
        var clock = Stopwatch.StartNew();
        var ex = await Assert.ThrowsAsync<ChunkUnavailableException>(
            async () => await reader.ReadAsync(chunk, new byte[600_000], "snapshot 'os'"));
        Assert.Contains($"chunk {chunk} of snapshot 'os'", ex.Message);
        Assert.Contains("did not answer within 2 s", ex.Message);
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1.9), TimeSpan.FromSeconds(6));
        Assert.Equal(1, reader.Counters[^1].Timeouts);
    }

    [Fact]
    public async Task S3_server_restarted_mid_read_gives_the_exact_bytes_or_a_clear_error()
    {
        using var s3 = new S3Server(4601);
        var (t, img, _) = await BuiltAsync(s3, 128L << 20);
        using var _ = t;
        using var reader = t.Reader(null, null, TimeSpan.FromSeconds(10));
        var clock = Stopwatch.StartNew();
        var export = Task.Run(() => t.ExportAsync("os", reader, "os.out"));
        await Task.Delay(150);
        s3.Stop();
        await Task.Delay(300);
        s3.Start();
        try
        {
            var output = await export;
            Assert.True(TestStore.SameBytes(img, output));
        }
        catch (ChunkUnavailableException ex)
        {
            Assert.Matches("chunk [0-9a-f]{64} of snapshot 'os'", ex.Message);
            Assert.False(File.Exists(t.Path_("os.out")));
        }
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"took {clock.Elapsed}");
        // After the restart the origin serves again.
        using var after = t.Reader(null, null);
        Assert.True(TestStore.SameBytes(img, await t.ExportAsync("os", after, "os2.out")));
    }
}
