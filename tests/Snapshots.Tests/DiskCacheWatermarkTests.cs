using System.Security.Cryptography;
using Snapshots.Store;
using Snapshots.Store.Cache;
using Snapshots.Store.Chunks;

namespace Snapshots.Tests;

/// <summary>Eviction in batches between the watermarks, and protection leases.</summary>
[Trait("Category", Category.Unit)]
public class DiskCacheWatermarkTests
{
    private const int Size = (64 * 1024) + 16;

    // Ten and a half entries: high (0.9) at 9.45 entries, low (0.8) at 8.4, so no count of entries sits on a mark.
    private const long Budget = (10 * Size) + (Size / 2);

    /// <summary>No free-space floor (the test disk's free space must not decide), no hashing at open.</summary>
    internal static DiskCacheOptions Options(long budget = Budget) =>
        new(budget) { MinFreeBytes = 0, MinFreeRatio = 0, VerifyAtOpen = false };

    private static (ChunkName Name, byte[] Bytes) Chunk(int size = Size)
    {
        var b = RandomNumberGenerator.GetBytes(size);
        return (ChunkName.OfCiphertext(b), b);
    }

    private static async Task<bool> HasAsync(DiskChunkCache cache, ChunkName name) =>
        await cache.TryGetAsync(name, new byte[ChunkGeometry.ChunkSize + 16]) > 0;

    private static int FilesIn(string dir) =>
        Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Count(f => !f.EndsWith(".lock"));

    [Fact]
    public void Defaults_and_bad_watermarks()
    {
        var o = new DiskCacheOptions(1L << 30);
        Assert.Equal(0.9, o.HighWatermarkRatio);
        Assert.Equal(0.8, o.LowWatermarkRatio);
        Assert.Equal(64L << 20, o.MinFreeBytes);
        Assert.True(o.VerifyAtOpen);
        Assert.Throws<ArgumentOutOfRangeException>(() => o with { HighWatermarkRatio = 1.5 });
        Assert.Throws<ArgumentOutOfRangeException>(() => o with { LowWatermarkRatio = 0 });
        Assert.Throws<ArgumentOutOfRangeException>(() => o with { MinFreeBytes = -1 });
        using var t = new TestStore();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() =>
            new DiskChunkCache(t.Path_("c"), o with { HighWatermarkRatio = 0.5, LowWatermarkRatio = 0.7 }));
        Assert.Equal(nameof(DiskCacheOptions.LowWatermarkRatio), e.ParamName);
        var small = Assert.Throws<InvalidInputException>(() => new DiskChunkCache(t.Path_("c"), Options(1000)));
        Assert.Equal("cache-size", small.Parameter);
    }

    [Fact]
    public async Task Passing_the_high_watermark_evicts_a_batch_down_to_the_low_one()
    {
        using var t = new TestStore();
        var dir = t.Path_("cache");
        var cache = new DiskChunkCache(dir, Options());
        var chunks = Enumerable.Range(0, 12).Select(_ => Chunk()).ToList();
        for (int i = 0; i < 9; i++) await cache.PutAsync(chunks[i].Name, chunks[i].Bytes);
        Assert.Equal(0, cache.Evictions); // 9 entries: under the high watermark (9.45)
        Assert.Equal(9, cache.Count);

        await cache.PutAsync(chunks[9].Name, chunks[9].Bytes); // 10: past it, down to the low one (8.4): 8 left
        var c = cache.Counters;
        Assert.Equal(2, c.Evictions);
        Assert.Equal(2L * Size, c.EvictedBytes);
        Assert.Equal(8, c.Entries);
        Assert.Equal(8L * Size, c.OccupancyBytes);
        Assert.True(c.OccupancyBytes <= c.LowWatermarkBytes);
        Assert.Equal(8, FilesIn(dir)); // the evicted files are gone, not only forgotten
        Assert.False(await HasAsync(cache, chunks[0].Name)); // oldest first
        Assert.False(await HasAsync(cache, chunks[1].Name));
        for (int i = 2; i < 10; i++) Assert.True(await HasAsync(cache, chunks[i].Name), $"chunk {i}");

        await cache.PutAsync(chunks[10].Name, chunks[10].Bytes); // 9: the batch left room, no eviction
        Assert.Equal(2, cache.Evictions);
        await cache.PutAsync(chunks[11].Name, chunks[11].Bytes); // 10 again: the next batch
        Assert.Equal(4, cache.Evictions);
        Assert.Equal(8, cache.Count);
    }

    [Fact]
    public async Task Opening_a_cache_over_its_high_watermark_evicts_down_to_the_low_one()
    {
        using var t = new TestStore();
        var dir = t.Path_("cache");
        var big = new DiskChunkCache(dir, Options(4 * Budget));
        for (int i = 0; i < 20; i++)
        {
            var (n, b) = Chunk();
            await big.PutAsync(n, b);
        }
        var reopened = new DiskChunkCache(dir, Options());
        Assert.Equal(8, reopened.Count);
        Assert.Equal(12, reopened.Counters.Evictions);
        Assert.Equal(8, FilesIn(dir));
    }

    [Fact]
    public async Task Protected_chunks_survive_eviction_pressure_until_their_last_lease_ends()
    {
        using var t = new TestStore();
        var dir = t.Path_("cache");
        var cache = new DiskChunkCache(dir, Options());
        var kept = Enumerable.Range(0, 5).Select(_ => Chunk()).ToList();
        var first = cache.Protect(kept.Select(k => k.Name));
        var second = cache.Protect([kept[0].Name, kept[0].Name]); // duplicates count as often as given
        for (int i = 0; i < 4; i++) await cache.PutAsync(kept[i].Name, kept[i].Bytes); // the oldest entries
        for (int i = 0; i < 30; i++)
        {
            var (n, b) = Chunk();
            await cache.PutAsync(n, b);
            if (i == 10) await cache.PutAsync(kept[4].Name, kept[4].Bytes); // protected before it was cached
        }
        var c = cache.Counters;
        Assert.True(c.Evictions >= 20, $"{c.Evictions} evictions");
        Assert.True(c.ProtectedSkips > 0);
        Assert.Equal(0, c.ProtectedOverruns); // there was always something else to evict
        Assert.Equal(5, c.ProtectedChunks);
        Assert.True(c.OccupancyBytes <= c.HighWatermarkBytes);
        foreach (var (name, _) in kept) Assert.True(await HasAsync(cache, name));

        first.Dispose();
        first.Dispose(); // a second dispose releases nothing twice: kept[0] stays protected by the second lease
        Assert.Equal(1, cache.Counters.ProtectedChunks);
        for (int i = 0; i < 30; i++)
        {
            var (n, b) = Chunk();
            await cache.PutAsync(n, b);
        }
        Assert.True(await HasAsync(cache, kept[0].Name));
        for (int i = 1; i < 5; i++) Assert.False(await HasAsync(cache, kept[i].Name), $"kept {i}");

        second.Dispose();
        Assert.Equal(0, cache.Counters.ProtectedChunks);
        for (int i = 0; i < 30; i++)
        {
            var (n, b) = Chunk();
            await cache.PutAsync(n, b);
        }
        Assert.False(await HasAsync(cache, kept[0].Name));
    }

    [Fact]
    public async Task With_everything_protected_the_cache_goes_over_budget_and_says_so()
    {
        using var t = new TestStore();
        var dir = t.Path_("cache");
        var cache = new DiskChunkCache(dir, Options());
        var chunks = Enumerable.Range(0, 14).Select(_ => Chunk()).ToList();
        var lease = cache.Protect(chunks.Select(k => k.Name));
        foreach (var (n, b) in chunks) await cache.PutAsync(n, b);
        var c = cache.Counters;
        Assert.Equal(14, c.Entries);
        Assert.Equal(0, c.Evictions);
        Assert.True(c.OccupancyBytes > c.BudgetBytes);
        Assert.True(c.ProtectedOverruns > 0);
        foreach (var (n, _) in chunks) Assert.True(await HasAsync(cache, n));

        lease.Dispose(); // the restore ended: back under the low watermark at once, without waiting for a write
        c = cache.Counters;
        Assert.True(c.OccupancyBytes <= c.LowWatermarkBytes, $"{c.OccupancyBytes} bytes");
        Assert.Equal(8, c.Entries);
        Assert.Equal(8, FilesIn(dir));
    }

    [Fact]
    public async Task Protecting_a_restore_sized_set_of_names_is_cheap()
    {
        using var t = new TestStore();
        var cache = new DiskChunkCache(t.Path_("cache"), Options());
        var names = Enumerable.Range(0, 8192).Select(_ => ChunkName.OfCiphertext(RandomNumberGenerator.GetBytes(32)))
            .ToArray();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < 10; i++) cache.Protect(names).Dispose();
        Assert.True(sw.ElapsedMilliseconds < 2000, $"{sw.ElapsedMilliseconds} ms for 10 leases of 8k names");
        Assert.Equal(0, cache.Counters.ProtectedChunks);
        var (n, b) = Chunk();
        await cache.PutAsync(n, b); // still works: nothing left locked
        Assert.True(await HasAsync(cache, n));
    }
}
