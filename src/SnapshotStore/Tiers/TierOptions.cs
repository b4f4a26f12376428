namespace Snapshots.Store.Tiers;

/// <summary>How long one tier may take for one chunk, and how many chunks it may fetch at once.</summary>
/// <param name="Deadline">A fetch that takes longer is abandoned and counted as a timeout; the reader asks the
/// next tier (a cache) or fails naming the chunk (the origin).</param>
/// <param name="MaxConcurrency">Fetches in flight at this tier; more wait for a slot.</param>
/// <param name="QueueTimeout">How long a read waits for a slot: a cache that is busy for longer is skipped.</param>
public sealed record TierOptions(TimeSpan Deadline, int MaxConcurrency, TimeSpan QueueTimeout)
{
    public static TierOptions LocalDisk { get; } = new(TimeSpan.FromSeconds(2), 32, TimeSpan.FromSeconds(1));
    public static TierOptions Distributed { get; } =
        new(TimeSpan.FromMilliseconds(250), 64, TimeSpan.FromMilliseconds(50));
    public static TierOptions Origin { get; } = new(TimeSpan.FromSeconds(15), 32, TimeSpan.FromSeconds(30));

    /// <summary>The distributed tier over the nodes of <paramref name="address"/>: its deadline covers a stripe's
    /// node deadline and a retry on another node (2.5 node deadlines).</summary>
    public static TierOptions DistributedOver(Distributed.RedisAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        return Distributed with { Deadline = address.NodeDeadline * 2.5 };
    }
}
