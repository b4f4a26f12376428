namespace Snapshots.Store.Chunks;

/// <summary>What one tier did for a reader: hits, misses, bytes, corrupt entries dropped, errors.</summary>
public sealed class TierCounters(string tier)
{
    private long _hits, _misses, _bytes, _corrupt, _errors;

    public string Tier { get; } = tier;
    public long Hits => Interlocked.Read(ref _hits);
    public long Misses => Interlocked.Read(ref _misses);
    public long Bytes => Interlocked.Read(ref _bytes);
    public long Corrupt => Interlocked.Read(ref _corrupt);
    public long Errors => Interlocked.Read(ref _errors);

    public void Hit(int bytes) { Interlocked.Increment(ref _hits); Interlocked.Add(ref _bytes, bytes); }
    public void Miss() => Interlocked.Increment(ref _misses);
    public void CorruptEntry() => Interlocked.Increment(ref _corrupt);
    public void Error() => Interlocked.Increment(ref _errors);
}
