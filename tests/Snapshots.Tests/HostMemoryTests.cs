using Snapshots.ChunkFs.Memory;
using Snapshots.Store.Chunks;
using Snapshots.Store.Layers;

namespace Snapshots.Tests;

/// <summary>One host memory for many restores: one budget across instances (never a pinned chunk evicted), one
/// instance per chain shared by its restores, and chunks copied across chains instead of fetched.</summary>
[Trait("Category", Category.Unit)]
public class HostMemoryTests
{
    private const int Chunk = ChunkGeometry.ChunkSize;

    /// <summary>"os" and "rt" on it (sharing the os chunks rt did not change), 16 MiB each; their image bytes.
    /// </summary>
    internal static async Task<(byte[] Os, byte[] Rt)> TwoChainsAsync(TestStore t)
    {
        var os = t.Image("os.img", size: 16L << 20);
        await t.BuildAsync("os", os);
        var rt = t.Image("rt.img", runtime: 2, size: 16L << 20);
        await t.BuildAsync("rt", rt, parent: "os");
        return (File.ReadAllBytes(os), File.ReadAllBytes(rt));
    }

    internal static long OriginReads(ChunkReader reader) => reader.Counters[^1].Hits;

    internal static HashSet<ChunkName> DataNames(SnapshotChain chain) =>
        [.. chain.Chunks.Where(c => !c.IsZero).Select(c => c.Name)];

    /// <summary>Reads the whole image through <paramref name="memory"/> and compares it with
    /// <paramref name="image"/>.</summary>
    internal static async Task AssertServesAsync(ResidentChunks memory, byte[] image)
    {
        var read = new byte[image.Length];
        Assert.Equal(image.Length, await memory.ReadAsync(0, read));
        for (int c = 0; c < memory.ChunkCount; c++)
        {
            Assert.True(image.AsSpan(c * Chunk, Chunk).SequenceEqual(read.AsSpan(c * Chunk, Chunk)),
                $"chunk {c} of '{memory.Name}' differs");
        }
    }

    [Fact]
    public async Task Two_instances_under_one_small_budget_never_exceed_it_nor_evict_a_pinned_chunk()
    {
        using var t = new TestStore();
        var (osImage, rtImage) = await TwoChainsAsync(t);
        using var reader = t.Reader();
        using var host = new HostMemory(4L * Chunk, reserve: 2);
        using var os = host.Lease(await t.OpenAsync("os"), null, reader);
        using var rt = host.Lease(await t.OpenAsync("rt"), null, reader);
        Assert.Equal(2, host.Instances);

        // A chunk of os pinned all along, as a UFFDIO_COPY in progress holds it.
        int held = Enumerable.Range(0, os.Memory.ChunkCount).First(c => !os.Memory.IsZeroChunk(c));
        nint address = await os.Memory.PinAsync(held, CancellationToken.None);

        using var stop = new CancellationTokenSource();
        long worst = 0;
        var watcher = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested) worst = Math.Max(worst, host.ResidentBytes);
        });
        var rng = new Random(7);
        var page = new byte[3 * ChunkGeometry.PageSize];
        for (int i = 0; i < 300; i++)
        {
            var (memory, image) = i % 2 == 0 ? (os.Memory, osImage) : (rt.Memory, rtImage);
            long offset = rng.NextInt64(image.Length - page.Length);
            await memory.ReadAsync(offset, page);
            Assert.True(image.AsSpan((int)offset, page.Length).SequenceEqual(page), $"read {i} at {offset}");
            Assert.True(host.ResidentBytes <= host.BudgetBytes, $"{host.ResidentBytes} bytes resident");
        }
        await stop.CancelAsync();
        await watcher;
        Assert.True(worst <= host.BudgetBytes, $"{worst} bytes resident at worst");
        Assert.True(host.Evictions > 50, $"{host.Evictions} evictions");

        // The pinned chunk stayed, at the same address, with its bytes.
        Assert.True(os.Memory.IsResident(held));
        Assert.True(osImage.AsSpan(held * Chunk, Chunk).SequenceEqual(NativeBuffers.Span(address, Chunk)));
        os.Memory.Unpin(held);
        Assert.Equal(host.Loads, host.Evictions + (host.ResidentBytes / Chunk));
        // One pool: each instance counts its own fresh buffers, the pool all of them.
        Assert.Equal(host.Buffers.ColdRents, os.Memory.ColdBuffers + rt.Memory.ColdBuffers);
    }

    [Fact]
    public async Task Restores_of_one_chain_share_one_instance_and_fetch_each_chunk_once()
    {
        using var t = new TestStore();
        var (_, rtImage) = await TwoChainsAsync(t);
        using var reader = t.Reader();
        using var host = new HostMemory(1L << 30, reserve: 0);
        var chain = await t.OpenAsync("rt");
        var first = host.Lease(chain, null, reader);
        // Opened again, as a second restore does: the same manifests, so the same instance.
        var second = host.Lease(await t.OpenAsync("rt"), null, reader);
        Assert.Same(first.Memory, second.Memory);
        Assert.Equal(2, host.Restores);
        Assert.Equal(1, host.Instances);

        await Task.WhenAll(AssertServesAsync(first.Memory, rtImage), AssertServesAsync(second.Memory, rtImage));
        // One origin read per distinct chunk, for both restores (a repeated name is copied, not fetched).
        Assert.Equal(DataNames(chain).Count, OriginReads(reader));

        first.Dispose();
        first.Dispose(); // releases once
        Assert.Equal(1, host.Restores);
        await AssertServesAsync(second.Memory, rtImage); // still served
        second.Dispose();
        Assert.Equal(0, host.Restores);
        Assert.Equal(0, host.Instances);
        Assert.Equal(0, host.ResidentBytes);
        Assert.False(second.Memory.TryPin(0, out _)); // the last lease disposed the instance
    }

    [Fact]
    public async Task Another_tenant_or_reader_gets_its_own_instance()
    {
        using var t = new TestStore();
        await TwoChainsAsync(t);
        using var reader = t.Reader();
        using var other = t.Reader();
        using var host = new HostMemory(1L << 30, reserve: 0);
        var chain = await t.OpenAsync("rt");
        using var a = host.Lease(chain, null, reader);
        using var b = host.Lease(chain, "acme", reader);
        using var c = host.Lease(chain, null, other);
        Assert.NotSame(a.Memory, b.Memory);
        Assert.NotSame(a.Memory, c.Memory);
        Assert.Equal(3, host.Instances);
    }

    [Fact]
    public async Task A_chunk_resident_for_one_snapshot_is_copied_not_fetched_for_another()
    {
        using var t = new TestStore();
        var (osImage, rtImage) = await TwoChainsAsync(t);
        using var reader = t.Reader();
        using var host = new HostMemory(1L << 30, reserve: 0);
        var osChain = await t.OpenAsync("os");
        var rtChain = await t.OpenAsync("rt");
        using var os = host.Lease(osChain, null, reader);
        using var rt = host.Lease(rtChain, null, reader);

        await AssertServesAsync(os.Memory, osImage);
        long osReads = OriginReads(reader);
        Assert.Equal(DataNames(osChain).Count, osReads);
        long hitsBefore = host.SharedHits;

        await AssertServesAsync(rt.Memory, rtImage);
        var rtNames = DataNames(rtChain);
        var onlyRt = rtNames.Except(DataNames(osChain)).Count();
        Assert.True(rtNames.Count > onlyRt, "the test needs chunks rt shares with os");
        // Only rt's own chunks came from the origin; every other data chunk of rt was copied.
        Assert.Equal(onlyRt, OriginReads(reader) - osReads);
        int rtData = rtChain.Chunks.Count(c => !c.IsZero);
        Assert.Equal(rtData - onlyRt, host.SharedHits - hitsBefore);
        Assert.Equal(host.SharedHits, host.Counters().SharedHits);
    }

    /// <summary>Every resident holder of a chunk is found, not only the first: once the instance a chunk was first
    /// loaded in is gone, a copy made from it still serves the next restore.</summary>
    [Fact]
    public async Task A_copy_still_serves_once_the_instance_it_came_from_is_released()
    {
        using var t = new TestStore();
        var (osImage, rtImage) = await TwoChainsAsync(t);
        using var reader = t.Reader();
        using var host = new HostMemory(1L << 30, reserve: 0);
        var rtChain = await t.OpenAsync("rt");
        using var rt = host.Lease(rtChain, null, reader);
        using (var os = host.Lease(await t.OpenAsync("os"), null, reader))
        {
            await AssertServesAsync(os.Memory, osImage); // first: it fetches, and its chunks are found first
            long reads = OriginReads(reader);
            await AssertServesAsync(rt.Memory, rtImage); // copies os's chunks, fetches only its own
            Assert.True(OriginReads(reader) - reads < DataNames(rtChain).Count);
        }
        // os is released; rt's copies of its chunks are what a new restore of rt's chain (another tenant: its own
        // instance) finds.
        using var other = host.Lease(rtChain, "acme", reader);
        long before = OriginReads(reader);
        await AssertServesAsync(other.Memory, rtImage);
        Assert.Equal(before, OriginReads(reader)); // every chunk copied, none fetched
    }

    [Fact]
    public async Task Without_a_host_an_instance_keeps_its_own_budget_and_pool()
    {
        using var t = new TestStore();
        var (osImage, _) = await TwoChainsAsync(t);
        using var memory = new ResidentChunks(await t.OpenAsync("os"), t.Reader(), 2L * Chunk, reserve: 0);
        Assert.Null(memory.Host);
        await AssertServesAsync(memory, osImage);
        Assert.True(memory.Evictions > 0);
        Assert.True(memory.Buffers.Buffers <= 3, $"{memory.Buffers.Buffers} buffers"); // 2 resident + 1 loading
    }
}
