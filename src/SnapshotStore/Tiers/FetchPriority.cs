namespace Snapshots.Store.Tiers;

/// <summary>Who waits for a fetch: a vCPU stopped on a fault (<see cref="Demand"/>) or the prefetcher working
/// ahead (<see cref="Prefetch"/>). At every tier a demand fetch takes a free slot before any queued prefetch fetch,
/// and a quarter of each tier's slots are kept for demand (<see cref="PrioritySlots"/>).</summary>
public enum FetchPriority
{
    Demand,
    Prefetch,
}

/// <summary>
/// The priority of one fetch as it moves through the tiers. A prefetch that a demand joins (a fault on a chunk the
/// prefetcher is fetching) is promoted: if it is queued at a tier, it moves to that tier's demand queue, so the
/// fault never waits behind other prefetches.
/// </summary>
public sealed class FetchTicket(FetchPriority priority)
{
    private volatile int _priority = (int)priority;

    /// <summary>A new ticket for a demand fetch: each fetch has its own (a ticket records where it waits).</summary>
    public static FetchTicket Demand => new(FetchPriority.Demand);

    public FetchPriority Priority => (FetchPriority)_priority;

    /// <summary>Where the fetch is queued now (set and cleared by <see cref="PrioritySlots"/>).</summary>
    internal PrioritySlots.Waiter? Queued { get; set; }

    /// <summary>The slot this fetch holds was taken as a prefetch (it counts against the tier's prefetch bound
    /// until released, even if promoted meanwhile).</summary>
    internal bool HoldsPrefetchSlot { get; set; }

    internal PrioritySlots? QueuedAt { get; set; }

    /// <summary>The tier that served the fetch, nearest first (the origin is the reader's last): set by the reader,
    /// so that one of many users of a shared reader can count what it fetched from where. -1: not served (yet), or
    /// joined another fetch of the same chunk.</summary>
    public int ServedBy { get; internal set; } = -1;

    /// <summary>Makes this a demand fetch; moves it to the demand queue of the tier it waits at, if any.</summary>
    public void Promote()
    {
        if (_priority == (int)FetchPriority.Demand) return;
        _priority = (int)FetchPriority.Demand;
        QueuedAt?.Promote(this);
    }
}
