using Snapshots.Store.Cache;
using Snapshots.Store.Chunks;
using Snapshots.Store.Layers;
using Snapshots.Store.Tiers;

namespace Snapshots.Tests;

/// <summary>The chunk loops of export, verify and warm stop at a cancelled token within one chunk per worker, even
/// when the reads under them never look at it (a local file read does not).</summary>
[Trait("Category", Category.Unit)]
public class ChunkLoopCancellationTests
{
    /// <summary>A store that ignores the token and cancels <paramref name="cts"/> at its first read, as a signal
    /// landing mid-way would.</summary>
    private sealed class CancelOnFirstRead(IChunkStore inner, CancellationTokenSource cts) : IChunkStore
    {
        public int Reads;

        public string Describe => inner.Describe;

        public async ValueTask<int> TryGetAsync(ChunkName name, Memory<byte> buffer, CancellationToken ct = default)
        {
            if (Interlocked.Increment(ref Reads) == 1) await cts.CancelAsync();
            return await inner.TryGetAsync(name, buffer, CancellationToken.None);
        }
    }

    private const int Workers = 2;

    private static async Task<(TestStore T, SnapshotChain Chain)> SnapshotAsync()
    {
        var t = new TestStore();
        await t.BuildAsync("os", t.Image("os.img", size: 32L << 20));
        var chain = await t.OpenAsync("os");
        Assert.True(chain.ChunkCount >= 32);
        return (t, chain);
    }

    [Fact]
    public async Task Verify_stops_at_the_token()
    {
        var (t, chain) = await SnapshotAsync();
        using var _ = t;
        using var cts = new CancellationTokenSource();
        var origin = new CancelOnFirstRead(new OriginChunkStore(t.Blobs), cts);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => new ChainVerifier(origin).VerifyAsync(chain, Workers, null, cts.Token));
        Assert.InRange(origin.Reads, 1, Workers);
    }

    [Fact]
    public async Task Export_stops_at_the_token_and_leaves_no_file()
    {
        var (t, chain) = await SnapshotAsync();
        using var _ = t;
        using var cts = new CancellationTokenSource();
        var origin = new CancelOnFirstRead(new OriginChunkStore(t.Blobs), cts);
        using (var reader = new ChunkReader(origin))
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(
                () => new ImageExporter(reader).ExportAsync(chain, t.Path_("os.out"), Workers, null, cts.Token));
        }
        Assert.InRange(origin.Reads, 1, Workers);
        Assert.Empty(Directory.GetFiles(t.Dir, "os.out*"));
    }

    [Fact]
    public async Task Warm_stops_at_the_token()
    {
        var (t, _) = await SnapshotAsync();
        using var __ = t;
        using var cts = new CancellationTokenSource();
        var origin = new CancelOnFirstRead(new OriginChunkStore(t.Blobs), cts);
        var names = await ChainChunkNames.ResolveAsync(t.Catalog, "os");
        using var reader = new ChunkReader(origin, new MemoryChunkStore("cache"));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => CacheWarmer.WarmAsync(reader, "os", names, Workers, null, cts.Token));
        Assert.InRange(origin.Reads, 1, Workers);
    }
}
