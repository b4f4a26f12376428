using System.Diagnostics;
using Snapshots.Store.Chunks;

namespace Snapshots.Store.Tiers;

/// <summary>
/// One tier as the reader uses it: a chunk store behind a deadline, a bound on concurrent fetches and a name
/// check, with its counters. Whatever the store does (answer, fail, hang, lie) the result is a
/// <see cref="TierRead"/> within the deadline; only the caller's own cancellation escapes as an exception.
/// </summary>
internal sealed class Tier
{
    private readonly IChunkStore _store;
    private readonly IChunkCache? _cache;
    private readonly TierOptions _options;
    private readonly PrioritySlots _slots;

    public Tier(IChunkStore store, TierOptions options)
    {
        _store = store;
        _cache = store as IChunkCache;
        _options = options;
        _slots = new PrioritySlots(options.MaxConcurrency);
        Counters = new TierCounters(store.Describe);
        if (_cache is not null) Counters.ExternalCorrupt = () => _cache.DroppedCorrupt;
    }

    private static readonly TimeSpan PrefetchQueueTimeout = TimeSpan.FromSeconds(30);

    public TierCounters Counters { get; }
    public IChunkCache? Cache => _cache;
    public string Describe => _store.Describe;
    public TierOptions Options => _options;

    public async ValueTask<TierRead> TryGetAsync(
        ChunkName name, Memory<byte> buffer, FetchTicket ticket, CancellationToken ct)
    {
        // A busy cache is skipped after its short queue timeout (a demand fetch goes on to the next tier); a
        // prefetch waits its turn instead: skipping would send it to a farther, slower tier.
        var queueTimeout = ticket.Priority == FetchPriority.Prefetch && _options.QueueTimeout < PrefetchQueueTimeout
            ? PrefetchQueueTimeout
            : _options.QueueTimeout;
        if (!await _slots.WaitAsync(ticket, queueTimeout, ct))
        {
            Counters.Skip();
            double waited = queueTimeout.TotalMilliseconds;
            return new TierRead(TierOutcome.Busy, 0, $"{Describe} had no free slot within {waited:0} ms");
        }
        long start = Stopwatch.GetTimestamp();
        int n;
        try
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
            deadline.CancelAfter(_options.Deadline);
            try
            {
                n = await _store.TryGetAsync(name, buffer, deadline.Token);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                Counters.Timeout();
                return new TierRead(
                    TierOutcome.Timeout, 0, $"{Describe} did not answer within {Format(_options.Deadline)}");
            }
            catch (SnapshotException ex) when (ex is HostileFileException or CorruptObjectException)
            {
                // A planted link, FIFO or oversized file under the chunk's name: its bytes are not the chunk's, and
                // asking again will not change that. Corrupt, as bytes that do not hash to the name would be.
                Counters.CorruptEntry();
                return new TierRead(TierOutcome.Corrupt, 0, ex.Message);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // A tier that fails is a miss for a cache and a named error for the origin, never a crash.
                Counters.Error();
                return new TierRead(TierOutcome.Error, 0, ex.Message);
            }
        }
        finally
        {
            _slots.Release(ticket);
        }

        if (n < 0)
        {
            Counters.Miss();
            return new TierRead(TierOutcome.Miss, 0);
        }
        if ((_cache is null || !_cache.VerifiesOnRead) && !name.Matches(buffer.Span[..n]))
        {
            Counters.CorruptEntry();
            _cache?.Remove(name);
            return new TierRead(TierOutcome.Corrupt, 0, $"its bytes in {Describe} do not hash to its name");
        }
        Counters.Hit(n, start);
        return new TierRead(TierOutcome.Hit, n);
    }

    /// <summary>Fills this cache with a chunk verified elsewhere; a failure is counted, never thrown.</summary>
    public async ValueTask FillAsync(ChunkName name, ReadOnlyMemory<byte> ciphertext, CancellationToken ct)
    {
        if (_cache is null) return;
        try { await _cache.PutAsync(name, ciphertext, ct); }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            Counters.FillError();
        }
    }

    internal static string Format(TimeSpan t) =>
        t.TotalSeconds >= 1 ? $"{t.TotalSeconds:0.##} s" : $"{t.TotalMilliseconds:0} ms";
}
