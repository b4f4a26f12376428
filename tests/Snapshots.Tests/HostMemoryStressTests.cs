using Snapshots.ChunkFs.Memory;
using Snapshots.Store.Chunks;
using Snapshots.Store.Tiers;

namespace Snapshots.Tests;

/// <summary>The host memory's hot path under contention: random pins, loads, reads and evictions across
/// instances sharing a small budget, with instances attached and released meanwhile; every byte served, while
/// pinned and after, is the image's.</summary>
[Trait("Category", Category.Unit)]
public class HostMemoryStressTests
{
    private const int Chunk = ChunkGeometry.ChunkSize;

    private sealed record Served(ResidentChunks Memory, byte[] Image, int[] Data);

    private static Served Of(ResidentChunks memory, byte[] image) => new(memory, image,
        [.. Enumerable.Range(0, memory.ChunkCount).Where(c => !memory.IsZeroChunk(c))]);

    [Fact]
    public async Task Random_pins_loads_and_evictions_across_instances_serve_only_the_images_bytes()
    {
        using var t = new TestStore();
        var (osImage, rtImage) = await HostMemoryTests.TwoChainsAsync(t);
        var fnPath = t.Image("fn.img", runtime: 2, function: 3, size: 16L << 20);
        await t.BuildAsync("fn", fnPath, parent: "rt", tenant: "acme");
        var fnImage = File.ReadAllBytes(fnPath);
        using var reader = t.Reader();
        const int BudgetChunks = 6, Workers = 4;
        using var host = new HostMemory(BudgetChunks * (long)Chunk, reserve: 4);
        var rtChain = await t.OpenAsync("rt");
        using var os = host.Lease(await t.OpenAsync("os"), null, reader);
        using var rt = host.Lease(rtChain, null, reader);
        using var fn = host.Lease(await t.OpenAsync("fn", "acme"), "acme", reader);
        Served[] served = [Of(os.Memory, osImage), Of(rt.Memory, rtImage), Of(fn.Memory, fnImage)];

        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        long worst = 0, checkedChunks = 0;
        var tasks = new List<Task>();
        for (int w = 0; w < Workers; w++)
        {
            int seed = w;
            tasks.Add(Task.Run(async () =>
            {
                var rng = new Random(seed);
                var bytes = new byte[2 * ChunkGeometry.PageSize];
                while (!stop.IsCancellationRequested)
                {
                    var s = served[rng.Next(served.Length)];
                    int c = s.Data[rng.Next(s.Data.Length)];
                    switch (rng.Next(4))
                    {
                        case 0: // a fault: pin, check the whole chunk as the kernel would copy it, unpin
                            nint address = await s.Memory.PinAsync(c, CancellationToken.None);
                            try
                            {
                                Assert.True(s.Image.AsSpan(c * Chunk, Chunk)
                                    .SequenceEqual(NativeBuffers.Span(address, Chunk)), $"chunk {c} differs");
                            }
                            finally { s.Memory.Unpin(c); }
                            Interlocked.Increment(ref checkedChunks);
                            break;
                        case 1: // the prefetcher
                            await s.Memory.LoadAsync(c, CancellationToken.None, FetchPriority.Prefetch);
                            break;
                        case 2: // the hot path racing with evictions
                            for (int i = 0; i < 100; i++)
                                if (s.Memory.TryPin(c, out _)) s.Memory.Unpin(c);
                            break;
                        default: // a copying read across a chunk boundary
                            long offset = ((long)c * Chunk) - ChunkGeometry.PageSize;
                            offset = Math.Clamp(offset, 0, s.Image.Length - bytes.Length);
                            await s.Memory.ReadAsync(offset, bytes);
                            Assert.True(s.Image.AsSpan((int)offset, bytes.Length).SequenceEqual(bytes));
                            break;
                    }
                    worst = Math.Max(worst, host.ResidentBytes);
                }
            }));
        }
        // Restores come and go meanwhile: an instance attached, read from (copies from the others), released.
        tasks.Add(Task.Run(async () =>
        {
            var page = new byte[ChunkGeometry.PageSize];
            for (int round = 0; !stop.IsCancellationRequested; round++)
            {
                using var churn = host.Lease(rtChain, $"churn-{round}", reader);
                for (int i = 0; i < 4; i++)
                {
                    long offset = (long)((round + i) % churn.Memory.ChunkCount) * Chunk;
                    await churn.Memory.ReadAsync(offset, page);
                    Assert.True(rtImage.AsSpan((int)offset, page.Length).SequenceEqual(page));
                }
            }
        }));
        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(60));

        // Over budget only by chunks in use at once: each reader pins one and waits for one.
        Assert.True(worst <= (BudgetChunks + (2 * Workers)) * (long)Chunk, $"{worst} bytes resident at worst");
        Assert.True(host.Evictions > 100, $"{host.Evictions} evictions");
        Assert.True(host.SharedHits > 0, "no chunk was copied");
        Assert.True(checkedChunks > 50, $"{checkedChunks} chunks checked");
        Assert.Equal(3, host.Restores);
        // Nothing lost: every chunk of every instance loads, pins and reads as the image, and the budget holds.
        foreach (var s in served)
        {
            await HostMemoryTests.AssertServesAsync(s.Memory, s.Image);
            foreach (int c in s.Data)
            {
                await s.Memory.LoadAsync(c, CancellationToken.None);
                // Just loaded, the newest chunk: resident, and pinnable unless a pin count was lost.
                Assert.True(s.Memory.TryPin(c, out _), $"chunk {c} cannot be pinned");
                s.Memory.Unpin(c);
            }
        }
        Assert.True(host.ResidentBytes <= host.BudgetBytes, $"{host.ResidentBytes} bytes resident");
    }
}
