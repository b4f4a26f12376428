using System.Diagnostics;
using System.Security.Cryptography;
using Snapshots.Store;
using Snapshots.Store.Cache;
using Snapshots.Store.Chunks;
using Snapshots.Store.Faults;
using Snapshots.Store.Tiers;

namespace Snapshots.Tests;

/// <summary>Transient failures are retried within the window, with backoff, under a budget; missing chunks are
/// not; a corrupt one is read once more (damage on the way), then fails.</summary>
[Trait("Category", Category.Unit)]
public class RetryTests
{
    private static (MemoryChunkStore Store, ChunkName Name) OneChunk()
    {
        var store = new MemoryChunkStore("origin");
        return (store, store.Add(RandomNumberGenerator.GetBytes(50_000)));
    }

    private static ReaderOptions Options(RetryPolicy retry) =>
        new([], new TierOptions(TimeSpan.FromSeconds(1), 8, TimeSpan.FromSeconds(1))) { Retry = retry };

    [Fact]
    public async Task A_short_outage_is_survived_within_the_window()
    {
        var (store, name) = OneChunk();
        var origin = new FaultInjectingChunkStore(store, new FaultProfile { ErrorRate = 1 }, seed: 1);
        var reader = new ChunkReader(Options(new RetryPolicy { Window = TimeSpan.FromSeconds(5) }), origin);
        _ = Task.Delay(400).ContinueWith(_ => origin.Profile = FaultProfile.None, TaskScheduler.Default);
        var clock = Stopwatch.StartNew();
        int n = await reader.ReadAsync(name, new byte[60_000], "test");
        Assert.Equal(50_000, n);
        Assert.True(reader.Retries > 0);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task Past_the_window_the_last_error_is_reported()
    {
        var (store, name) = OneChunk();
        var origin = new FaultInjectingChunkStore(store, new FaultProfile { ErrorRate = 1 }, seed: 1);
        var reader = new ChunkReader(Options(new RetryPolicy { Window = TimeSpan.FromMilliseconds(300) }), origin);
        var ex = await Assert.ThrowsAsync<ChunkUnavailableException>(
            () => reader.ReadAsync(name, new byte[60_000], "test").AsTask());
        Assert.Equal(ChunkFault.Unavailable, ex.Fault);
        Assert.Contains("attempts", ex.Message);
        Assert.Contains("injected", ex.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Missing_is_final_at_once_and_no_retry_policy_means_one_attempt()
    {
        var (store, _) = OneChunk();
        var absent = ChunkName.OfCiphertext(RandomNumberGenerator.GetBytes(100));
        var reader = new ChunkReader(Options(new RetryPolicy()), store);
        var missing = await Assert.ThrowsAsync<ChunkUnavailableException>(
            () => reader.ReadAsync(absent, new byte[200], "test").AsTask());
        Assert.Equal(ChunkFault.Missing, missing.Fault);
        Assert.Equal(0, reader.Retries);

        var (store2, name) = OneChunk();
        var failing = new FaultInjectingChunkStore(store2, new FaultProfile { ErrorRate = 1 }, seed: 2);
        var once = new ChunkReader(Options(RetryPolicy.None), failing);
        await Assert.ThrowsAsync<ChunkUnavailableException>(() => once.ReadAsync(name, new byte[60_000], "t").AsTask());
        Assert.Equal(1, failing.Injected.Reads);
    }

    [Fact]
    public async Task The_budget_bounds_retries_during_a_long_outage()
    {
        var store = new MemoryChunkStore("origin");
        var names = Enumerable.Range(0, 50).Select(_ => store.Add(RandomNumberGenerator.GetBytes(1000))).ToArray();
        var origin = new FaultInjectingChunkStore(store, new FaultProfile { ErrorRate = 1 }, seed: 3);
        var policy = new RetryPolicy
        {
            Window = TimeSpan.FromSeconds(2),
            FirstDelay = TimeSpan.FromMilliseconds(1),
            MaxDelay = TimeSpan.FromMilliseconds(5),
        };
        var reader = new ChunkReader(Options(policy), origin);
        await Task.WhenAll(names.Select(n => Assert.ThrowsAsync<ChunkUnavailableException>(
            () => reader.ReadAsync(n, new byte[2000], "test").AsTask())));
        // 50 first attempts earn 10 retries, on top of the burst of 20 and 10 a second for 2 s: never hundreds
        // (without a budget, each of the 50 would retry every ~0.25 s on average: ~400).
        Assert.InRange(reader.Retries, 1, 20 + 10 + 25);
        Assert.True(reader.Budget.Refused > 0);
    }

    [Fact]
    public async Task A_chunk_damaged_on_the_way_is_read_again_once_and_one_damaged_at_rest_fails()
    {
        var (store, name) = OneChunk();
        var origin = new FlipFirstRead(store);
        var reader = new ChunkReader(Options(new RetryPolicy()), origin);
        // The first read comes back with a bit flipped; the re-read gets the object's real bytes.
        Assert.Equal(50_000, await reader.ReadAsync(name, new byte[60_000], "test"));
        Assert.Equal(2, origin.Reads);
        Assert.Equal(1, reader.Retries);

        var again = new FaultInjectingChunkStore(store, new FaultProfile { CorruptRate = 1 }, seed: 5);
        var lying = new ChunkReader(Options(new RetryPolicy()), again);
        var ex = await Assert.ThrowsAsync<ChunkUnavailableException>(
            () => lying.ReadAsync(name, new byte[60_000], "test").AsTask());
        Assert.Equal(ChunkFault.Corrupt, ex.Fault);
        Assert.Equal(2, again.Injected.Reads);
    }

    [Fact]
    public async Task An_outage_that_spends_the_budget_is_outlived_by_retrying_at_the_refill_rate()
    {
        var store = new MemoryChunkStore("origin");
        var names = Enumerable.Range(0, 50).Select(_ => store.Add(RandomNumberGenerator.GetBytes(1000))).ToArray();
        var origin = new FaultInjectingChunkStore(store, new FaultProfile { ErrorRate = 1 }, seed: 6);
        var policy = new RetryPolicy
        {
            Window = TimeSpan.FromSeconds(8),
            FirstDelay = TimeSpan.FromMilliseconds(10),
            MaxDelay = TimeSpan.FromMilliseconds(200),
        };
        var reader = new ChunkReader(Options(policy), origin);
        _ = Task.Delay(1500).ContinueWith(_ => origin.Profile = FaultProfile.None, TaskScheduler.Default);
        // 50 readers fail at once for 1.5 s: the burst of 20 is spent at once; the rest wait for the refill.
        var lengths = await Task.WhenAll(names.Select(n => reader.ReadAsync(n, new byte[2000], "test").AsTask()));
        Assert.All(lengths, n => Assert.Equal(1000, n));
        Assert.True(reader.Budget.Refused > 0, "the budget was never spent: the test proves nothing");
    }

    /// <summary>An origin whose first answer arrives with one bit flipped, as damage on the way would.</summary>
    private sealed class FlipFirstRead(IChunkStore inner) : IChunkStore
    {
        public int Reads { get; private set; }

        public string Describe => inner.Describe;

        public async ValueTask<int> TryGetAsync(ChunkName name, Memory<byte> buffer, CancellationToken ct = default)
        {
            int n = await inner.TryGetAsync(name, buffer, ct);
            if (Reads++ == 0 && n > 0) buffer.Span[n / 2] ^= 0x10;
            return n;
        }
    }
}
