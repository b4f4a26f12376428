using Snapshots.Store.Chunks;
using Snapshots.Store.Distributed;
using Snapshots.Tests.Services;
using StackExchange.Redis;

namespace Snapshots.Tests;

/// <summary>The Redis Cluster tier against a real cluster: fill-back, hits, and planted corruption.</summary>
[Collection(ServicesCollection.Name)]
[Trait("Category", Category.Services)]
public class DistributedCacheTests(ServicesFixture services)
{
    [Theory]
    [InlineData("layout=whole")]
    [InlineData("layout=striped")]
    public async Task Origin_hits_fill_redis_and_the_next_cold_worker_reads_from_redis(string options)
    {
        using var t = new RemoteStore(services.S3);
        var img = t.Image("os.img");
        var built = await t.BuildAsync("os", img);
        using var redis = await RedisChunkCache.ConnectAsync(
            RedisAddress.Parse(services.Redis.Address(Patient(options))));
        Assert.Equal(options.EndsWith("whole") ? 0 : 2, redis.DataStripes);

        using (var first = t.Reader(t.Disk("c1"), redis))
        {
            Assert.True(TestStore.SameBytes(img, await t.ExportAsync("os", first, "a.out")));
            Assert.True(built.NewChunks == first.Counters[2].Hits,
                string.Join("; ", first.Counters.Select(c => c.Snapshot().ToString())) + $" new={built.NewChunks}");
        }
        await redis.FlushFillsAsync(TimeSpan.FromSeconds(30)); // fills complete in the background
        Assert.True(redis.SkippedFills + redis.FailedFills == 0,
            $"{redis.SkippedFills} fills skipped, {redis.FailedFills} failed");
        using var second = t.Reader(t.Disk("c2"), redis);
        Assert.True(TestStore.SameBytes(img, await t.ExportAsync("os", second, "b.out")));
        Assert.True(built.NewChunks == second.Counters[1].Hits,
            string.Join("; ", second.Counters.Select(c => c.Snapshot().ToString())) + $" new={built.NewChunks}");
        Assert.Equal(0, second.Counters[2].Hits);
        Assert.True(second.Counters[1].LatencyUs(50) > 0);
    }

    [Theory]
    [InlineData("layout=whole", 1)]
    [InlineData("layout=striped", 1)]
    [InlineData("layout=striped", 2)]
    public async Task Corrupt_entry_planted_in_redis_is_never_served(string options, int stripesDamaged)
    {
        using var t = new RemoteStore(services.S3);
        var img = t.Image("os.img", 16L << 20);
        await t.BuildAsync("os", img);
        using var redis = await RedisChunkCache.ConnectAsync(
            RedisAddress.Parse(services.Redis.Address(Patient(options))));
        using (var fill = t.Reader(null, redis)) await t.ExportAsync("os", fill, "fill.out");
        await redis.FlushFillsAsync(TimeSpan.FromSeconds(30));
        Assert.True(redis.SkippedFills + redis.FailedFills == 0,
            $"{redis.SkippedFills} fills skipped, {redis.FailedFills} failed");

        var m = await t.Catalog.LoadAsync("os");
        var victim = m.Entries[0].Name;
        var keys = await KeysOfAsync(redis, victim);
        Assert.Equal(redis.DataStripes == 0 ? 1 : redis.DataStripes + 1, keys.Count);
        for (int i = 0; i < stripesDamaged; i++)
        {
            var bytes = (byte[])(await redis.Database.StringGetAsync(keys[i]))!;
            bytes[^7] ^= 0x40; // past any header: the payload is wrong, the length right
            await redis.Database.StringSetAsync(keys[i], bytes);
        }

        using var reader = t.Reader(null, redis);
        Assert.True(TestStore.SameBytes(img, await t.ExportAsync("os", reader, "os.out")));
        if (redis.DataStripes > 0 && stripesDamaged == 1)
        {
            // One bad stripe: the chunk is rebuilt from the others and parity, still a hit.
            Assert.True(redis.Rebuilt >= 1);
            Assert.Equal(0, reader.Counters[0].Corrupt);
            Assert.Equal(0, reader.Counters[1].Hits);
        }
        else
        {
            Assert.Equal(1, reader.Counters[0].Corrupt); // dropped, and fetched from the origin
            Assert.Equal(1, reader.Counters[1].Hits);
            await redis.FlushFillsAsync(TimeSpan.FromSeconds(5));
            Assert.True(await redis.TryGetAsync(victim, new byte[600_000]) > 0); // and filled back intact
        }
    }

    [Fact]
    public async Task Corrupt_entries_in_the_local_cache_and_redis_at_once_still_give_exact_bytes()
    {
        using var t = new RemoteStore(services.S3);
        var img = t.Image("os.img", 16L << 20);
        await t.BuildAsync("os", img);
        using var redis = await RedisChunkCache.ConnectAsync(
            RedisAddress.Parse(services.Redis.Address(Patient("layout=whole"))));
        var disk = t.Disk();
        using (var fill = t.Reader(disk, redis)) await t.ExportAsync("os", fill, "fill.out");
        await redis.FlushFillsAsync(TimeSpan.FromSeconds(5));
        var m = await t.Catalog.LoadAsync("os");
        var victim = m.Entries[0].Name;
        var hex = victim.ToString();
        var file = Path.Combine(t.Path_("cache"), hex[..2], hex);
        var b = File.ReadAllBytes(file); b[1000] ^= 1; File.WriteAllBytes(file, b);
        var key = (await KeysOfAsync(redis, victim))[0];
        await redis.Database.StringSetAsync(key, new byte[1000]);

        using var reader = t.Reader(t.Disk(), redis);
        Assert.True(TestStore.SameBytes(img, await t.ExportAsync("os", reader, "os.out")));
        Assert.Equal(1, reader.Counters[0].Corrupt);
        Assert.Equal(1, reader.Counters[1].Corrupt);
        Assert.Equal(1, reader.Counters[2].Hits);
    }

    /// <summary>These tests are about what is filled, hit and dropped, not about deadlines: a node deadline that a
    /// loaded machine cannot miss (the default 100 ms turned a busy moment into a miss and failed them).</summary>
    private static string Patient(string options) => options + "&deadline=2000";

    /// <summary>The keys that hold a chunk, stripe order (found by scanning each master).</summary>
    internal static async Task<List<RedisKey>> KeysOfAsync(RedisChunkCache redis, ChunkName name)
    {
        var found = new List<RedisKey>();
        var mux = redis.Database.Multiplexer;
        foreach (var ep in redis.Placement!.Nodes)
        {
            var server = mux.GetServer(ep);
            await foreach (var k in server.KeysAsync(pattern: $"*{name}*")) found.Add(k);
        }
        found.Sort((a, b) => string.CompareOrdinal(a.ToString()[^1..], b.ToString()[^1..]));
        return found;
    }
}
