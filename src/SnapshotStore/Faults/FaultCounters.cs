using System.Globalization;

namespace Snapshots.Store.Faults;

/// <summary>What a <see cref="FaultInjectingChunkStore"/> did since it was made: reads seen, and per kind the
/// faults injected. Thread-safe; read them at any time (for assertions and reports). A read can be both delayed
/// and given one outcome (stall, error, miss or corruption); corruption is counted only when there were bytes to
/// corrupt (the inner store had the chunk).</summary>
public sealed class FaultCounters
{
    private long _reads, _delayed, _stalled, _errors, _misses, _corrupted;

    public long Reads => Interlocked.Read(ref _reads);
    public long Delayed => Interlocked.Read(ref _delayed);
    public long Stalled => Interlocked.Read(ref _stalled);
    public long Errors => Interlocked.Read(ref _errors);
    public long Misses => Interlocked.Read(ref _misses);
    public long Corrupted => Interlocked.Read(ref _corrupted);

    internal void Read() => Interlocked.Increment(ref _reads);
    internal void Delay() => Interlocked.Increment(ref _delayed);
    internal void Stall() => Interlocked.Increment(ref _stalled);
    internal void Error() => Interlocked.Increment(ref _errors);
    internal void Miss() => Interlocked.Increment(ref _misses);
    internal void Corrupt() => Interlocked.Increment(ref _corrupted);

    /// <summary>One line for reports: "reads 100, delayed 10, stalled 1, errors 5, misses 3, corrupted 2".</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"reads {Reads}, delayed {Delayed}, stalled {Stalled}, errors {Errors}, misses {Misses}, " +
        $"corrupted {Corrupted}");
}
