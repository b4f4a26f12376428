namespace Snapshots.Store.Tiers;

/// <summary>A count of background work in flight (cache fills), with a bound and a bounded wait for it to drain:
/// the reader's fills and the Redis tier's writes share it. Thread-safe.</summary>
internal sealed class PendingWork(int max)
{
    private int _count;

    public int Count => Volatile.Read(ref _count);

    /// <summary>Counts one more piece of work; false (nothing counted) when <c>max</c> are already in flight.</summary>
    public bool TryEnter()
    {
        if (Interlocked.Increment(ref _count) <= max) return true;
        Interlocked.Decrement(ref _count);
        return false;
    }

    /// <summary>Counts one more piece of work, whatever the bound (work already started elsewhere).</summary>
    public void Enter() => Interlocked.Increment(ref _count);

    public void Exit() => Interlocked.Decrement(ref _count);

    /// <summary>Waits, at most <paramref name="limit"/>, until nothing is in flight.</summary>
    public async Task WaitIdleAsync(TimeSpan limit)
    {
        long until = Environment.TickCount64 + (long)limit.TotalMilliseconds;
        while (Count > 0 && Environment.TickCount64 < until) await Task.Delay(2).ConfigureAwait(false);
    }
}
