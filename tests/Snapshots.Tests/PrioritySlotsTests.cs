using Snapshots.Store.Tiers;

namespace Snapshots.Tests;

/// <summary>A tier's slots: demand fetches never wait behind queued prefetches, a quarter of the slots is kept
/// for demand, a promoted prefetch moves to the demand queue.</summary>
[Trait("Category", Category.Unit)]
public class PrioritySlotsTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(10);

    private static FetchTicket Prefetch() => new(FetchPriority.Prefetch);

    [Fact]
    public async Task Prefetch_leaves_the_reserve_to_demand()
    {
        var slots = new PrioritySlots(8); // reserve 2
        for (int i = 0; i < 6; i++) Assert.True(await slots.WaitAsync(Prefetch(), Long, default));
        var queued = slots.WaitAsync(Prefetch(), Long, default).AsTask();
        Assert.False(queued.IsCompleted);
        Assert.True(await slots.WaitAsync(FetchTicket.Demand, TimeSpan.Zero, default)); // at once, no wait
        Assert.True(await slots.WaitAsync(FetchTicket.Demand, TimeSpan.Zero, default));
        Assert.False(queued.IsCompleted);
    }

    [Fact]
    public async Task A_freed_slot_goes_to_demand_before_queued_prefetches()
    {
        var slots = new PrioritySlots(4);
        for (int i = 0; i < 4; i++) Assert.True(await slots.WaitAsync(FetchTicket.Demand, Long, default));
        var p1 = slots.WaitAsync(Prefetch(), Long, default).AsTask();
        var p2 = slots.WaitAsync(Prefetch(), Long, default).AsTask();
        var demand = slots.WaitAsync(FetchTicket.Demand, Long, default).AsTask();
        slots.Release();
        Assert.True(await demand.WaitAsync(Long));
        Assert.False(p1.IsCompleted || p2.IsCompleted);
        slots.Release(); // one free: that is the reserve, prefetch still waits
        await Task.Delay(50);
        Assert.False(p1.IsCompleted || p2.IsCompleted);
        slots.Release();
        Assert.True(await p1.WaitAsync(Long)); // two free: one above the reserve, the oldest prefetch
        Assert.False(p2.IsCompleted);
    }

    [Fact]
    public async Task A_promoted_prefetch_is_served_as_demand()
    {
        var slots = new PrioritySlots(4);
        for (int i = 0; i < 4; i++) Assert.True(await slots.WaitAsync(FetchTicket.Demand, Long, default));
        var other = slots.WaitAsync(Prefetch(), Long, default).AsTask();
        var ticket = Prefetch();
        var promoted = slots.WaitAsync(ticket, Long, default).AsTask();
        ticket.Promote();
        Assert.Equal(FetchPriority.Demand, ticket.Priority);
        slots.Release();
        Assert.True(await promoted.WaitAsync(Long));
        Assert.False(other.IsCompleted);
    }

    [Fact]
    public async Task Timeouts_and_cancellation_leave_the_queue()
    {
        var slots = new PrioritySlots(1);
        Assert.True(await slots.WaitAsync(FetchTicket.Demand, Long, default));
        Assert.False(await slots.WaitAsync(FetchTicket.Demand, TimeSpan.FromMilliseconds(20), default));
        using var cts = new CancellationTokenSource(20);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => slots.WaitAsync(FetchTicket.Demand, Long, cts.Token).AsTask());
        slots.Release();
        // Neither the timed-out nor the cancelled waiter took the freed slot.
        Assert.True(await slots.WaitAsync(FetchTicket.Demand, TimeSpan.Zero, default));
    }
}
