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
        // A small budget: chunks are evicted and read again.
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
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await source.ReadAsync(source.Size, page));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(
            async () => await source.ReadAsync(ChunkGeometry.ChunkSize - 4096, page));
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
}
