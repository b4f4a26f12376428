using Snapshots.Store.Origin;
using Snapshots.Tests.Services;

namespace Snapshots.Tests;

/// <summary>snapd over the real services: an S3 origin (s3rver) and a Redis Cluster tier, as on a worker host.
/// </summary>
[Trait("Category", "services")]
[Collection(ServicesCollection.Name)]
public sealed class SnapdServicesTests(ServicesFixture services)
{
    [Fact]
    public async Task Restores_read_the_s3_origin_first_then_the_redis_tier_another_host_filled()
    {
        using var remote = new RemoteStore(services.S3);
        await StoreMarker.InitAsync(remote.Blobs);
        var os = remote.Image("os.img", size: 16L << 20);
        var fn = remote.Image("fn.img", size: 16L << 20, function: 2);
        await remote.BuildAsync("os", os);
        await remote.BuildAsync("fn", fn, parent: "os", tenant: "acme");
        string store = services.S3.Address(remote.Prefix);
        string redis = services.Redis.Address();

        // Host A: cold everywhere; the origin serves, Redis and A's disk cache are filled.
        using (var a = await SnapdProcess.StartAsync(store, remote.Path_("keyring"), remote.Path_("state-a"),
            ["--redis", redis, "--cache-dir", remote.Path_("cache-a")]))
        {
            var first = await RestoreAsync(a, fn);
            Assert.True(Hits(first, "origin") > 0, first.ToString());
            Assert.Equal(0, await a.StopAsync());
        }
        // Host B: its own empty disk cache; what the origin gave host A comes from Redis now.
        using var b = await SnapdProcess.StartAsync(store, remote.Path_("keyring"), remote.Path_("state-b"),
            ["--redis", redis, "--cache-dir", remote.Path_("cache-b")]);
        var second = await RestoreAsync(b, fn);
        Assert.True(Hits(second, "redis") > 0, second.ToString());
        Assert.Equal(0, Hits(second, "origin"));
        Assert.Matches("snapd_tier_hits_total{tier=\"redis[^}]*} [1-9]", await b.MetricsAsync());
    }

    private static async Task<System.Text.Json.JsonElement> RestoreAsync(SnapdProcess d, string image)
    {
        var r = await d.CreateAsync(new { snapshot = "fn", tenant = "acme" });
        var vmm = await SnapdTests.VmmAsync(r.GetProperty("socketPath").GetString()!, image, "--touch", "all",
            "--vcpus", "2");
        Assert.True(vmm.Exit == 0, $"replay-vmm: {vmm.Stdout} {vmm.Stderr}\n{d.Output}");
        return await d.WaitEndedAsync(r.GetProperty("id").GetString()!);
    }

    private static long Hits(System.Text.Json.JsonElement restore, string tierPrefix)
    {
        long hits = 0;
        foreach (var t in restore.GetProperty("tiers").EnumerateArray())
        {
            if (t.GetProperty("tier").GetString()!.StartsWith(tierPrefix, StringComparison.Ordinal))
                hits += t.GetProperty("hits").GetInt64();
        }
        return hits;
    }
}
