using System.Diagnostics;
using Snapshots.Store.Distributed;
using Snapshots.Tests.Services;

namespace Snapshots.Tests;

/// <summary>Redis nodes killed or stalled mid-read, and the whole cluster gone: exact bytes, bounded time.
/// Each test has its own cluster (it breaks it).</summary>
[Collection(ServicesCollection.Name)]
[Trait("Category", Category.Services)]
public class RedisFaultTests(ServicesFixture services)
{
    private async Task<(RemoteStore T, string Image, RedisChunkCache Redis)> WarmRedisAsync(
        RedisCluster cluster, string options)
    {
        var t = new RemoteStore(services.S3);
        var img = t.Image("os.img", 128L << 20);
        await t.BuildAsync("os", img);
        var redis = await RedisChunkCache.ConnectAsync(RedisAddress.Parse(cluster.Address(options)));
        using (var fill = t.Reader(null, redis)) await t.ExportAsync("os", fill, "fill.out");
        await redis.FlushFillsAsync(TimeSpan.FromSeconds(5));
        return (t, img, redis);
    }

    /// <summary>Before: chunks were placed by the masters' addresses in sorted order, so a replica promoted in place
    /// of a killed master reshuffled the placement: 0 of 114 hits striped, 38 of 114 whole. Now by hash slots.
    /// </summary>
    [Theory]
    [InlineData("layout=whole")]
    [InlineData("layout=striped")]
    public async Task A_master_failing_over_to_its_replica_keeps_the_cache_hits(string options)
    {
        using var cluster = new RedisCluster(7131, 3, replicas: 1);
        var (t, img, redis) = await WarmRedisAsync(cluster, options);
        using var _ = t;
        redis.Dispose();
        int killed = cluster.BasePort + 1;
        cluster.Signal(killed, "KILL"); // its replica (holding all its keys) takes its slots over
        RedisChunkCache? fresh = null;
        var waited = Stopwatch.StartNew();
        while (waited.Elapsed < TimeSpan.FromSeconds(60))
        {
            try
            {
                fresh = await RedisChunkCache.ConnectAsync(RedisAddress.Parse(cluster.Address(options)));
                if (fresh.Placement is { Count: 3 } p
                    && !p.Nodes.Any(n => n.ToString()!.EndsWith($":{killed}", StringComparison.Ordinal)))
                {
                    break;
                }
            }
            catch (Store.SnapshotException) { }
            fresh?.Dispose();
            fresh = null;
            await Task.Delay(500);
        }
        Assert.NotNull(fresh); // the replica was promoted
        using var cache = fresh;
        using var reader = t.Reader(null, cache);
        Assert.True(TestStore.SameBytes(img, await t.ExportAsync("os", reader, "after.out")));
        long hits = reader.Counters[0].Hits, fromOrigin = reader.Counters[^1].Hits;
        Assert.True(hits >= 0.95 * (hits + fromOrigin), $"{hits} redis hits, {fromOrigin} from the origin");
    }

    [Theory]
    [InlineData("KILL", "layout=whole")]
    [InlineData("KILL", "layout=striped")]
    [InlineData("STOP", "layout=whole")]
    [InlineData("STOP", "layout=striped")]
    public async Task Node_killed_or_stalled_mid_read_costs_one_short_deadline(string signal, string options)
    {
        using var cluster = new RedisCluster(7111, 3);
        var (t, img, redis) = await WarmRedisAsync(cluster, options + "&deadline=100&cooldown=5000");
        using var _ = t;
        using var __ = redis;
        try
        {
            using var reader = t.Reader(t.Disk(), redis);
            var clock = Stopwatch.StartNew();
            var export = Task.Run(() => t.ExportAsync("os", reader, "os.out"));
            await Task.Delay(30);
            cluster.Signal(cluster.BasePort + 1, signal);
            Assert.True(TestStore.SameBytes(img, await export));
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"took {clock.Elapsed}");
            // The dead/stalled node cost at most a deadline per in-flight request, then its breaker kept reads away.
            // (one opening, plus one per cooldown of 5 s in which a probe found the node still gone)
            long allowed = 2 + (long)(clock.Elapsed.TotalSeconds / 5);
            Assert.True(redis.Breakers[1].TimesOpened <= allowed,
                $"breaker opened {redis.Breakers[1].TimesOpened} times in {clock.Elapsed}");

            // Afterwards, reads of that node's chunks: striped rebuilds from the others; whole goes to the origin.
            using var after = t.Reader(t.Disk("c2"), redis);
            var clock2 = Stopwatch.StartNew();
            Assert.True(TestStore.SameBytes(img, await t.ExportAsync("os", after, "os2.out")));
            Assert.True(clock2.Elapsed < TimeSpan.FromSeconds(10), $"took {clock2.Elapsed}");
            if (redis.DataStripes > 0) Assert.Equal(0, after.Counters[2].Hits);
            else Assert.True(after.Counters[2].Hits > 0);
            // The node deadline decides, not the tier's.
            Assert.True(after.Counters[1].Timeouts <= 1, $"{after.Counters[1].Timeouts} tier timeouts");
        }
        finally
        {
            if (signal == "STOP") cluster.Signal(cluster.BasePort + 1, "CONT");
        }
    }

    [Fact]
    public async Task Whole_cluster_gone_falls_back_to_the_origin_in_bounded_time()
    {
        using var cluster = new RedisCluster(7121, 3);
        var (t, img, redis) = await WarmRedisAsync(cluster, "deadline=100");
        using var _ = t;
        using var __ = redis;
        cluster.Stop();
        using var reader = t.Reader(t.Disk(), redis);
        var clock = Stopwatch.StartNew();
        Assert.True(TestStore.SameBytes(img, await t.ExportAsync("os", reader, "os.out")));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"took {clock.Elapsed}");
        Assert.Equal(0, reader.Counters[1].Hits);
        Assert.True(reader.Counters[2].Hits > 0);

        // A cache whose cluster was never reachable connects within its connect timeout and only misses.
        var connect = Stopwatch.StartNew();
        using var absent = await RedisChunkCache.ConnectAsync(RedisAddress.Parse("redis://127.0.0.1:7129?connect=500"));
        Assert.True(connect.Elapsed < TimeSpan.FromSeconds(3), $"connect took {connect.Elapsed}");
        using var cold = t.Reader(null, absent);
        Assert.True(TestStore.SameBytes(img, await t.ExportAsync("os", cold, "os2.out")));
    }
}
