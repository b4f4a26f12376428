using Snapshots.ChunkFs.Memory;
using Snapshots.ChunkFs.Uffd;

namespace Snapshots.Tests;

/// <summary>The fault path with the chunk in memory allocates nothing per fault: the handler thread's allocation
/// does not grow with the number of faults it serves.</summary>
[Trait("Category", Category.Process)]
public class FaultPathAllocationTests
{
    private static async Task<(long Allocated, long Faults)> ServeAsync(TestStore t, string image, int pages, int seed,
        HostMemory? host = null)
    {
        var chain = await t.OpenAsync("data");
        using var reader = t.Reader();
        // Alone (snapctl) or attached to a host memory (snapd): the hit path must be the same.
        using var lease = host?.Lease(chain, null, reader);
        using var own = lease is null ? new ResidentChunks(chain, reader, 1L << 30) : null;
        var memory = lease?.Memory ?? own!;
        await memory.PreloadAsync(2, CancellationToken.None);
        var socket = t.Path_($"alloc-{seed}.sock");
        using var listener = new HandshakeListener(socket);
        using var vmm = Loader.StartVmm(
            ["--image", image, "--socket", socket, "--touch", $"random:{pages}:{seed}", "--timeout", "60"]);
        using var session = await listener.AcceptAsync(
            chain.ImageSize, TimeSpan.FromSeconds(10), CancellationToken.None);
        // One fault per touch.
        var handler = new UffdHandler(session, memory, new UffdHandlerOptions { FaultAroundPages = 1 });
        // Run on a dedicated thread so the measurement sees only the handler's own allocations.
        long allocated = 0;
        RestoreStats? stats = null;
        var thread = new Thread(() =>
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            stats = handler.Run(CancellationToken.None);
            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        });
        thread.Start();
        await vmm.WaitForExitAsync();
        thread.Join(TimeSpan.FromSeconds(30));
        Assert.Equal(0, vmm.ExitCode);
        Assert.Equal("exited", stats!.Outcome);
        return (allocated, stats.Faults);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Handler_allocation_does_not_grow_with_faults(bool hostMemory)
    {
        using var t = new TestStore();
        var image = t.Path_("data.img");
        var bytes = new byte[16 << 20];
        new Random(1).NextBytes(bytes); // every chunk holds data: every touch is a UFFDIO_COPY
        File.WriteAllBytes(image, bytes);
        await t.BuildAsync("data", image);

        using var host = hostMemory ? new HostMemory(1L << 30) : null;
        await ServeAsync(t, image, 3000, 3, host); // warm-up: the JIT's tiering allocates while code gets hot
        var small = await ServeAsync(t, image, 400, 1, host);
        var large = await ServeAsync(t, image, 4000, 2, host);
        Assert.True(large.Faults >= 3600, $"{large.Faults} faults");
        // Ten times the faults, not one more object: under a kilobyte of slack for runtime noise.
        Assert.True(large.Allocated - small.Allocated < 1024,
            $"{large.Allocated - small.Allocated} more bytes for {large.Faults - small.Faults} more faults");
    }
}
