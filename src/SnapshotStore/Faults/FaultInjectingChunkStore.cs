using Snapshots.Store.Chunks;

namespace Snapshots.Store.Faults;

/// <summary>
/// Wraps any chunk store and makes its reads slow, hung, failing, missing or lying, per a
/// <see cref="FaultProfile"/>: the shared fake for tests, benchmarks and the chaos harness (as garnet's
/// SimulatedFlakyDevice wraps a device). It describes itself as the inner store does, so messages and counters
/// read as they would in production. Wrap a cache in <see cref="FaultInjectingChunkCache"/> instead, so the
/// reader still fills it and drops what it finds corrupt.
/// <para>Per read, in order: an optional delay (cancellable); then at most one outcome: a stall (waits until the
/// read is cancelled or <see cref="FaultProfile.StallDuration"/> passes, then reads), an
/// <see cref="InjectedFaultException"/>, a miss (-1, the inner store is not asked), or one flipped bit in the
/// returned ciphertext (the inner store's copy stays intact). The profile is read once per read, so changing
/// <see cref="Profile"/> affects reads that start afterwards; a read already stalled stays stalled.</para>
/// <para>Deterministic: each instance draws from its own <c>System.Random(seed)</c>, under a lock, five draws per
/// read whatever the profile. So the n-th read an instance sees gets the same faults for the same seed and
/// profile on every run (the seeded sequence has not changed since .NET Framework, though .NET does not promise
/// it); with concurrent readers, arrival order decides which read is the n-th, not which faults occur.</para>
/// </summary>
public class FaultInjectingChunkStore : IChunkStore
{
    private readonly IChunkStore _inner;
    private readonly Random _random;
    private readonly Lock _lock = new();
    private FaultProfile _profile;

    /// <param name="inner">The store whose reads are disturbed; writes to it (a cache's) are not.</param>
    /// <param name="profile">The faults to inject; ArgumentOutOfRangeException when its outcome rates sum
    /// over 1.</param>
    /// <param name="seed">Seeds this instance's generator: same seed, same faults.</param>
    public FaultInjectingChunkStore(IChunkStore inner, FaultProfile profile, int seed)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(profile);
        profile.CheckOutcomeRates(nameof(profile));
        _inner = inner;
        _profile = profile;
        _random = new Random(seed);
    }

    public IChunkStore Inner => _inner;

    public string Describe => _inner.Describe;

    /// <summary>What was injected so far.</summary>
    public FaultCounters Injected { get; } = new();

    /// <summary>The faults for reads that start from now on: set it to start or end an outage. Setting a
    /// profile whose outcome rates sum over 1 throws ArgumentOutOfRangeException and keeps the old one.</summary>
    public FaultProfile Profile
    {
        get => Volatile.Read(ref _profile);
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            value.CheckOutcomeRates(nameof(value));
            Volatile.Write(ref _profile, value);
        }
    }

    public async ValueTask<int> TryGetAsync(ChunkName name, Memory<byte> buffer, CancellationToken ct = default)
    {
        var profile = Profile;
        var draw = Next();
        Injected.Read();

        if (draw.Delayed < profile.LatencyRate)
        {
            var delay = profile.Latency + profile.LatencyJitter * draw.Jitter;
            if (delay > TimeSpan.Zero)
            {
                Injected.Delay();
                await Task.Delay(delay, ct);
            }
        }

        switch (Pick(profile, draw.Fault))
        {
            case Outcome.Stall:
                Injected.Stall();
                await Task.Delay(profile.StallDuration, ct);
                break;
            case Outcome.Error:
                Injected.Error();
                throw new InjectedFaultException($"injected I/O error in {Describe}");
            case Outcome.Miss:
                Injected.Miss();
                return -1;
            case Outcome.Corrupt:
                // Flip one bit of the returned copy only: the entry stays intact, so a refill or reread heals it.
                int length = await _inner.TryGetAsync(name, buffer, ct);
                if (length <= 0) return length; // nothing to corrupt
                buffer.Span[(int)(draw.Position * length)] ^= (byte)(1 << draw.Bit);
                Injected.Corrupt();
                return length;
        }
        return await _inner.TryGetAsync(name, buffer, ct);
    }

    private enum Outcome { None, Stall, Error, Miss, Corrupt }

    /// <summary>The outcome rates cut [0, 1) into consecutive intervals: stall, error, miss, corrupt, then
    /// none; <paramref name="u"/> falls in one of them.</summary>
    private static Outcome Pick(FaultProfile p, double u)
    {
        if ((u -= p.StallRate) < 0) return Outcome.Stall;
        if ((u -= p.ErrorRate) < 0) return Outcome.Error;
        if ((u -= p.MissRate) < 0) return Outcome.Miss;
        return u - p.CorruptRate < 0 ? Outcome.Corrupt : Outcome.None;
    }

    /// <summary>Five draws per read, whatever the profile, so a profile change does not shift the sequence.</summary>
    private Draw Next()
    {
        lock (_lock)
            return new Draw(_random.NextDouble(), _random.NextDouble(), _random.NextDouble(), _random.NextDouble(),
                _random.Next(8));
    }

    private readonly record struct Draw(double Delayed, double Jitter, double Fault, double Position, int Bit);
}
