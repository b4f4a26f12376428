using System.Security.Cryptography;
using Snapshots.Store.Cache;
using Snapshots.Store.Chunks;

namespace Snapshots.Tests;

/// <summary>Corrupt entries are deleted and counted, never served: at open (sizes always, hashes with
/// <see cref="DiskCacheOptions.VerifyAtOpen"/>) and at read.</summary>
[Trait("Category", Category.Unit)]
public class DiskCacheIntegrityTests
{
    private static (ChunkName Name, byte[] Bytes) Chunk(int size = (64 * 1024) + 16)
    {
        var b = RandomNumberGenerator.GetBytes(size);
        return (ChunkName.OfCiphertext(b), b);
    }

    private static string EntryPath(string dir, ChunkName name)
    {
        var hex = name.ToString();
        return Path.Combine(dir, hex[..2], hex);
    }

    /// <summary>Six entries written, then four spoilt as a crash, a bad disk or a hostile user would: a flipped bit
    /// (right size, wrong hash), a truncation, an empty file, a sparse giant. Returns the good ones.</summary>
    private static async Task<(List<(ChunkName Name, byte[] Bytes)> Good, List<ChunkName> Bad)> PlantAsync(
        string dir)
    {
        var chunks = Enumerable.Range(0, 6).Select(_ => Chunk()).ToList();
        var cache = new DiskChunkCache(dir, DiskCacheWatermarkTests.Options(1L << 30));
        foreach (var (n, b) in chunks) await cache.PutAsync(n, b);
        var flipped = File.ReadAllBytes(EntryPath(dir, chunks[0].Name));
        flipped[1000] ^= 1;
        File.WriteAllBytes(EntryPath(dir, chunks[0].Name), flipped);
        File.WriteAllBytes(EntryPath(dir, chunks[1].Name), chunks[1].Bytes[..5000]);
        File.WriteAllBytes(EntryPath(dir, chunks[2].Name), []);
        using (var giant = File.OpenWrite(EntryPath(dir, chunks[3].Name))) giant.SetLength(1L << 30);
        return (chunks[4..], chunks[..4].Select(c => c.Name).ToList());
    }

    [Fact]
    public async Task Corrupt_entries_are_deleted_at_open_and_counted_when_verified()
    {
        using var t = new TestStore();
        var dir = t.Path_("cache");
        var (good, bad) = await PlantAsync(dir);

        var cache = new DiskChunkCache(dir, DiskCacheWatermarkTests.Options(1L << 30) with { VerifyAtOpen = true });
        var c = cache.Counters;
        Assert.Equal(4, c.CorruptDropped);
        Assert.Equal(2, c.Entries);
        Assert.Equal(good.Sum(g => (long)g.Bytes.Length), c.OccupancyBytes); // the giant holds no budget
        foreach (var name in bad) Assert.False(File.Exists(EntryPath(dir, name)), $"{name} left on disk");
        var buf = new byte[ChunkGeometry.ChunkSize + 16];
        foreach (var (name, bytes) in good)
        {
            Assert.Equal(bytes.Length, await cache.TryGetAsync(name, buf));
            Assert.Equal(bytes, buf[..bytes.Length]);
        }
    }

    [Fact]
    public async Task Without_hashing_at_open_impossible_sizes_go_at_open_and_bad_hashes_at_read()
    {
        using var t = new TestStore();
        var dir = t.Path_("cache");
        var (_, bad) = await PlantAsync(dir);

        var cache = new DiskChunkCache(dir, 1L << 30); // the short-lived process's constructor: no hashing
        Assert.Equal(2, cache.DroppedCorrupt); // the empty file and the giant
        Assert.False(File.Exists(EntryPath(dir, bad[2])));
        Assert.False(File.Exists(EntryPath(dir, bad[3])));
        Assert.Equal(4, cache.Count); // the flipped and the truncated one look fine until read

        var buf = new byte[ChunkGeometry.ChunkSize + 16];
        Assert.Equal(-1, await cache.TryGetAsync(bad[0], buf)); // a miss, never the bytes
        Assert.Equal(-1, await cache.TryGetAsync(bad[1], buf));
        Assert.False(File.Exists(EntryPath(dir, bad[0])));
        Assert.False(File.Exists(EntryPath(dir, bad[1])));
        Assert.Equal(4, cache.Counters.CorruptDropped);
        Assert.Equal(2, cache.Count);
    }

    [Fact]
    public async Task A_corrupt_entry_found_at_read_is_fetched_from_the_origin_and_filled_back()
    {
        using var t = new TestStore();
        var img = t.Image("os.img", size: 16L << 20);
        await t.BuildAsync("os", img);
        var dir = t.Path_("cache");
        var cache = new DiskChunkCache(dir, DiskCacheWatermarkTests.Options(1L << 30));
        Assert.True(TestStore.SameBytes(img, await t.ExportAsync("os", outName: "a.out", caches: cache)));
        var entry = Directory.GetFiles(dir, "*", SearchOption.AllDirectories).First(f => !f.EndsWith(".lock"));
        var bytes = File.ReadAllBytes(entry);
        bytes[^1] ^= 0x80; // the tag's last bit: same size, and only the hash can tell
        File.WriteAllBytes(entry, bytes);

        using var reader = t.Reader(cache);
        var output = t.Path_("b.out");
        await new Store.Layers.ImageExporter(reader).ExportAsync(await t.OpenAsync("os"), output);
        Assert.True(TestStore.SameBytes(img, output));
        Assert.Equal(1, cache.Counters.CorruptDropped);
        Assert.Equal(1, reader.Counters[^1].Hits); // the origin served that one chunk
        await reader.FlushFillsAsync(TimeSpan.FromSeconds(30));
        bytes[^1] ^= 0x80;
        Assert.Equal(bytes, File.ReadAllBytes(entry)); // filled back intact
    }
}
