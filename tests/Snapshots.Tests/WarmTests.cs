using System.Security.Cryptography;
using Snapshots.Store.Cache;
using Snapshots.Store.Chunks;
using Snapshots.Store.Tiers;

namespace Snapshots.Tests;

/// <summary>`warm` means warm: it returns once the caches it fills hold the chunks, even a cache that, like the
/// Redis tier, accepts a write at once and finishes it in the background.</summary>
[Trait("Category", Category.Unit)]
public class WarmTests
{
    /// <summary>A cache whose writes land <paramref name="delay"/> after PutAsync returns (as Redis's do), or
    /// fail then when <paramref name="fail"/> is set; past <paramref name="maxPending"/> in flight it skips a write,
    /// as the Redis tier does past its bound.</summary>
    private sealed class BackgroundWritingCache(TimeSpan delay, bool fail = false, int maxPending = int.MaxValue)
        : IChunkCache
    {
        private readonly MemoryChunkStore _store = new("slow cache");
        private int _pending;
        private long _failed, _skipped;

        public MemoryChunkStore Store => _store;
        public string Describe => _store.Describe;
        public bool VerifiesOnRead => false;

        public ValueTask<int> TryGetAsync(ChunkName name, Memory<byte> buffer, CancellationToken ct = default) =>
            _store.TryGetAsync(name, buffer, ct);

        public ValueTask PutAsync(ChunkName name, ReadOnlyMemory<byte> ciphertext, CancellationToken ct = default)
        {
            var copy = ciphertext.ToArray();
            if (Interlocked.Increment(ref _pending) > maxPending)
            {
                Interlocked.Decrement(ref _pending);
                Interlocked.Increment(ref _skipped);
                return ValueTask.CompletedTask;
            }
            _ = Task.Run(async () =>
            {
                await Task.Delay(delay, CancellationToken.None);
                if (fail) Interlocked.Increment(ref _failed);
                else await _store.PutAsync(name, copy);
                Interlocked.Decrement(ref _pending);
            }, CancellationToken.None);
            return ValueTask.CompletedTask;
        }

        public void Remove(ChunkName name) => _store.Remove(name);

        public int PendingFills => Volatile.Read(ref _pending);
        public long FailedFills => Interlocked.Read(ref _failed);
        public long SkippedFills => Interlocked.Read(ref _skipped);

        public async Task FlushFillsAsync(TimeSpan limit)
        {
            long until = Environment.TickCount64 + (long)limit.TotalMilliseconds;
            while (PendingFills > 0 && Environment.TickCount64 < until) await Task.Delay(5);
        }
    }

    private static (MemoryChunkStore Origin, List<ChunkName> Names) Origin(int chunks)
    {
        var origin = new MemoryChunkStore("origin");
        var names = new List<ChunkName>();
        for (int i = 0; i < chunks; i++) names.Add(origin.Add(RandomNumberGenerator.GetBytes(4096)));
        return (origin, names);
    }

    [Fact]
    public async Task Warm_returns_after_a_background_writing_cache_holds_every_chunk()
    {
        var (origin, names) = Origin(18);
        var cache = new BackgroundWritingCache(TimeSpan.FromMilliseconds(300));
        using var reader = new ChunkReader(origin, cache);
        var r = await CacheWarmer.WarmAsync(reader, "s", names, parallelism: 4);
        // Before: warm returned while the writes were in flight, and a process exiting then lost them.
        Assert.Equal(names.Count, cache.Store.Count);
        Assert.Equal(new FillReport(0, 0, 0), r.Fills);
    }

    [Fact]
    public async Task Warm_paces_its_reads_so_a_bounded_cache_skips_no_write()
    {
        // The origin answers at once; unpaced, 300 writes would be in flight and the cache would skip 200.
        var (origin, names) = Origin(300);
        var cache = new BackgroundWritingCache(TimeSpan.FromMilliseconds(20), maxPending: 100);
        using var reader = new ChunkReader(origin, cache);
        var r = await CacheWarmer.WarmAsync(reader, "s", names, parallelism: 16);
        Assert.Equal(0, cache.SkippedFills);
        Assert.Equal(names.Count, cache.Store.Count);
        Assert.True(r.Fills.Complete);
    }

    [Fact]
    public async Task Warm_reports_fills_a_cache_lost()
    {
        var (origin, names) = Origin(5);
        var cache = new BackgroundWritingCache(TimeSpan.FromMilliseconds(50), fail: true);
        using var reader = new ChunkReader(origin, cache);
        var r = await CacheWarmer.WarmAsync(reader, "s", names, parallelism: 2);
        Assert.Equal(new FillReport(Pending: 0, Failed: 5, Skipped: 0), r.Fills);
        Assert.False(r.Fills.Complete);
    }

    [Fact]
    public async Task Warm_through_the_host_fills_the_local_disk_cache()
    {
        using var t = new TestStore();
        await t.BuildAsync("os", t.Image("os.img"));
        var names = await ChainChunkNamesOf(t, "os");
        var r = await t.Host.WarmAsync("os", new Host.TierSettings { CacheDirectory = t.Path_("cache") }, 4);
        Assert.Equal(names, r.Chunks);
        Assert.True(r.Fills.Complete);
        Assert.Equal(names, Directory.EnumerateFiles(t.Path_("cache"), "*", SearchOption.AllDirectories).Count());
    }

    private static async Task<int> ChainChunkNamesOf(TestStore t, string name) =>
        (await Store.Layers.ChainChunkNames.ResolveAsync(t.Catalog, name)).Count;
}
