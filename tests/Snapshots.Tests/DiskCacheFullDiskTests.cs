using System.Security.Cryptography;
using Snapshots.Store.Cache;
using Snapshots.Store.Chunks;

namespace Snapshots.Tests;

/// <summary>A disk that really fills: each test mounts its own 8 MiB tmpfs (root), unmounted on dispose. The
/// cache's budget (64 MiB) is far above the disk, as when an operator sizes it for a disk others also fill. Those
/// run mount: category process, on each test (one is in-process).</summary>
public class DiskCacheFullDiskTests
{
    private const int Size = ChunkGeometry.ChunkSize + 16;
    private const long Budget = 64L << 20;

    private static (ChunkName Name, byte[] Bytes) Chunk()
    {
        var b = RandomNumberGenerator.GetBytes(Size);
        return (ChunkName.OfCiphertext(b), b);
    }

    private static string[] TempFiles(string dir) =>
        Directory.GetFiles(dir, "*.tmp", SearchOption.AllDirectories);

    [Fact]
    [Trait("Category", Category.Process)]
    public async Task A_full_disk_drops_the_fills_reads_go_on_and_nothing_partial_is_left()
    {
        using var t = new TestStore();
        var img = t.Image("os.img", size: 16L << 20);
        await t.BuildAsync("os", img);
        using var disk = new Tmpfs(t.Path_("disk"), "8m");
        // No floor: the writes themselves meet ENOSPC.
        var cache = new DiskChunkCache(Path.Combine(disk.Dir, "cache"), DiskCacheWatermarkTests.Options(Budget));
        var ballast = disk.FillWithBallast(); // someone else filled the disk
        Assert.True(disk.FreeBytes < Size, $"{disk.FreeBytes} bytes free after the ballast");

        using (var reader = t.Reader(cache))
        {
            var output = t.Path_("a.out");
            await new Store.Layers.ImageExporter(reader).ExportAsync(await t.OpenAsync("os"), output);
            Assert.True(TestStore.SameBytes(img, output)); // the origin served every read
            var fills = await reader.FlushFillsAsync(TimeSpan.FromSeconds(30));
            var c = cache.Counters;
            Assert.True(c.FullDiskSkips > 0, "no fill was dropped");
            Assert.True(c.FullDiskEvents >= c.FullDiskSkips);
            Assert.Equal(c.FullDiskSkips, fills.Skipped); // the reader reports them: a warm-up would fail
            Assert.Equal(0, fills.Failed); // dropped, not thrown
            Assert.Equal(0, c.Entries);
            Assert.Empty(TempFiles(disk.Dir));
        }

        // The disk frees up: the same cache fills again, evicting batches whenever the 8 MiB run out.
        File.Delete(ballast);
        long skipsBefore = cache.Counters.FullDiskSkips;
        var chunks = Enumerable.Range(0, 40).Select(_ => Chunk()).ToList();
        var buf = new byte[Size];
        foreach (var (n, b) in chunks)
        {
            await cache.PutAsync(n, b);
            Assert.Equal(Size, await cache.TryGetAsync(n, buf)); // every fill landed, room made when needed
        }
        var after = cache.Counters;
        Assert.Equal(skipsBefore, after.FullDiskSkips);
        Assert.True(after.Evictions >= 25, $"{after.Evictions} evictions"); // 40 chunks, at most 15 fit
        Assert.True(after.FullDiskEvents > 0);
        Assert.True(after.Evictions > after.FullDiskEvents, "eviction ran in batches, not one entry per event");
        Assert.Empty(TempFiles(disk.Dir));
        Assert.Equal(after.Entries, Directory.GetFiles(Path.Combine(disk.Dir, "cache"), "*",
            SearchOption.AllDirectories).Count(f => !f.EndsWith(".lock")));
    }

    [Fact]
    [Trait("Category", Category.Process)]
    public async Task The_free_space_floor_is_never_crossed()
    {
        using var t = new TestStore();
        using var disk = new Tmpfs(t.Path_("disk"), "8m");
        const long Floor = 5L << 20;
        var options = DiskCacheWatermarkTests.Options(Budget) with { MinFreeBytes = Floor };
        var cache = new DiskChunkCache(Path.Combine(disk.Dir, "cache"), options);
        var buf = new byte[Size];
        long lowest = long.MaxValue;
        for (int i = 0; i < 20; i++)
        {
            var (n, b) = Chunk();
            await cache.PutAsync(n, b);
            Assert.Equal(Size, await cache.TryGetAsync(n, buf));
            lowest = Math.Min(lowest, disk.FreeBytes);
        }
        var c = cache.Counters;
        Assert.True(lowest >= Floor, $"{lowest} bytes free at the lowest, under the {Floor}-byte floor");
        Assert.True(c.FullDiskEvents > 0);
        Assert.True(c.Evictions > 0);
        Assert.Equal(0, c.FullDiskSkips);
        Assert.InRange(c.Entries, 3, 6); // about 3 MiB above the floor: room for 5 or 6 entries
    }

    /// <summary>The reader fills up to 64 chunks at once. Checked one by one, each would see room the others are
    /// about to take, and together they would cross the floor: each counts the writes in flight.</summary>
    [Fact]
    [Trait("Category", Category.Process)]
    public async Task Bursts_of_concurrent_fills_keep_the_floor()
    {
        using var t = new TestStore();
        using var disk = new Tmpfs(t.Path_("disk"), "8m");
        const long Floor = 3L << 20;
        var options = DiskCacheWatermarkTests.Options(Budget) with { MinFreeBytes = Floor };
        var cache = new DiskChunkCache(Path.Combine(disk.Dir, "cache"), options);
        long lowest = long.MaxValue;
        void Sample()
        {
            long free = disk.FreeBytes;
            long seen;
            while (free < (seen = Interlocked.Read(ref lowest))
                && Interlocked.CompareExchange(ref lowest, free, seen) != seen) { }
        }
        bool done = false;
        var sampler = new Thread(() => { while (!Volatile.Read(ref done)) Sample(); }) { IsBackground = true };
        sampler.Start();
        for (int round = 0; round < 6; round++)
        {
            var chunks = Enumerable.Range(0, 32).Select(_ => Chunk()).ToList();
            using var start = new Barrier(chunks.Count);
            await Task.WhenAll(chunks.Select(c => Task.Factory.StartNew(() =>
            {
                start.SignalAndWait();
                cache.PutAsync(c.Name, c.Bytes).AsTask().GetAwaiter().GetResult();
                Sample();
            }, TaskCreationOptions.LongRunning)));
        }
        Volatile.Write(ref done, true);
        sampler.Join();
        var counters = cache.Counters;
        Assert.True(lowest >= Floor, $"{lowest} bytes free at the lowest, under the {Floor}-byte floor");
        Assert.True(counters.FullDiskEvents > 100, $"{counters.FullDiskEvents} full-disk events");
        Assert.InRange(counters.Entries, 4, 10); // about 5 MiB above the floor: room for 9 or 10 entries
        Assert.Empty(TempFiles(disk.Dir));
    }

    /// <summary>In-process: a floor no disk can meet stands for a full one, and reads go on from the origin.</summary>
    [Fact]
    [Trait("Category", Category.Unit)]
    public async Task A_floor_above_the_free_space_drops_every_fill_and_reads_go_on()
    {
        using var t = new TestStore();
        var img = t.Image("os.img", size: 16L << 20);
        await t.BuildAsync("os", img);
        var dir = t.Path_("cache");
        var cache = new DiskChunkCache(dir, DiskCacheWatermarkTests.Options(Budget) with { MinFreeBytes = 1L << 60 });
        using var reader = t.Reader(cache);
        var output = t.Path_("a.out");
        await new Store.Layers.ImageExporter(reader).ExportAsync(await t.OpenAsync("os"), output);
        Assert.True(TestStore.SameBytes(img, output));
        var fills = await reader.FlushFillsAsync(TimeSpan.FromSeconds(30));
        var c = cache.Counters;
        Assert.True(c.FullDiskSkips > 0);
        Assert.Equal(c.FullDiskSkips, c.FullDiskEvents);
        Assert.Equal(c.FullDiskSkips, fills.Skipped);
        Assert.Equal(0, c.Entries);
        Assert.DoesNotContain(Directory.GetFiles(dir, "*", SearchOption.AllDirectories), f => !f.EndsWith(".lock"));
    }
}
