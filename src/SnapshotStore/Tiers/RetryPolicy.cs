namespace Snapshots.Store.Tiers;

/// <summary>
/// How the tiered reader retries a chunk no tier could serve for a transient reason (refused, reset, 5xx,
/// SlowDown, a tier's deadline: <see cref="ChunkFault.Unavailable"/>): again and again within
/// <see cref="Window"/> from the first attempt (a restore passes its fault deadline), waiting an exponentially
/// growing, fully jittered delay between attempts (AWS's "full jitter": uniform in [0, min(Max, First * 2^n))).
/// Missing chunks are not retried: asking again gives the same answer; a corrupt one is read once more at once (its
/// bytes may have been damaged on the way), then fails. Every retry spends a token
/// of a <see cref="RetryBudget"/> shared by the reader, so an outage never multiplies the load on the origin.
/// </summary>
public sealed record RetryPolicy
{
    /// <summary>No retries: the first failure is final.</summary>
    public static RetryPolicy None { get; } = new() { Window = TimeSpan.Zero };

    /// <summary>How long after the first attempt a retry may still start.</summary>
    public TimeSpan Window { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The cap of the first backoff; it doubles per attempt up to <see cref="MaxDelay"/>.</summary>
    public TimeSpan FirstDelay { get; init; } = TimeSpan.FromMilliseconds(50);

    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The delay before retry <paramref name="attempt"/> (1 = the first retry), drawn with
    /// <paramref name="random"/>.</summary>
    public TimeSpan Backoff(int attempt, Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        double cap = Math.Min(MaxDelay.TotalMilliseconds,
            FirstDelay.TotalMilliseconds * Math.Pow(2, Math.Min(attempt - 1, 30)));
        return TimeSpan.FromMilliseconds(random.NextDouble() * cap);
    }
}

/// <summary>
/// A token bucket for retries (Finagle's and gRPC's retry budget): every first attempt deposits
/// <see cref="Ratio"/> of a token, <see cref="RefillPerSecond"/> tokens come back each second, every retry takes one,
/// and the bucket holds at most <see cref="Burst"/>. So retries stay under Ratio of the traffic plus a small burst and
/// a fixed rate, however long an outage lasts; the rate is what lets an outage of a few seconds be outlived: when
/// every reader is waiting (paused VMs make no first attempts) the retries go on, slowly. Thread-safe.
/// </summary>
public sealed class RetryBudget(double ratio = 0.2, int burst = 20, double refillPerSecond = 10)
{
    private const long Scale = 1000;
    private readonly long _max = burst * Scale;
    private readonly long _deposit = (long)(ratio * Scale);
    private readonly long _refill = (long)(refillPerSecond * Scale);
    private long _tokens = burst * Scale;
    private long _refilledAt = System.Diagnostics.Stopwatch.GetTimestamp();
    private long _refused;

    public double Ratio { get; } = ratio;
    public int Burst { get; } = burst;
    public double RefillPerSecond { get; } = refillPerSecond;

    /// <summary>Retries refused because the budget was spent.</summary>
    public long Refused => Interlocked.Read(ref _refused);

    /// <summary>A first attempt: earns a fraction of a retry.</summary>
    public void Deposit() => Add(_deposit);

    private void Add(long amount)
    {
        long current, next;
        do
        {
            current = Interlocked.Read(ref _tokens);
            next = Math.Min(_max, current + amount);
        }
        while (current != next && Interlocked.CompareExchange(ref _tokens, next, current) != current);
    }

    /// <summary>Adds the tokens the time since the last refill earned (one caller wins each interval).</summary>
    private void Refill()
    {
        long now = System.Diagnostics.Stopwatch.GetTimestamp(), last = Interlocked.Read(ref _refilledAt);
        long earned = (long)((double)(now - last) * _refill / System.Diagnostics.Stopwatch.Frequency);
        if (earned <= 0 || Interlocked.CompareExchange(ref _refilledAt, now, last) != last) return;
        Add(earned);
    }

    /// <summary>Takes a token for a retry; false (counted) when none is left.</summary>
    public bool TryWithdraw()
    {
        Refill();
        long current;
        do
        {
            current = Interlocked.Read(ref _tokens);
            if (current < Scale)
            {
                Interlocked.Increment(ref _refused);
                return false;
            }
        }
        while (Interlocked.CompareExchange(ref _tokens, current - Scale, current) != current);
        return true;
    }
}
