using System.Buffers;
using System.Diagnostics;
using Snapshots.Store.Tiers;

namespace Snapshots.Store.Chunks;

/// <summary>
/// Reads a chunk's ciphertext from the nearest tier that has it intact: caches in order (local disk, then the
/// distributed cache), then the origin. The first hit wins and fills the nearer caches. Every byte is checked
/// against the chunk's name before it is returned or filled back; a corrupt cache entry is dropped and the next
/// tier asked. Each tier has a deadline and a bound on concurrent fetches (<see cref="ReaderOptions"/>), and
/// concurrent readers of one chunk share one fetch (<see cref="SingleFlight"/>). A chunk the origin does not
/// have intact, or does not serve within its deadline, is a <see cref="ChunkUnavailableException"/> naming the
/// chunk and the caller's context.
/// </summary>
public sealed class ChunkReader : IDisposable
{
    private readonly Tier[] _caches;
    private readonly Tier _origin;
    private readonly TierCounters[] _counters;
    private readonly SingleFlight _flights = new();
    private readonly SingleFlight.Fetch _fetch;
    private readonly bool _ownsTiers;
    private readonly RetryPolicy _retry;
    private readonly RetryBudget _budget = new();
    private readonly PendingWork _pendingFills = new(MaxBackgroundFills);
    private long _retries;

    public ChunkReader(IChunkStore origin, params IChunkCache[] caches)
        : this(ReaderOptions.For(caches.Length), origin, caches) { }

    public ChunkReader(ReaderOptions options, IChunkStore origin, params IChunkCache[] caches)
    {
        if (options.Caches.Count != caches.Length)
            throw new ArgumentException($"{caches.Length} caches but {options.Caches.Count} cache options");
        _caches = new Tier[caches.Length];
        _counters = new TierCounters[caches.Length + 1];
        for (int i = 0; i < caches.Length; i++)
        {
            _caches[i] = new Tier(caches[i], options.Caches[i]);
            _counters[i] = _caches[i].Counters;
        }
        _origin = new Tier(origin, options.Origin);
        _counters[^1] = _origin.Counters;
        _fetch = FetchAsync;
        _ownsTiers = options.OwnsTiers;
        _retry = options.Retry;
    }

    /// <summary>One entry per tier, nearest first, the origin last.</summary>
    public IReadOnlyList<TierCounters> Counters => _counters;

    /// <summary>Reads that joined another reader's fetch of the same chunk instead of fetching.</summary>
    public long SharedFetches => _flights.Joined;

    /// <summary>Returns the ciphertext length in <paramref name="buffer"/>; throws
    /// <see cref="ChunkUnavailableException"/> naming the chunk and <paramref name="context"/>, with its
    /// <see cref="ChunkFault"/>: missing or corrupt at the origin, or unavailable from every tier.</summary>
    public ValueTask<int> ReadAsync(
        ChunkName name, Memory<byte> buffer, string context, CancellationToken ct = default) =>
        ReadAsync(name, buffer, context, FetchTicket.Demand, ct);

    /// <summary>As <see cref="ReadAsync(ChunkName, Memory{byte}, string, CancellationToken)"/>, at the priority of
    /// <paramref name="ticket"/> (<see cref="FetchPriority"/>).</summary>
    public async ValueTask<int> ReadAsync(
        ChunkName name, Memory<byte> buffer, string context, FetchTicket ticket, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(ticket);
        _budget.Deposit();
        long start = Stopwatch.GetTimestamp();
        for (int attempt = 1; ; attempt++)
        {
            var result = await _flights.RunAsync(name, buffer, _fetch, ticket, ct);
            if (result.Failure is not { } failure) return result.Length;
            // Transient (no tier answered in time or without error): retry within the window, within the budget.
            if (result.Fault == ChunkFault.Unavailable && !ct.IsCancellationRequested
                && await WaitForRetryAsync(attempt, start, ct))
                continue;
            // Bytes that do not hash to the name may have been damaged on the way (a flipped bit that TCP's checksum
            // missed): one re-read tells that from an object damaged at rest, which fails the same way again.
            if (result.Fault == ChunkFault.Corrupt && attempt == 1 && !ct.IsCancellationRequested
                && _budget.TryWithdraw())
            {
                Interlocked.Increment(ref _retries);
                continue;
            }
            string tries = attempt > 1 ? $" (after {attempt} attempts)" : "";
            throw new ChunkUnavailableException($"chunk {name} of {context} {failure}{tries}", result.Fault);
        }
    }

    /// <summary>Waits the backoff before retry ATTEMPT and takes the budget's token for it. With the budget spent it
    /// waits for the budget's refill (a slower retry, not a failure) while the window lasts; false once it is over.
    /// </summary>
    private async ValueTask<bool> WaitForRetryAsync(int attempt, long start, CancellationToken ct)
    {
        for (int wait = attempt; ; wait++)
        {
            var delay = _retry.Backoff(wait, Random.Shared);
            if (Stopwatch.GetElapsedTime(start) + delay >= _retry.Window) return false;
            await Task.Delay(delay, ct);
            if (_budget.TryWithdraw())
            {
                Interlocked.Increment(ref _retries);
                return true;
            }
        }
    }

    /// <summary>Retries of transient failures so far (<see cref="RetryPolicy"/>).</summary>
    public long Retries => Interlocked.Read(ref _retries);

    /// <summary>The budget the reader's retries draw on.</summary>
    public RetryBudget Budget => _budget;

    private async ValueTask<SingleFlight.FetchResult> FetchAsync(
        ChunkName name, Memory<byte> buffer, FetchTicket ticket, CancellationToken ct)
    {
        for (int i = 0; i < _caches.Length; i++)
        {
            var read = await _caches[i].TryGetAsync(name, buffer, ticket, ct);
            if (!read.IsHit) continue;
            ticket.ServedBy = i;
            await FillAsync(i, name, buffer[..read.Length], ct);
            return new SingleFlight.FetchResult(read.Length, null);
        }

        var origin = await _origin.TryGetAsync(name, buffer, ticket, ct);
        switch (origin.Outcome)
        {
            case TierOutcome.Hit:
                ticket.ServedBy = _caches.Length;
                await FillAsync(_caches.Length, name, buffer[..origin.Length], ct);
                return new SingleFlight.FetchResult(origin.Length, null);
            case TierOutcome.Miss:
                return new SingleFlight.FetchResult(-1, $"is missing from {_origin.Describe}", ChunkFault.Missing);
            case TierOutcome.Corrupt:
                return new SingleFlight.FetchResult(
                    -1, $"is corrupt in {_origin.Describe} ({origin.Reason})", ChunkFault.Corrupt);
            default:
                return new SingleFlight.FetchResult(-1, $"could not be read: {origin.Reason}");
        }
    }

    /// <summary>Fills the nearer caches with a chunk verified here, off the caller's path: a fault waits for the
    /// fetch, not for the local disk to take a copy. The fill works from a pooled copy (the caller's buffer is
    /// reused at once); past <see cref="MaxBackgroundFills"/> pending, it fills inline, so a slow cache slows the
    /// reads down rather than piling up copies.</summary>
    private ValueTask FillAsync(int foundAt, ChunkName name, ReadOnlyMemory<byte> ciphertext, CancellationToken ct)
    {
        if (foundAt == 0) return ValueTask.CompletedTask;
        if (!_pendingFills.TryEnter()) return FillNowAsync(foundAt, name, ciphertext, ct);
        var copy = ArrayPool<byte>.Shared.Rent(ciphertext.Length);
        ciphertext.CopyTo(copy);
        int length = ciphertext.Length;
        _ = Task.Run(async () =>
        {
            try
            {
                await FillNowAsync(foundAt, name, copy.AsMemory(0, length), CancellationToken.None);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(copy);
                _pendingFills.Exit();
            }
        }, CancellationToken.None);
        return ValueTask.CompletedTask;
    }

    private async ValueTask FillNowAsync(
        int foundAt, ChunkName name, ReadOnlyMemory<byte> ciphertext, CancellationToken ct)
    {
        for (int i = 0; i < foundAt; i++) await _caches[i].FillAsync(name, ciphertext, ct);
    }

    /// <summary>Fills that may run in the background at once.</summary>
    public const int MaxBackgroundFills = 64;

    /// <summary>Cache fills still running in the background.</summary>
    public int PendingFills => _pendingFills.Count;

    /// <summary>Fills still in flight anywhere: the reader's own background fills, and the writes caches accepted
    /// and still complete in the background (<see cref="IChunkCache.PendingFills"/>).</summary>
    internal int FillsInFlight
    {
        get
        {
            int n = _pendingFills.Count;
            foreach (var t in _caches) n += t.Cache!.PendingFills;
            return n;
        }
    }

    /// <summary>Waits, at most <paramref name="limit"/> in all, until every fill has finished: the reader's own
    /// background fills first, then the writes each cache still completes in the background. Returns how the
    /// fills ended so far (<see cref="Fills"/>): a fill still running at the limit is counted as pending.</summary>
    public async Task<FillReport> FlushFillsAsync(TimeSpan limit)
    {
        long until = Environment.TickCount64 + (long)limit.TotalMilliseconds;
        await _pendingFills.WaitIdleAsync(limit);
        foreach (var t in _caches)
        {
            long left = Math.Max(0, until - Environment.TickCount64);
            await t.Cache!.FlushFillsAsync(TimeSpan.FromMilliseconds(left));
        }
        return Fills;
    }

    /// <summary>Every fill of the nearer caches so far: in flight, failed (a write that threw, or one the cache
    /// refused or lost later) and skipped (a cache too far behind to take it).</summary>
    public FillReport Fills
    {
        get
        {
            long failed = 0, skipped = 0;
            foreach (var t in _caches)
            {
                failed += t.Counters.FillErrors + t.Cache!.FailedFills;
                skipped += t.Cache.SkippedFills;
            }
            return new FillReport(FillsInFlight, failed, skipped);
        }
    }

    /// <summary>Lets background fills finish (10 s at most), then disposes the caches that hold connections (the
    /// distributed cache) when the reader owns them.</summary>
    public void Dispose()
    {
        FlushFillsAsync(TimeSpan.FromSeconds(10)).GetAwaiter().GetResult();
        if (!_ownsTiers) return;
        foreach (var t in _caches) (t.Cache as IDisposable)?.Dispose();
    }
}

/// <summary>How a reader's fills of its nearer caches ended: <paramref name="Pending"/> still in flight,
/// <paramref name="Failed"/> refused, lost or thrown, <paramref name="Skipped"/> not attempted (a cache too far
/// behind). Counts of writes: the Redis tier writes a chunk as several stripes.</summary>
public sealed record FillReport(long Pending, long Failed, long Skipped)
{
    /// <summary>True when every fill landed: the caches hold every chunk the reader filled them with.</summary>
    public bool Complete => Pending == 0 && Failed == 0 && Skipped == 0;
}
