using System.Buffers;
using System.Diagnostics;
using Snapshots.Store.Chunks;
using Snapshots.Store.Crypto;
using Snapshots.Store.Layers;
using Snapshots.Store.Tiers;

namespace Snapshots.ChunkFs.Memory;

/// <summary>
/// The memory tier: decrypted chunks of one snapshot in native, page-aligned buffers, bounded to a budget, oldest
/// loaded evicted first. A loader pins a chunk while the kernel copies from it (UFFDIO_COPY reads our memory);
/// a pinned chunk is never evicted. Loads are single-flight: a demand fault and the prefetcher asking for the same
/// chunk cause one fetch. The hot path (chunk resident) is two interlocked operations and no allocation.
/// Attached to a <see cref="HostMemory"/> (<see cref="HostMemory.Lease"/>), the budget, the eviction order and the
/// buffers are the host's, shared with every other attached instance, and a load copies a chunk another instance
/// has resident instead of fetching it; alone (the constructor), it has its own.
/// </summary>
public sealed class ResidentChunks : IPageSource, IDisposable
{
    private const int Evicting = int.MinValue;
    private readonly SnapshotChain _chain;
    private readonly ChunkReader _reader;
    /// <summary>Null when alone: then the budget, order and pool below are this instance's own.</summary>
    private readonly HostMemory? _host;
    private readonly int _maxResident;
    private readonly nint[] _addr;
    private readonly int[] _pins;
    /// <summary>Callers waiting in <see cref="PinAsync"/> per chunk: such a chunk is not evicted.</summary>
    private readonly int[] _wanted;
    private readonly TaskCompletionSource?[] _inflight;
    /// <summary>The priority of each fetch in flight: a demand that joins a prefetch promotes it.</summary>
    private readonly FetchTicket?[] _tickets;
    private readonly Queue<int> _loadedOrder = new();
    private readonly ChunkBufferPool _buffers;
    /// <summary>The host's lock when attached: eviction crosses instances.</summary>
    private readonly Lock _lock;
    private int _resident;
    private bool _disposed;
    private long _loads, _evictions, _coldBuffers;
    /// <summary>Chunks and ciphertext bytes this instance fetched from each of its reader's tiers (the origin
    /// last): its own share of a reader many instances may use.</summary>
    private readonly long[] _tierChunks, _tierBytes;
    /// <summary>The last <see cref="TimedLoads"/> loads' durations (Stopwatch ticks), whole and decryption only.
    /// </summary>
    private readonly long[] _loadTicks = new long[TimedLoads], _decryptTicks = new long[TimedLoads];
    private const int TimedLoads = 4096;

    /// <summary>Populated buffers kept ready for loads by default (64 MiB, populated in ~20 ms in the background
    /// while the VMM connects): a VM's start-up burst of demand loads finds them ready, and a background refill
    /// populated beside the loads slowed a 449-load restore by ~10 % (bench/results/uffd-demand-cost.md).</summary>
    public const int DefaultReserve = 128;

    /// <param name="chain">The snapshot whose chunks are served.</param>
    /// <param name="reader">The tiers chunks are fetched through.</param>
    /// <param name="budgetBytes">Plaintext kept in memory at most (whole chunks, at least two).</param>
    /// <param name="reserve">Populated chunk buffers kept ready ahead of loads (<see cref="ChunkBufferPool"/>).
    /// </param>
    public ResidentChunks(SnapshotChain chain, ChunkReader reader, long budgetBytes, int reserve = DefaultReserve)
        : this(chain, reader, null, new Lock(),
            // In long, then clamped: a budget of terabytes must not wrap to a negative count (every load evicted).
            (int)Math.Max(2, Math.Min(budgetBytes / ChunkGeometry.ChunkSize, chain.ChunkCount)), null)
    {
        int dataChunks = CountData(chain);
        _buffers = new ChunkBufferPool(Math.Min(_maxResident, dataChunks), Math.Min(reserve, dataChunks));
    }

    /// <summary>Attached to <paramref name="host"/>: its budget, eviction order, lock and buffers.</summary>
    internal ResidentChunks(SnapshotChain chain, ChunkReader reader, HostMemory host)
        : this(chain, reader, host, host.Lock, chain.ChunkCount /* unused: the host's budget applies */,
            host.Buffers)
    {
    }

    private ResidentChunks(SnapshotChain chain, ChunkReader reader, HostMemory? host, Lock @lock, int maxResident,
        ChunkBufferPool? buffers)
    {
        _chain = chain;
        _reader = reader;
        _host = host;
        _lock = @lock;
        _maxResident = maxResident;
        _addr = new nint[chain.ChunkCount];
        _pins = new int[chain.ChunkCount];
        _wanted = new int[chain.ChunkCount];
        _inflight = new TaskCompletionSource?[chain.ChunkCount];
        _tickets = new FetchTicket?[chain.ChunkCount];
        _tierChunks = new long[reader.Counters.Count];
        _tierBytes = new long[reader.Counters.Count];
        _buffers = buffers!; // the public constructor sets its own pool, once the budget is known
    }

    private static int CountData(SnapshotChain chain)
    {
        int dataChunks = 0;
        foreach (var c in chain.Chunks) if (!c.IsZero) dataChunks++;
        return dataChunks;
    }

    public long Size => _chain.ImageSize;
    public int ChunkCount => _chain.ChunkCount;
    public string Name => _chain.Name;
    public long Loads => Interlocked.Read(ref _loads);
    public long Evictions => Interlocked.Read(ref _evictions);
    public ChunkReader Reader => _reader;

    /// <summary>What this instance fetched from each tier (nearest first, the origin last): tier name, chunks and
    /// ciphertext bytes. Chunks copied from another instance or joined to another's fetch are not counted.</summary>
    public IReadOnlyList<(string Tier, long Chunks, long Bytes)> TierLoads()
    {
        var counters = _reader.Counters;
        var rows = new (string, long, long)[_tierChunks.Length];
        for (int i = 0; i < rows.Length; i++)
            rows[i] = (counters[i].Tier, Interlocked.Read(ref _tierChunks[i]),
                Interlocked.Read(ref _tierBytes[i]));
        return rows;
    }

    /// <summary>The host this instance is attached to; null when alone.</summary>
    public HostMemory? Host => _host;

    internal SnapshotChain Chain => _chain;

    /// <summary>The buffers chunks are decrypted into: the host's, shared, when attached.</summary>
    public ChunkBufferPool Buffers => _buffers;

    /// <summary>This instance's loads that found no populated buffer (<see cref="ChunkBufferPool.ColdRents"/>
    /// counts the whole pool's, every attached instance's when the pool is a host's).</summary>
    public long ColdBuffers => Interlocked.Read(ref _coldBuffers);

    public bool IsZeroChunk(int chunk) => _chain.Chunks[chunk].IsZero;

    /// <summary>True when the chunk's plaintext is in memory now (it may be evicted right after).</summary>
    public bool IsResident(int chunk) => Volatile.Read(ref _addr[chunk]) != 0;
    public bool IsZero(long offset) => IsZeroChunk((int)(offset / ChunkGeometry.ChunkSize));

    /// <summary>Pins a resident chunk and returns its address; false when it is not in memory.</summary>
    public bool TryPin(int chunk, out nint address)
    {
        if (Interlocked.Increment(ref _pins[chunk]) > 0)
        {
            address = Volatile.Read(ref _addr[chunk]);
            if (address != 0) return true;
        }
        Interlocked.Decrement(ref _pins[chunk]);
        address = 0;
        return false;
    }

    public void Unpin(int chunk) => Interlocked.Decrement(ref _pins[chunk]);

    /// <summary>Pins the chunk, fetching it through the tiers first if needed. While a caller waits here the chunk
    /// is not evicted once loaded, so many readers sharing a small budget make progress instead of evicting each
    /// other's chunks between load and pin.</summary>
    public async ValueTask<nint> PinAsync(int chunk, CancellationToken ct)
    {
        Interlocked.Increment(ref _wanted[chunk]);
        try
        {
            while (true)
            {
                if (TryPin(chunk, out var address)) return address;
                await LoadAsync(chunk, ct);
            }
        }
        finally
        {
            Interlocked.Decrement(ref _wanted[chunk]);
        }
    }

    /// <summary>Brings a chunk into memory (one fetch however many ask); completes when it is resident. A demand
    /// load that finds a prefetch of the chunk under way promotes it (<see cref="FetchTicket"/>).</summary>
    public Task LoadAsync(int chunk, CancellationToken ct, FetchPriority priority = FetchPriority.Demand)
    {
        TaskCompletionSource tcs;
        FetchTicket ticket;
        lock (_lock)
        {
            if (_addr[chunk] != 0) return Task.CompletedTask;
            if (_inflight[chunk] is { } running)
            {
                if (priority == FetchPriority.Demand) _tickets[chunk]?.Promote();
                return running.Task.WaitAsync(ct);
            }
            tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _inflight[chunk] = tcs;
            _tickets[chunk] = ticket = new FetchTicket(priority);
        }
        // Off the caller's thread: a fetch may block (a stalled tier) and the caller must still meet its deadline.
        _ = Task.Run(() => FetchAsync(chunk, tcs, ticket), CancellationToken.None);
        return tcs.Task.WaitAsync(ct);
    }

    private async Task FetchAsync(int chunk, TaskCompletionSource tcs, FetchTicket ticket)
    {
        nint buffer = 0;
        long start = Stopwatch.GetTimestamp();
        var cipher = ArrayPool<byte>.Shared.Rent(ConvergentCipher.MaxCiphertextSize);
        try
        {
            if (_chain.Chunks[chunk].IsZero)
                throw new InvalidOperationException($"chunk {chunk} is zero: loaders map zero pages instead");
            long fetched, decrypted;
            if (_host is not null && (buffer = CopyShared(chunk)) != 0)
            {
                fetched = decrypted = Stopwatch.GetTimestamp();
            }
            else
            {
                // The fetch has no caller's deadline: every waiter applies its own, and a late result still helps.
                int n = await _chain.ReadCiphertextAsync(_reader, chunk, cipher, ticket, CancellationToken.None);
                fetched = Stopwatch.GetTimestamp();
                if ((uint)ticket.ServedBy < (uint)_tierChunks.Length)
                {
                    Interlocked.Increment(ref _tierChunks[ticket.ServedBy]);
                    Interlocked.Add(ref _tierBytes[ticket.ServedBy], n);
                }
                buffer = RentBuffer();
                var plain = NativeBuffers.Span(buffer, ChunkGeometry.ChunkSize);
                _chain.DecryptOrThrow(chunk, cipher.AsSpan(0, n), plain);
                plain[_chain.ChunkLength(chunk)..].Clear(); // a short last chunk reads zeros past the image's end
                decrypted = Stopwatch.GetTimestamp();
            }
            lock (_lock)
            {
                ObjectDisposedException.ThrowIf(_disposed, this); // the catch below gives the buffer back
                Volatile.Write(ref _addr[chunk], buffer);
                buffer = 0;
                _inflight[chunk] = null;
                _tickets[chunk] = null;
                _resident++;
                if (_host is not null) _host.AddedLocked(this, chunk);
                else
                {
                    _loadedOrder.Enqueue(chunk);
                    EvictLocked();
                }
            }
            long slot = (Interlocked.Increment(ref _loads) - 1) % TimedLoads;
            _loadTicks[slot] = decrypted - start;
            _decryptTicks[slot] = decrypted - fetched;
            tcs.SetResult();
        }
        catch (Exception ex)
        {
            lock (_lock)
            {
                _inflight[chunk] = null;
                _tickets[chunk] = null;
            }
            if (buffer != 0) _buffers.Return(buffer);
            tcs.SetException(ex);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(cipher);
        }
    }

    /// <summary>A buffer holding chunk <paramref name="chunk"/>'s plaintext copied from a resident chunk of the same
    /// name and key (in this or another attached instance: <see cref="HostMemory"/> says why that is the same
    /// plaintext); 0 when none is resident.</summary>
    private nint CopyShared(int chunk)
    {
        if (!_host!.TryPinSame(this, chunk, out var owner, out int at, out var source)) return 0;
        try
        {
            var buffer = RentBuffer();
            var whole = NativeBuffers.Span(buffer, ChunkGeometry.ChunkSize);
            NativeBuffers.Span(source, ChunkGeometry.ChunkSize).CopyTo(whole); // its zero tail too
            _host.CountSharedHit();
            return buffer;
        }
        finally
        {
            owner.Unpin(at);
        }
    }

    private nint RentBuffer()
    {
        var buffer = _buffers.Rent(out bool fresh);
        if (fresh) Interlocked.Increment(ref _coldBuffers);
        return buffer;
    }

    /// <summary>Evicts the oldest unpinned chunks until within budget.</summary>
    private void EvictLocked()
    {
        int attempts = _loadedOrder.Count;
        while (_resident > _maxResident && attempts-- > 0)
        {
            int victim = _loadedOrder.Dequeue();
            if (!TryEvictLocked(victim)) _loadedOrder.Enqueue(victim); // in use: try the next oldest
        }
    }

    /// <summary>Evicts one resident chunk unless it is pinned or waited for (under the lock: this instance's, or
    /// the host's). A chunk is evicted only by swinging its pin count from 0 to a negative mark, so a concurrent
    /// TryPin either wins (and eviction skips it) or sees no address.</summary>
    internal bool TryEvictLocked(int victim)
    {
        if (Volatile.Read(ref _wanted[victim]) > 0
            || Interlocked.CompareExchange(ref _pins[victim], Evicting, 0) != 0)
        {
            return false;
        }
        var b = _addr[victim];
        Volatile.Write(ref _addr[victim], 0);
        // Remove the mark, keeping the count of TryPins under way (each sees no address and takes its own
        // increment back): writing 0 here would lose one, and the chunk could never be pinned again.
        Interlocked.Add(ref _pins[victim], Evicting);
        _buffers.Return(b);
        _resident--;
        Interlocked.Increment(ref _evictions);
        return true;
    }

    /// <summary>Chunk load times in microseconds over the last 4,096 loads: whole (tiers, verification and
    /// decryption, from the fetch's start to resident) and decryption alone (verify, decrypt, check the plaintext),
    /// p50 and p99; zeros before any load.</summary>
    public LoadTimes Times()
    {
        int n = (int)Math.Min(Loads, TimedLoads);
        var load = _loadTicks.AsSpan(0, n).ToArray();
        var decrypt = _decryptTicks.AsSpan(0, n).ToArray();
        Array.Sort(load);
        Array.Sort(decrypt);
        double Us(long[] sorted, double q) =>
            n == 0 ? 0 : sorted[Math.Min(n - 1, (int)(n * q))] * 1_000_000.0 / Stopwatch.Frequency;
        return new LoadTimes(Us(load, 0.5), Us(load, 0.99), Us(decrypt, 0.5), Us(decrypt, 0.99));
    }

    /// <summary>
    /// Loads every data chunk (as far as the budget allows): the "all in memory" case for benchmarks.
    /// </summary>
    public async Task PreloadAsync(int parallelism, CancellationToken ct)
    {
        int next = -1;
        var workers = new Task[Math.Max(1, parallelism)];
        for (int w = 0; w < workers.Length; w++)
            workers[w] = Task.Run(async () =>
            {
                for (int i = Interlocked.Increment(ref next); i < ChunkCount && !Full;
                    i = Interlocked.Increment(ref next))
                {
                    if (!IsZeroChunk(i)) await LoadAsync(i, ct);
                }
            }, ct);
        await Task.WhenAll(workers);
    }

    /// <summary>The budget is used up (a racy read, as a bound for preloading).</summary>
    private bool Full => _host?.IsFull ?? Volatile.Read(ref _resident) >= _maxResident;

    /// <summary>Copying read, for callers that need bytes, not addresses: any offset and size, chunk by chunk;
    /// short at the end of the image.</summary>
    public async ValueTask<int> ReadAsync(long offset, Memory<byte> destination, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        int total = (int)Math.Clamp(Size - offset, 0, destination.Length);
        for (int done = 0; done < total;)
        {
            long pos = offset + done;
            int chunk = (int)(pos / ChunkGeometry.ChunkSize);
            int within = (int)(pos % ChunkGeometry.ChunkSize);
            var part = destination.Slice(done, Math.Min(total - done, ChunkGeometry.ChunkSize - within));
            if (IsZeroChunk(chunk)) part.Span.Clear();
            else
            {
                var address = await PinAsync(chunk, ct);
                try { NativeBuffers.Span(address + within, part.Length).CopyTo(part.Span); }
                finally { Unpin(chunk); }
            }
            done += part.Length;
        }
        return total;
    }

    /// <summary>Frees the resident chunks (a chunk still pinned keeps its memory). An instance from
    /// <see cref="HostMemory.Lease"/> is disposed by its last lease: release leases, never dispose it yourself.
    /// </summary>
    public void Dispose()
    {
        var unpinned = new List<nint>();
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            for (int i = 0; i < _addr.Length; i++)
            {
                if (_addr[i] == 0) continue;
                // As eviction does: a chunk someone still holds pinned keeps its memory (left mapped, not reused).
                if (Interlocked.CompareExchange(ref _pins[i], Evicting, 0) == 0) unpinned.Add(_addr[i]);
                Volatile.Write(ref _addr[i], 0);
            }
            _host?.DetachLocked(this);
        }
        // The host's pool outlives this instance: its buffers go back for reuse. Our own is unmapped.
        if (_host is null) _buffers.Dispose();
        foreach (var b in unpinned) _buffers.Return(b);
    }
}
