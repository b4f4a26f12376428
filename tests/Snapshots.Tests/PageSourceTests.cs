using Snapshots.ChunkFs.Memory;
using Snapshots.Store.Chunks;
using Snapshots.Store.Faults;

namespace Snapshots.Tests;

[Trait("Category", Category.Unit)]
public class PageSourceTests
{
    [Fact]
    public async Task Serves_every_page_of_a_chain_exactly_as_the_image()
    {
        using var t = new TestStore();
        await t.BuildAsync("os", t.Image("os.img", size: 16L << 20));
        var img = t.Image("rt.img", runtime: 2, size: 16L << 20);
        await t.BuildAsync("rt", img, parent: "os");
        // A small budget: chunks are evicted and read again. (And one of 1 PiB: clamped, not wrapped negative.)
        using var huge = new ResidentChunks(await t.OpenAsync("rt"), t.Reader(), 1L << 50, reserve: 0);
        var first = new byte[ChunkGeometry.PageSize];
        await huge.ReadAsync(0, first);
        Assert.True(huge.IsResident(0));
        using var source = new ResidentChunks(await t.OpenAsync("rt"), t.Reader(), 4L << 20);
        var image = File.ReadAllBytes(img);
        Assert.Equal(image.LongLength, source.Size);
        var page = new byte[8 * ChunkGeometry.PageSize];
        var rng = new Random(3);
        for (int i = 0; i < 200; i++)
        {
            long offset = (long)rng.Next((int)(source.Size / page.Length)) * page.Length;
            await source.ReadAsync(offset, page);
            Assert.True(image.AsSpan((int)offset, page.Length).SequenceEqual(page), $"bytes differ at {offset}");
            int chunkStart = (int)(offset / ChunkGeometry.ChunkSize * ChunkGeometry.ChunkSize);
            bool zeroChunk = image.AsSpan(chunkStart, ChunkGeometry.ChunkSize).IndexOfAnyExcept((byte)0) < 0;
            Assert.Equal(zeroChunk, source.IsZero(offset));
        }
        // Any offset and size: unaligned, across chunks, short at the end, empty past it.
        for (int i = 0; i < 200; i++)
        {
            long offset = rng.NextInt64(source.Size + 4096);
            var buffer = new byte[rng.Next(1, 3 * ChunkGeometry.ChunkSize)];
            int n = await source.ReadAsync(offset, buffer);
            int expected = (int)Math.Clamp(source.Size - offset, 0, buffer.Length);
            Assert.Equal(expected, n);
            if (n > 0) Assert.True(image.AsSpan((int)offset, n).SequenceEqual(buffer.AsSpan(0, n)), $"at {offset}");
        }
    }

    [Fact]
    public async Task Disposing_with_loads_in_flight_never_touches_unmapped_memory()
    {
        using var t = new TestStore();
        await t.BuildAsync("os", t.Image("os.img", size: 64L << 20));
        var chain = await t.OpenAsync("os");
        var rng = new Random(5);
        for (int round = 0; round < 20; round++)
        {
            // Every read waits 0-40 ms: when the memory tier is disposed, loads are reading, decrypting or done.
            var slow = new FaultInjectingChunkStore(new OriginChunkStore(t.Blobs),
                FaultProfile.Slow(TimeSpan.Zero, TimeSpan.FromMilliseconds(40)), seed: round);
            using var reader = new ChunkReader(slow);
            var source = new ResidentChunks(chain, reader, 1L << 30, reserve: round % 2 == 0 ? 0 : 16);
            var loads = new List<Task>();
            for (int c = 0; c < source.ChunkCount; c++)
                if (!source.IsZeroChunk(c)) loads.Add(source.LoadAsync(c, CancellationToken.None));
            await Task.Delay(rng.Next(5, 35));
            source.Dispose();
            foreach (var load in loads)
            {
                try { await load; }
                catch (ObjectDisposedException) { } // finished after the tier was disposed: its buffer went back
            }
            for (int c = 0; c < source.ChunkCount; c++)
                Assert.False(source.TryPin(c, out _)); // nothing is served from a disposed tier
        }
    }

    /// <summary>Found by a reviewer: eviction reset a chunk's pin count to 0 while a TryPin was between its increment
    /// and its decrement, leaving the count at -1: the chunk resident but never pinnable, and readers spinning.
    /// </summary>
    [Fact]
    public async Task Eviction_racing_with_pins_never_leaves_a_chunk_unpinnable()
    {
        using var t = new TestStore();
        await t.BuildAsync("os", t.Image("os.img", size: 16L << 20));
        using var source = new ResidentChunks(await t.OpenAsync("os"), t.Reader(), 1L << 20, reserve: 4);
        var data = Enumerable.Range(0, source.ChunkCount).Where(c => !source.IsZeroChunk(c)).ToArray();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        var pinner = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
                foreach (var c in data)
                    if (source.TryPin(c, out _)) source.Unpin(c);
        });
        pinner.Start();
        while (!stop.IsCancellationRequested)
            foreach (var c in data) await source.LoadAsync(c, CancellationToken.None);
        stop.Cancel();
        pinner.Join();
        Assert.True(source.Evictions > 100, $"{source.Evictions} evictions");
        var page = new byte[4096];
        foreach (var c in data)
        {
            await source.LoadAsync(c, CancellationToken.None);
            Assert.True(source.TryPin(c, out _), $"chunk {c} is resident but cannot be pinned");
            source.Unpin(c);
            var read = source.ReadAsync((long)c * ChunkGeometry.ChunkSize, page).AsTask();
            await read.WaitAsync(TimeSpan.FromSeconds(10)); // a lost pin made this spin forever
        }
    }
}
