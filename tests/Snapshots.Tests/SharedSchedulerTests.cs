using System.Collections.Concurrent;
using Snapshots.ChunkFs.Memory;
using Snapshots.Prefetch;
using Snapshots.Store.Chunks;
using Snapshots.Store.Tiers;

namespace Snapshots.Tests;

/// <summary>One fetch scheduler for many restores: on a shared reader every restore's demand fetch goes before any
/// restore's queued prefetch; a shared prefetch bucket is fair between prefetchers.</summary>
[Trait("Category", Category.Unit)]
public class SharedSchedulerTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(20);

    /// <summary>An origin whose every read waits for the test to let it through, recording the order reads
    /// reached it.</summary>
    private sealed class GatedStore(IChunkStore inner) : IChunkStore, IDisposable
    {
        public void Dispose() => Gate.Dispose();

        public readonly SemaphoreSlim Gate = new(0);
        public readonly ConcurrentQueue<ChunkName> Arrived = new();
        public string Describe => "gated " + inner.Describe;

        public async ValueTask<int> TryGetAsync(ChunkName name, Memory<byte> buffer, CancellationToken ct = default)
        {
            Arrived.Enqueue(name);
            await Gate.WaitAsync(ct);
            return await inner.TryGetAsync(name, buffer, ct);
        }
    }

    private static async Task UntilAsync(Func<bool> condition)
    {
        for (var until = DateTime.UtcNow + Long; !condition(); await Task.Delay(5))
            Assert.True(DateTime.UtcNow < until, "timed out");
    }

    [Fact]
    public async Task Demand_of_one_restore_goes_before_queued_prefetch_of_another_on_a_shared_reader()
    {
        using var t = new TestStore();
        await HostMemoryTests.TwoChainsAsync(t);
        using var gated = new GatedStore(new OriginChunkStore(t.Blobs));
        // Two origin slots: no reserve, one prefetch in flight at most (PrioritySlots).
        var options = ReaderOptions.For(0) with { Origin = new TierOptions(Long, 2, Long) };
        using var reader = new ChunkReader(options, gated);
        using var host = new HostMemory(1L << 30, reserve: 0);
        var osChain = await t.OpenAsync("os");
        var rtChain = await t.OpenAsync("rt");
        using var first = host.Lease(osChain, null, reader);
        using var second = host.Lease(rtChain, null, reader);
        var osNames = HostMemoryTests.DataNames(osChain);
        // Chunks only the second restore's chain has (nothing to copy, nothing shared in flight).
        var own = Enumerable.Range(0, rtChain.ChunkCount)
            .Where(c => !rtChain.Chunks[c].IsZero && !osNames.Contains(rtChain.Chunks[c].Name)).Take(2).ToArray();
        var osData = Enumerable.Range(0, osChain.ChunkCount).Where(c => !osChain.Chunks[c].IsZero).ToArray();
        Assert.True(own.Length == 2 && osData.Length >= 4);

        // Restore 1: a demand fetch holding a slot, then three prefetches queued behind it.
        var loads = new List<Task> { first.Memory.LoadAsync(osData[0], CancellationToken.None) };
        await UntilAsync(() => gated.Arrived.Count == 1);
        for (int i = 1; i <= 3; i++)
            loads.Add(first.Memory.LoadAsync(osData[i], CancellationToken.None, FetchPriority.Prefetch));
        await Task.Delay(100);
        // Restore 2: a demand fetch takes the last slot, another queues with the prefetches.
        loads.Add(second.Memory.LoadAsync(own[0], CancellationToken.None));
        await UntilAsync(() => gated.Arrived.Count == 2);
        loads.Add(second.Memory.LoadAsync(own[1], CancellationToken.None));
        await Task.Delay(100);
        Assert.Equal(2, gated.Arrived.Count); // everything else waits for a slot

        gated.Gate.Release(); // the first demand fetch finishes: its slot goes to restore 2's queued demand
        await UntilAsync(() => gated.Arrived.Count == 3);
        Assert.Equal(rtChain.Chunks[own[1]].Name, gated.Arrived.ToArray()[2]);

        gated.Gate.Release(100);
        await Task.WhenAll(loads).WaitAsync(Long);
        var order = gated.Arrived.ToArray();
        Assert.Equal(6, order.Length);
        Assert.All(order[3..], n => Assert.Contains(n, osNames)); // the prefetches came last
    }

    /// <summary>A prefetcher counting its loads.</summary>
    private sealed class CountingTarget : IPrefetchTarget
    {
        public long Loaded;
        public ValueTask LoadChunkAsync(PrefetchUnit unit, CancellationToken ct)
        {
            Interlocked.Increment(ref Loaded);
            return ValueTask.CompletedTask;
        }

        public void ChunkReady(PrefetchUnit unit) { }
    }

    [Fact]
    public async Task A_shared_bucket_is_fair_between_two_prefetchers()
    {
        // 40 chunks a second in all, four of burst (as a scheduler's own bucket); the first prefetcher starts
        // alone, with its takes already queued when the second arrives.
        var bucket = new TokenBucket(40L * ChunkGeometry.ChunkSize, 4L * ChunkGeometry.ChunkSize);
        var work = Enumerable.Range(0, 10_000).Select(c => new PrefetchUnit(c, [0], false)).ToList();
        var (a, b) = (new CountingTarget(), new CountingTarget());
        using var stop = new CancellationTokenSource();
        var runA = new PrefetchScheduler(work, a, new PrefetchOptions { Concurrency = 4, Bucket = bucket })
            .RunAsync(stop.Token);
        await Task.Delay(300);
        long aAlone = Interlocked.Read(ref a.Loaded);
        var runB = new PrefetchScheduler(work, b, new PrefetchOptions { Concurrency = 4, Bucket = bucket })
            .RunAsync(stop.Token);
        await Task.Delay(300); // b's first takes queue behind a's: count from when both take turns
        long a0 = Interlocked.Read(ref a.Loaded), b0 = Interlocked.Read(ref b.Loaded);
        await Task.Delay(1500);
        long aShare = Interlocked.Read(ref a.Loaded) - a0, bShare = Interlocked.Read(ref b.Loaded) - b0;
        await stop.CancelAsync();
        await Task.WhenAll(runA, runB).WaitAsync(Long);
        // Alone: the whole rate (~16 in 0.3 s with the burst). Together: about 30 each in 1.5 s (fewer on a busy
        // machine, whose late timers lose tokens), taking turns: apart by at most one round of the queue (a
        // prefetcher has one take waiting per worker), however long they run.
        Assert.InRange(aAlone, 6, 24);
        Assert.InRange(aShare + bShare, 20, 75);
        Assert.True(Math.Abs(aShare - bShare) <= 4, $"{aShare} vs {bShare} chunks");
    }

    [Fact]
    public async Task A_bucket_grants_takes_in_arrival_order()
    {
        // One take every 25 ms; the burst is spent by the first.
        var bucket = new TokenBucket(40 * 1024, 1024);
        var granted = new ConcurrentQueue<string>();
        async Task TakeAsync(string who)
        {
            await bucket.TakeAsync(1024, CancellationToken.None);
            granted.Enqueue(who);
        }
        var takes = new List<Task> { TakeAsync("a0") };
        for (int i = 1; i <= 3; i++) takes.Add(TakeAsync($"a{i}"));
        takes.Add(TakeAsync("b"));
        await UntilAsync(() => bucket.Waiting == 4);
        takes.Add(TakeAsync("a4")); // later than b: never before it
        using var cancelled = new CancellationTokenSource();
        var leaving = bucket.TakeAsync(1024, cancelled.Token).AsTask();
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => leaving);
        await Task.WhenAll(takes).WaitAsync(Long);
        Assert.Equal(["a0", "a1", "a2", "a3", "b", "a4"], granted.ToArray());
        Assert.Equal(0, bucket.Waiting);
    }
}
