using Snapshots.Store.Tiers;

namespace Snapshots.Tests;

/// <summary>A tier's slots: demand fetches never wait behind queued prefetches; prefetch stays under its bound,
/// above the reserve, and out of the way while a demand fetch is in flight; a promoted prefetch moves to the
/// demand queue.</summary>
[Trait("Category", Category.Unit)]
public class PrioritySlotsTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(10);

    private static FetchTicket Prefetch() => new(FetchPriority.Prefetch);

    /// <summary>Takes <paramref name="count"/> slots at once, each with its own ticket.</summary>
    private static async Task<List<FetchTicket>> HoldAsync(PrioritySlots slots, int count, FetchPriority priority)
    {
        var held = new List<FetchTicket>();
        for (int i = 0; i < count; i++)
        {
            var t = new FetchTicket(priority);
            Assert.True(await slots.WaitAsync(t, Long, default));
            held.Add(t);
        }
        return held;
    }

    [Fact]
    public async Task Prefetch_stays_under_its_bound_and_demand_is_never_held()
    {
        var slots = new PrioritySlots(64); // reserve 16, at most 4 prefetches in flight
        Assert.Equal(4, slots.MaxPrefetch);
        var held = await HoldAsync(slots, 4, FetchPriority.Prefetch);
        var fifth = slots.WaitAsync(Prefetch(), Long, default).AsTask();
        Assert.False(fifth.IsCompleted);
        Assert.True(await slots.WaitAsync(FetchTicket.Demand, TimeSpan.Zero, default)); // at once
        slots.Release(held[0]);
        await Task.Delay(50);
        Assert.False(fifth.IsCompleted); // a demand fetch is in flight: no new prefetch starts
    }

    [Fact]
    public async Task A_freed_slot_goes_to_demand_before_queued_prefetches()
    {
        var slots = new PrioritySlots(4);
        var demands = await HoldAsync(slots, 4, FetchPriority.Demand);
        var p1 = slots.WaitAsync(Prefetch(), Long, default).AsTask();
        var p2 = slots.WaitAsync(Prefetch(), Long, default).AsTask();
        var late = FetchTicket.Demand;
        var demand = slots.WaitAsync(late, Long, default).AsTask();
        slots.Release(demands[0]);
        Assert.True(await demand.WaitAsync(Long));
        Assert.False(p1.IsCompleted || p2.IsCompleted);
        foreach (var t in demands.Skip(1)) slots.Release(t);
        await Task.Delay(50);
        Assert.False(p1.IsCompleted || p2.IsCompleted); // the late demand is still in flight
        slots.Release(late);
        Assert.True(await p1.WaitAsync(Long)); // the oldest prefetch, and only one (the bound for 4 slots)
        await Task.Delay(50);
        Assert.False(p2.IsCompleted);
    }

    [Fact]
    public async Task A_promoted_prefetch_is_served_as_demand()
    {
        var slots = new PrioritySlots(4);
        var demands = await HoldAsync(slots, 4, FetchPriority.Demand);
        var other = slots.WaitAsync(Prefetch(), Long, default).AsTask();
        var ticket = Prefetch();
        var promoted = slots.WaitAsync(ticket, Long, default).AsTask();
        ticket.Promote();
        Assert.Equal(FetchPriority.Demand, ticket.Priority);
        slots.Release(demands[0]);
        Assert.True(await promoted.WaitAsync(Long));
        Assert.False(other.IsCompleted);
    }

    [Fact]
    public async Task Timeouts_and_cancellation_leave_the_queue()
    {
        var slots = new PrioritySlots(1);
        var first = FetchTicket.Demand;
        Assert.True(await slots.WaitAsync(first, Long, default));
        Assert.False(await slots.WaitAsync(FetchTicket.Demand, TimeSpan.FromMilliseconds(20), default));
        using var cts = new CancellationTokenSource(20);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => slots.WaitAsync(FetchTicket.Demand, Long, cts.Token).AsTask());
        slots.Release(first);
        // Neither the timed-out nor the cancelled waiter took the freed slot.
        Assert.True(await slots.WaitAsync(FetchTicket.Demand, TimeSpan.Zero, default));
    }
}
