using System.Globalization;
using System.Runtime.CompilerServices;

namespace Snapshots.Store.Faults;

/// <summary>
/// What a <see cref="FaultInjectingChunkStore"/> does to reads. For every read one outcome is drawn: a stall,
/// an error, a miss, corrupt bytes, or none, with the four outcome rates as its probabilities; and, on its own
/// draw, whether the read is first delayed. Rates are fractions of reads, 0..1 (1 = every read); the outcome
/// rates share each read, so they must sum to at most 1 (checked where a profile is given to a store). A rate
/// outside 0..1 is an <see cref="ArgumentOutOfRangeException"/> naming the property. Immutable: to change a
/// store's faults at run time, assign it a new profile (<c>store.Profile = profile with { ErrorRate = 1 }</c>).
/// </summary>
public sealed record FaultProfile
{
    private readonly double _latencyRate = 1, _stallRate, _errorRate, _missRate, _corruptRate;
    private readonly TimeSpan _latency, _latencyJitter, _stallDuration = Timeout.InfiniteTimeSpan;

    /// <summary>No faults: every read goes straight to the inner store.</summary>
    public static FaultProfile None { get; } = new();

    /// <summary>A slow disk or a congested link: every read waits <paramref name="latency"/> (plus up to
    /// <paramref name="jitter"/>, uniformly) before it reaches the inner store.</summary>
    public static FaultProfile Slow(TimeSpan latency, TimeSpan jitter = default) =>
        new() { Latency = latency, LatencyJitter = jitter };

    /// <summary>Fraction of reads delayed by <see cref="Latency"/> + [0, <see cref="LatencyJitter"/>) before they
    /// reach the inner store. Default 1: once a latency is set, every read pays it; a small rate with a large
    /// latency makes a latency tail.</summary>
    public double LatencyRate { get => _latencyRate; init => _latencyRate = Rate(value); }

    /// <summary>The fixed part of the delay; default zero (no delay).</summary>
    public TimeSpan Latency { get => _latency; init => _latency = NotNegative(value); }

    /// <summary>The variable part of the delay: each delayed read adds a uniform draw from [0, this). With both
    /// set, a delay lies in [Latency, Latency + LatencyJitter).</summary>
    public TimeSpan LatencyJitter { get => _latencyJitter; init => _latencyJitter = NotNegative(value); }

    /// <summary>Fraction of reads that hang, as on a hung connection or a stalled node: no answer until the
    /// read is cancelled (the reader's deadline for the tier) or <see cref="StallDuration"/> passes, after which
    /// the read goes on to the inner store.</summary>
    public double StallRate { get => _stallRate; init => _stallRate = Rate(value); }

    /// <summary>How long a stall lasts when nothing cancels it; default <see cref="Timeout.InfiniteTimeSpan"/>
    /// (until cancelled). Positive or infinite.</summary>
    public TimeSpan StallDuration
    {
        get => _stallDuration;
        init => _stallDuration = value > TimeSpan.Zero || value == Timeout.InfiniteTimeSpan
            ? value
            : throw new ArgumentOutOfRangeException(nameof(StallDuration), value,
                $"{nameof(StallDuration)} must be positive or Timeout.InfiniteTimeSpan");
    }

    /// <summary>Fraction of reads that throw <see cref="InjectedFaultException"/> (an IOException): a 5xx from
    /// an object store, a reset connection, an EIO from a disk. The reader counts it as the tier's error.</summary>
    public double ErrorRate { get => _errorRate; init => _errorRate = Rate(value); }

    /// <summary>Fraction of reads answered "not here" (-1) without asking the inner store: an evicted entry, a
    /// cold or restarted cache node.</summary>
    public double MissRate { get => _missRate; init => _missRate = Rate(value); }

    /// <summary>Fraction of reads whose bytes come back with one bit flipped (the stored entry is untouched):
    /// bit rot, a torn write, a node that lies. The reader's name check catches it.</summary>
    public double CorruptRate { get => _corruptRate; init => _corruptRate = Rate(value); }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> when the outcome rates sum to more than 1
    /// (a read can have only one outcome).</summary>
    internal void CheckOutcomeRates(string paramName)
    {
        double sum = StallRate + ErrorRate + MissRate + CorruptRate;
        if (sum > 1 + 1e-9)
            throw new ArgumentOutOfRangeException(paramName, string.Create(CultureInfo.InvariantCulture,
                $"StallRate + ErrorRate + MissRate + CorruptRate is {sum:0.###}: they share each read, so at most 1"));
    }

    private static double Rate(double value, [CallerMemberName] string name = "") =>
        value is >= 0 and <= 1
            ? value
            : throw new ArgumentOutOfRangeException(name, value, $"{name} is a fraction of reads: 0..1");

    private static TimeSpan NotNegative(TimeSpan value, [CallerMemberName] string name = "") =>
        value >= TimeSpan.Zero
            ? value
            : throw new ArgumentOutOfRangeException(name, value, $"{name} must not be negative");
}
