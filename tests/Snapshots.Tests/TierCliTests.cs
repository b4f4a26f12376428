using Snapshots.Tests.Services;

namespace Snapshots.Tests;

/// <summary>snapctl with the tier options, as a user runs it against S3 and a Redis Cluster.</summary>
[Collection(ServicesCollection.Name)]
[Trait("Category", Category.Services)]
public class TierCliTests(ServicesFixture services)
{
    [Fact]
    public async Task Build_warm_export_ls_gc_over_s3_and_redis_through_the_binary()
    {
        using var t = new TestStore();
        var store = services.S3.Address(Guid.NewGuid().ToString("N"));
        var redis = services.Redis.Address();
        var os = t.Image("os.img");
        var init = await Snapctl.RunAsync(t, "init", "--store", store);
        Assert.True(init.ExitCode == 0, init.Stderr);

        var b = await Snapctl.RunAsync(t, "build", "--store", store, "--name", "os", "--layer", "os", "--memory", os,
            "--json");
        Assert.True(b.ExitCode == 0, b.Stderr);
        int newChunks = b.Json.GetProperty("newChunks").GetInt32();

        var w = await Snapctl.RunAsync(
            t, "warm", "--store", store, "--name", "os", "--cache-dir", t.Path_("cache"), "--distributed", redis,
            "--json");
        Assert.True(w.ExitCode == 0, w.Stderr);
        Assert.Equal(newChunks, w.Json.GetProperty("chunks").GetInt32());
        var origin = w.Json.GetProperty("tiers")[2];
        Assert.Equal(newChunks, origin.GetProperty("hits").GetInt32());
        Assert.Equal(newChunks, Directory.EnumerateFiles(t.Path_("cache"), "*", SearchOption.AllDirectories).Count());
        // Warm returned once both caches held every chunk: the Redis tier's background writes included.
        var fills = w.Json.GetProperty("fills");
        Assert.True(fills.GetProperty("complete").GetBoolean(), fills.ToString());

        // A warm local cache serves everything; a cold one next to a warm Redis gets it from Redis.
        var e1 = await Snapctl.RunAsync(
            t, "export", "--store", store, "--name", "os", "--out", t.Path_("a.out"), "--cache-dir", t.Path_("cache"),
            "--distributed", redis, "--json");
        Assert.True(e1.ExitCode == 0, e1.Stderr);
        Assert.True(TestStore.SameBytes(os, t.Path_("a.out")));
        Assert.Equal(1.0, e1.Json.GetProperty("tiers")[0].GetProperty("hitRatio").GetDouble());
        var e2 = await Snapctl.RunAsync(
            t, "export", "--store", store, "--name", "os", "--out", t.Path_("b.out"), "--cache-dir", t.Path_("cold"),
            "--distributed", redis, "--json");
        Assert.True(e2.ExitCode == 0, e2.Stderr);
        Assert.True(TestStore.SameBytes(os, t.Path_("b.out")));
        var redisTier = e2.Json.GetProperty("tiers")[1];
        Assert.Equal(newChunks, redisTier.GetProperty("hits").GetInt32());
        Assert.True(redisTier.GetProperty("latencySeconds").GetProperty("p99").GetDouble() > 0);

        var ls = await Snapctl.RunAsync(t, "ls", "--store", store, "--json");
        Assert.Equal(1, ls.Json.GetProperty("snapshots").GetArrayLength());
        var v = await Snapctl.RunAsync(t, "verify", "--store", store, "--name", "os");
        Assert.True(v.ExitCode == 0, v.Stderr);
        Assert.Equal(0, (await Snapctl.RunAsync(t, "rm", "--store", store, "--name", "os")).ExitCode);
        var gc = await Snapctl.RunAsync(t, "gc", "--store", store, "--json");
        Assert.Equal(newChunks, gc.Json.GetProperty("chunksDeleted").GetInt32());
    }

    [Fact]
    public async Task Tier_option_errors_name_the_problem()
    {
        using var t = new TestStore();
        var badStore = await Snapctl.RunAsync(t, "ls", "--store", "s3://X/y");
        Assert.Equal(1, badStore.ExitCode);
        Assert.Contains("not a valid bucket name", badStore.Stderr);
        var badRedis = await Snapctl.RunAsync(
            t, "warm", "--name", "os", "--cache-dir", t.Path_("c"), "--distributed", "redis://nohost");
        Assert.Equal(1, badRedis.ExitCode);
        Assert.Contains("'nohost' is not HOST:PORT", badRedis.Stderr);
        var noCache = await Snapctl.RunAsync(t, "warm", "--name", "os");
        Assert.Equal(1, noCache.ExitCode);
        Assert.Contains("needs a local cache directory to fill (option --cache-dir)", noCache.Stderr);
    }
}
