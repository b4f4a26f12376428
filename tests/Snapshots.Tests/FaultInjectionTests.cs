using System.Diagnostics;
using System.Numerics;
using System.Security.Cryptography;
using Snapshots.Store;
using Snapshots.Store.Cache;
using Snapshots.Store.Chunks;
using Snapshots.Store.Faults;

namespace Snapshots.Tests;

/// <summary>The fault-injecting decorator itself: rates, determinism, what each fault looks like to a reader,
/// cancellation, run-time profile changes and profile validation.</summary>
[Trait("Category", Category.Unit)]
public sealed class FaultInjectionTests
{
    private enum Seen { Ok, Miss, Error, Corrupt }

    private static (MemoryChunkStore Store, ChunkName Name, byte[] Bytes) StoreWithOneChunk(string describe = "memory")
    {
        var store = new MemoryChunkStore(describe);
        var bytes = RandomNumberGenerator.GetBytes(4096);
        return (store, store.Add(bytes), bytes);
    }

    /// <summary>Reads <paramref name="count"/> times, one after another, and classifies each answer.</summary>
    private static async Task<List<Seen>> ReadManyAsync(FaultInjectingChunkStore faulty, ChunkName name, int count)
    {
        var seen = new List<Seen>(count);
        var buffer = new byte[8192];
        for (int i = 0; i < count; i++)
        {
            try
            {
                int n = await faulty.TryGetAsync(name, buffer);
                seen.Add(n < 0 ? Seen.Miss : name.Matches(buffer.AsSpan(0, n)) ? Seen.Ok : Seen.Corrupt);
            }
            catch (InjectedFaultException)
            {
                seen.Add(Seen.Error);
            }
        }
        return seen;
    }

    [Fact]
    public async Task Rates_are_honoured_and_the_counts_are_exact_for_a_fixed_seed()
    {
        var (store, name, _) = StoreWithOneChunk();
        var profile = new FaultProfile
        {
            ErrorRate = 0.10, MissRate = 0.20, CorruptRate = 0.05,
            StallRate = 0.02, StallDuration = TimeSpan.FromMilliseconds(1),
            LatencyRate = 0.03, Latency = TimeSpan.FromMilliseconds(1),
        };
        var faulty = new FaultInjectingChunkStore(store, profile, seed: 42);
        const int N = 2000;
        var seen = await ReadManyAsync(faulty, name, N);
        var injected = faulty.Injected;

        // What the caller saw is what the counters say (a finite stall ends in a good read).
        Assert.Equal(N, injected.Reads);
        Assert.Equal(seen.Count(s => s == Seen.Error), injected.Errors);
        Assert.Equal(seen.Count(s => s == Seen.Miss), injected.Misses);
        Assert.Equal(seen.Count(s => s == Seen.Corrupt), injected.Corrupted);
        Assert.Equal(N - injected.Errors - injected.Misses, store.Gets);

        // Roughly the rates: within 4 standard deviations of rate * N.
        AssertNear(0.10, injected.Errors);
        AssertNear(0.20, injected.Misses);
        AssertNear(0.05, injected.Corrupted);
        AssertNear(0.02, injected.Stalled);
        AssertNear(0.03, injected.Delayed);

        // Exactly, for seed 42: a seeded System.Random yields the same sequence on every run (and has on every
        // .NET so far; if a new runtime changes it, only these numbers need updating).
        Assert.Equal("reads 2000, delayed 55, stalled 45, errors 201, misses 402, corrupted 101", injected.ToString());

        static void AssertNear(double rate, long count)
        {
            double mean = rate * N, sd = Math.Sqrt(N * rate * (1 - rate));
            Assert.InRange(count, (long)(mean - 4 * sd), (long)(mean + 4 * sd));
        }
    }

    [Fact]
    public async Task The_same_seed_gives_the_same_faults_in_the_same_order()
    {
        var (store, name, _) = StoreWithOneChunk();
        var profile = new FaultProfile { ErrorRate = 0.2, MissRate = 0.2, CorruptRate = 0.2 };
        var a = await ReadManyAsync(new FaultInjectingChunkStore(store, profile, seed: 7), name, 300);
        var b = await ReadManyAsync(new FaultInjectingChunkStore(store, profile, seed: 7), name, 300);
        var c = await ReadManyAsync(new FaultInjectingChunkStore(store, profile, seed: 8), name, 300);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public async Task A_corrupt_read_flips_one_bit_of_the_answer_and_leaves_the_entry_intact()
    {
        var (store, name, bytes) = StoreWithOneChunk();
        var faulty = new FaultInjectingChunkStore(store, new FaultProfile { CorruptRate = 1 }, seed: 1);
        var buffer = new byte[8192];
        Assert.Equal(bytes.Length, await faulty.TryGetAsync(name, buffer));
        int differingBits = 0;
        for (int i = 0; i < bytes.Length; i++) differingBits += BitOperations.PopCount((uint)(bytes[i] ^ buffer[i]));
        Assert.Equal(1, differingBits);
        Assert.False(name.Matches(buffer.AsSpan(0, bytes.Length)));
        Assert.Equal(bytes.Length, await store.TryGetAsync(name, buffer));
        Assert.True(buffer.AsSpan(0, bytes.Length).SequenceEqual(bytes));
    }

    [Fact]
    public async Task The_reader_catches_a_corrupting_cache_as_corrupt_and_refills_it()
    {
        var (origin, name, bytes) = StoreWithOneChunk("origin");
        var cacheStore = new MemoryChunkStore("cache");
        cacheStore.Add(bytes);
        var cache = new FaultInjectingChunkCache(cacheStore, new FaultProfile { CorruptRate = 1 }, seed: 1);
        var reader = new ChunkReader(origin, cache);
        var buffer = new byte[8192];
        Assert.Equal(bytes.Length, await reader.ReadAsync(name, buffer, "test"));
        Assert.True(buffer.AsSpan(0, bytes.Length).SequenceEqual(bytes));
        Assert.Equal(1, cache.Injected.Corrupted);
        Assert.Equal(1, reader.Counters[0].Corrupt);
        Assert.Equal(1, reader.Counters[1].Hits);
        await reader.FlushFillsAsync(TimeSpan.FromSeconds(10)); // fills run off the reader's path
        Assert.True(cacheStore.Contains(name)); // dropped, then filled again from the origin
        Assert.False(cache.VerifiesOnRead);
    }

    [Fact]
    public async Task A_stall_lasts_until_the_read_is_cancelled()
    {
        var (store, name, _) = StoreWithOneChunk();
        var faulty = new FaultInjectingChunkStore(store, new FaultProfile { StallRate = 1 }, seed: 1);
        using var cts = new CancellationTokenSource();
        var read = faulty.TryGetAsync(name, new byte[8192], cts.Token).AsTask();
        await Task.Delay(100);
        Assert.False(read.IsCompleted);
        Assert.Equal(1, faulty.Injected.Stalled);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => read);
        Assert.Equal(0, store.Gets);
    }

    [Fact]
    public async Task A_finite_stall_ends_in_an_answer()
    {
        var (store, name, bytes) = StoreWithOneChunk();
        var profile = new FaultProfile { StallRate = 1, StallDuration = TimeSpan.FromMilliseconds(150) };
        var faulty = new FaultInjectingChunkStore(store, profile, seed: 1);
        var clock = Stopwatch.StartNew();
        Assert.Equal(bytes.Length, await faulty.TryGetAsync(name, new byte[8192]));
        Assert.InRange(clock.ElapsedMilliseconds, 140, 5000);
    }

    [Fact]
    public async Task Latency_is_fixed_plus_jitter_and_cancellable()
    {
        var (store, name, _) = StoreWithOneChunk();
        var faulty = new FaultInjectingChunkStore(store,
            FaultProfile.Slow(TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(50)), seed: 1);
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < 4; i++) await faulty.TryGetAsync(name, new byte[8192]);
        Assert.InRange(clock.ElapsedMilliseconds, 4 * 45, 4 * 100 + 2000);
        Assert.Equal(4, faulty.Injected.Delayed);

        faulty.Profile = FaultProfile.Slow(TimeSpan.FromSeconds(30));
        using var cts = new CancellationTokenSource(50);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            async () => await faulty.TryGetAsync(name, new byte[8192], cts.Token));
    }

    [Fact]
    public async Task Changing_the_profile_starts_and_ends_an_outage()
    {
        var (store, name, bytes) = StoreWithOneChunk("origin");
        var origin = new FaultInjectingChunkStore(store, FaultProfile.None, seed: 1);
        var reader = new ChunkReader(origin);
        var buffer = new byte[8192];
        Assert.Equal(bytes.Length, await reader.ReadAsync(name, buffer, "snapshot 'vm'"));

        origin.Profile = new FaultProfile { ErrorRate = 1 };
        var ex = await Assert.ThrowsAsync<ChunkUnavailableException>(
            async () => await reader.ReadAsync(name, buffer, "snapshot 'vm'"));
        Assert.Equal($"chunk {name} of snapshot 'vm' could not be read: injected I/O error in origin", ex.Message);
        Assert.Equal(1, reader.Counters[0].Errors);

        origin.Profile = FaultProfile.None;
        Assert.Equal(bytes.Length, await reader.ReadAsync(name, buffer, "snapshot 'vm'"));
        Assert.Equal(1, origin.Injected.Errors);
    }

    [Fact]
    public async Task A_missing_cache_falls_through_to_the_origin()
    {
        var (origin, name, bytes) = StoreWithOneChunk("origin");
        var cacheStore = new MemoryChunkStore("cache");
        cacheStore.Add(bytes);
        var cache = new FaultInjectingChunkCache(cacheStore, new FaultProfile { MissRate = 1 }, seed: 1);
        var reader = new ChunkReader(origin, cache);
        Assert.Equal(bytes.Length, await reader.ReadAsync(name, new byte[8192], "test"));
        Assert.Equal(1, reader.Counters[0].Misses);
        Assert.Equal(1, reader.Counters[1].Hits);
        Assert.Equal(0, cacheStore.Gets); // a miss does not ask the inner store
    }

    [Theory]
    [InlineData(nameof(FaultProfile.LatencyRate), -0.1)]
    [InlineData(nameof(FaultProfile.StallRate), 1.5)]
    [InlineData(nameof(FaultProfile.ErrorRate), double.NaN)]
    [InlineData(nameof(FaultProfile.MissRate), 2.0)]
    [InlineData(nameof(FaultProfile.CorruptRate), -1.0)]
    public void A_rate_outside_0_to_1_is_refused_by_name(string property, double rate)
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => property switch
        {
            nameof(FaultProfile.LatencyRate) => new FaultProfile { LatencyRate = rate },
            nameof(FaultProfile.StallRate) => new FaultProfile { StallRate = rate },
            nameof(FaultProfile.ErrorRate) => new FaultProfile { ErrorRate = rate },
            nameof(FaultProfile.MissRate) => FaultProfile.None with { MissRate = rate },
            _ => FaultProfile.None with { CorruptRate = rate },
        });
        Assert.Equal(property, ex.ParamName);
        Assert.Contains($"{property} is a fraction of reads: 0..1", ex.Message);
    }

    [Fact]
    public void Durations_are_checked_by_name()
    {
        var latency = Assert.Throws<ArgumentOutOfRangeException>(
            () => new FaultProfile { Latency = TimeSpan.FromMilliseconds(-1) });
        Assert.Equal(nameof(FaultProfile.Latency), latency.ParamName);
        var jitter = Assert.Throws<ArgumentOutOfRangeException>(
            () => FaultProfile.Slow(TimeSpan.Zero, TimeSpan.FromMilliseconds(-1)));
        Assert.Equal(nameof(FaultProfile.LatencyJitter), jitter.ParamName);
        var stall = Assert.Throws<ArgumentOutOfRangeException>(
            () => new FaultProfile { StallDuration = TimeSpan.Zero });
        Assert.Equal(nameof(FaultProfile.StallDuration), stall.ParamName);
        Assert.Equal(Timeout.InfiniteTimeSpan, new FaultProfile().StallDuration);
    }

    [Fact]
    public void Outcome_rates_that_sum_over_1_are_refused_and_the_old_profile_kept()
    {
        var (store, _, _) = StoreWithOneChunk();
        var tooMuch = new FaultProfile { ErrorRate = 0.6, MissRate = 0.3, CorruptRate = 0.2 };
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new FaultInjectingChunkStore(store, tooMuch, 1));
        Assert.Equal("profile", ex.ParamName);
        Assert.Contains("StallRate + ErrorRate + MissRate + CorruptRate is 1.1", ex.Message);

        var faulty = new FaultInjectingChunkStore(store, FaultProfile.None, seed: 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => faulty.Profile = tooMuch);
        Assert.Same(FaultProfile.None, faulty.Profile);
        faulty.Profile = tooMuch with { CorruptRate = 0.1 }; // exactly 1 is allowed
    }

    [Fact]
    public async Task The_decorator_describes_itself_as_the_inner_store_and_passes_writes_through()
    {
        var inner = new MemoryChunkStore("disk cache /x");
        var cache = new FaultInjectingChunkCache(inner, new FaultProfile { ErrorRate = 1 }, seed: 1);
        Assert.Equal("disk cache /x", cache.Describe);
        Assert.Same(inner, cache.Inner);
        var bytes = RandomNumberGenerator.GetBytes(100);
        var name = ChunkName.OfCiphertext(bytes);
        await cache.PutAsync(name, bytes);
        Assert.True(inner.Contains(name));
        await Assert.ThrowsAsync<InjectedFaultException>(async () => await cache.TryGetAsync(name, new byte[100]));
        cache.Remove(name);
        Assert.False(inner.Contains(name));
    }
}
