using Snapshots.ChunkFs.Memory;
using Snapshots.Host;
using Snapshots.Host.Restore;
using Snapshots.Prefetch;
using Snapshots.Store.Chunks;

namespace Snapshots.Tests;

/// <summary>Restores given <see cref="RestoreRequest.Shared"/>: they lease the host's memory instead of opening
/// their own, share one instance per snapshot, and leave the shared reader and memory to their owner.</summary>
[Trait("Category", Category.Unit)]
public class SharedRestoreTests
{
    [Fact]
    public async Task Restores_of_one_snapshot_share_its_memory_tier_and_release_only_their_leases()
    {
        using var t = new TestStore();
        await HostMemoryTests.TwoChainsAsync(t);
        using var reader = await t.Host.OpenReaderAsync(TierSettings.OriginOnly);
        using var host = new HostMemory(64L << 20, reserve: 0);
        var shared = new RestoreResources(reader, host, new TokenBucket(64L << 20, 4L * ChunkGeometry.ChunkSize));
        RestoreRequest Request(string name, int vm) => new()
        {
            Name = name, SocketPath = t.Path_($"vm{vm}.sock"), Prefetch = PrefetchMode.Off, Shared = shared,
        };

        var first = await RestoreSession.PrepareAsync(t.Host, Request("rt", 1));
        var second = await RestoreSession.PrepareAsync(t.Host, Request("rt", 2));
        var other = await RestoreSession.PrepareAsync(t.Host, Request("os", 3));
        Assert.Equal(3, host.Restores);
        Assert.Equal(2, host.Instances); // rt once, os once
        // Each warm-up loads its chain's first data chunk: rt's once for both, os's copied from rt's (the same
        // os chunk), so one origin read in all.
        Assert.Equal(1, HostMemoryTests.OriginReads(reader));
        Assert.True(host.SharedHits >= 1);

        first.Dispose();
        second.Dispose();
        other.Dispose();
        Assert.Equal(0, host.Restores);
        Assert.Equal(0, host.Instances);
        Assert.Equal(0, host.ResidentBytes);
        // The shared resources serve the next restore.
        using var again = await RestoreSession.PrepareAsync(t.Host, Request("os", 4));
        Assert.Equal(1, host.Restores);
    }
}
