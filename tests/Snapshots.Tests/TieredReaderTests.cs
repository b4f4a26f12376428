using System.Diagnostics;
using System.Security.Cryptography;
using Snapshots.Store;
using Snapshots.Store.Cache;
using Snapshots.Store.Chunks;
using Snapshots.Store.Distributed;
using Snapshots.Store.Faults;
using Snapshots.Store.Tiers;

namespace Snapshots.Tests;

/// <summary>
/// The tiered reader's rules with in-memory tiers: single-flight, deadlines, verification, fill-back.
/// </summary>
[Trait("Category", Category.Unit)]
public class TieredReaderTests
{
    private static readonly FaultProfile Hung = new() { StallRate = 1 };
    private static readonly FaultProfile Lying = new() { CorruptRate = 1 };

    /// <summary>An origin in memory, holding <paramref name="bytes"/> when given, behind the fault injector.</summary>
    private static (FaultInjectingChunkStore Origin, MemoryChunkStore Store) Origin(string name, FaultProfile faults,
        byte[]? bytes = null)
    {
        var store = new MemoryChunkStore(name);
        if (bytes is not null) store.Add(bytes);
        return (new FaultInjectingChunkStore(store, faults, seed: 1), store);
    }

    /// <summary>A cache in memory, holding <paramref name="bytes"/> when given, behind the fault injector.</summary>
    private static FaultInjectingChunkCache Cache(string name, FaultProfile faults, byte[]? bytes = null)
    {
        var store = new MemoryChunkStore(name);
        if (bytes is not null) store.Add(bytes);
        return new FaultInjectingChunkCache(store, faults, seed: 1);
    }

    private static (ChunkName Name, byte[] Bytes) Chunk()
    {
        var b = RandomNumberGenerator.GetBytes(100_000);
        return (ChunkName.OfCiphertext(b), b);
    }

    private static ReaderOptions Options(int caches, TimeSpan cacheDeadline, TimeSpan originDeadline)
    {
        var list = Enumerable.Repeat(new TierOptions(cacheDeadline, 8, TimeSpan.FromSeconds(1)), caches).ToList();
        return new ReaderOptions(list, new TierOptions(originDeadline, 8, TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task Concurrent_readers_of_one_chunk_cause_one_fetch()
    {
        var (name, bytes) = Chunk();
        var (origin, originStore) = Origin("origin", FaultProfile.Slow(TimeSpan.FromMilliseconds(200)), bytes);
        var cache = new MemoryChunkStore("cache");
        var reader = new ChunkReader(Options(1, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5)), origin, cache);
        var buffers = Enumerable.Range(0, 16).Select(_ => new byte[200_000]).ToArray();
        var lengths = await Task.WhenAll(buffers.Select(b => reader.ReadAsync(name, b, "test").AsTask()));
        Assert.Equal(1L, originStore.Gets);
        Assert.Equal(15, reader.SharedFetches);
        Assert.All(lengths, n => Assert.Equal(bytes.Length, n));
        Assert.All(buffers, b => Assert.True(b.AsSpan(0, bytes.Length).SequenceEqual(bytes)));
        await reader.FlushFillsAsync(TimeSpan.FromSeconds(10)); // fills run off the readers' path
        Assert.True(cache.Contains(name));
    }

    [Fact]
    public async Task A_waiter_that_gives_up_leaves_the_others_served()
    {
        var (name, bytes) = Chunk();
        var (origin, originStore) = Origin("origin", FaultProfile.Slow(TimeSpan.FromMilliseconds(300)), bytes);
        var reader = new ChunkReader(Options(0, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5)), origin);
        var leader = reader.ReadAsync(name, new byte[200_000], "test").AsTask();
        using var cts = new CancellationTokenSource(50);
        var quitter = reader.ReadAsync(name, new byte[200_000], "test", cts.Token).AsTask();
        var stayer = new byte[200_000];
        var waiter = reader.ReadAsync(name, stayer, "test").AsTask();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => quitter);
        Assert.Equal(bytes.Length, await leader);
        Assert.Equal(bytes.Length, await waiter);
        Assert.True(stayer.AsSpan(0, bytes.Length).SequenceEqual(bytes));
        Assert.Equal(1L, originStore.Gets);
    }

    [Fact]
    public async Task A_hung_cache_costs_its_deadline_and_the_origin_serves()
    {
        var (name, bytes) = Chunk();
        var (origin, _) = Origin("origin", FaultProfile.None, bytes);
        var hung = Cache("hung cache", Hung);
        var reader = new ChunkReader(Options(1, TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(5)), origin, hung);
        var clock = Stopwatch.StartNew();
        Assert.Equal(bytes.Length, await reader.ReadAsync(name, new byte[200_000], "test"));
        Assert.InRange(clock.ElapsedMilliseconds, 90, 2000);
        Assert.Equal(1, reader.Counters[0].Timeouts);
        Assert.Equal(1, reader.Counters[1].Hits);
    }

    [Fact]
    public async Task A_hung_origin_fails_at_its_deadline_naming_the_chunk()
    {
        var (name, _) = Chunk();
        var (origin, _) = Origin("origin X", Hung);
        var reader = new ChunkReader(Options(0, TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(300)), origin);
        var clock = Stopwatch.StartNew();
        var ex = await Assert.ThrowsAsync<ChunkUnavailableException>(
            async () => await reader.ReadAsync(name, new byte[200_000], "snapshot 'vm' (index 3)"));
        Assert.Equal(
            $"chunk {name} of snapshot 'vm' (index 3) could not be read: origin X did not answer within 300 ms",
            ex.Message);
        Assert.InRange(clock.ElapsedMilliseconds, 290, 2000);
    }

    [Fact]
    public async Task A_lying_cache_is_dropped_and_refilled_from_the_origin()
    {
        var (name, bytes) = Chunk();
        var (origin, _) = Origin("origin", FaultProfile.None, bytes);
        var liar = Cache("liar", Lying, bytes);
        var reader = new ChunkReader(origin, liar);
        var buffer = new byte[200_000];
        Assert.Equal(bytes.Length, await reader.ReadAsync(name, buffer, "test"));
        Assert.True(buffer.AsSpan(0, bytes.Length).SequenceEqual(bytes));
        Assert.Equal(1, reader.Counters[0].Corrupt);
        Assert.Equal(1, reader.Counters[1].Hits);
    }

    [Fact]
    public async Task A_lying_origin_is_an_error_not_bytes()
    {
        var (name, bytes) = Chunk();
        var (origin, _) = Origin("origin", Lying, bytes);
        var cache = new MemoryChunkStore("cache");
        var reader = new ChunkReader(origin, cache);
        var ex = await Assert.ThrowsAsync<ChunkUnavailableException>(
            async () => await reader.ReadAsync(name, new byte[200_000], "snapshot 's'"));
        Assert.Contains("is corrupt in origin", ex.Message);
        Assert.Equal(0, cache.Count);
    }

    [Fact]
    public void Circuit_breaker_opens_then_lets_one_probe_through_after_the_cooldown()
    {
        var breaker = new CircuitBreaker(1, TimeSpan.FromMilliseconds(100));
        Assert.True(breaker.TryEnter());
        breaker.Failure();
        Assert.False(breaker.TryEnter());
        Thread.Sleep(120);
        Assert.True(breaker.TryEnter());   // the probe
        Assert.False(breaker.TryEnter());  // only one
        breaker.Failure();                 // probe failed: open again
        Assert.False(breaker.TryEnter());
        Thread.Sleep(120);
        Assert.True(breaker.TryEnter());
        breaker.Success();
        Assert.True(breaker.TryEnter());
        Assert.Equal(2, breaker.TimesOpened);
    }

    [Theory]
    [InlineData(524_304, 4)]
    [InlineData(524_304, 2)]
    [InlineData(12_345, 4)]
    [InlineData(3, 4)]
    public void Stripes_rebuild_the_chunk_without_any_one_of_them(int length, int k)
    {
        var chunk = RandomNumberGenerator.GetBytes(length);
        var stripes = StripeCodec.Encode(chunk, k);
        Assert.Equal(k + 1, stripes.Length);
        for (int i = 0; i < stripes.Length; i++)
            Assert.Equal(length, StripeCodec.CheckHeader(stripes[i], k, i, 600_000));
        Assert.Equal(-1, StripeCodec.CheckHeader(stripes[0], k, 1, 600_000));
        var views = stripes.Select(s => (ReadOnlyMemory<byte>)s).ToArray();
        for (int missing = -1; missing < k; missing++)
        {
            var output = new byte[length];
            StripeCodec.Assemble(views, k, length, missing, output);
            Assert.True(output.AsSpan().SequenceEqual(chunk), $"rebuilding stripe {missing}");
        }
    }
}
