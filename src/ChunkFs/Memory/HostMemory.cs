using Snapshots.Store.Chunks;
using Snapshots.Store.Layers;
using Snapshots.Store.Manifests;

namespace Snapshots.ChunkFs.Memory;

/// <summary>
/// One host's memory for decrypted chunks, shared by every restore in the process: one budget and one buffer pool
/// for the <see cref="ResidentChunks"/> attached to it, the oldest loaded chunk of any of them evicted first (never
/// a pinned one, nor one a caller waits for: the same protocol as a lone instance, so the hit path stays lock-free).
/// <para>
/// Restores of the same chain (same tenant, same manifest of every layer, same reader) share one instance through
/// a refcounted <see cref="Lease"/>, so a chunk is fetched once for all of them. Across instances, a load first
/// looks for the same chunk resident in another one and copies its plaintext (a 512 KiB memcpy) instead of fetching
/// and decrypting it (<see cref="SharedHits"/>).
/// </para>
/// <para>
/// Why the copy is the plaintext this restore would have decrypted, and never leaks across tenants: a chunk is
/// copied only when both chains name the same ciphertext (the name is its BLAKE3 hash) under the same key and the
/// same plaintext hash. AES-GCM is deterministic for a key and a ciphertext, so both would decrypt the same bytes
/// (and both manifests vouch for their hash). The requesting chain was opened under its tenant's access checks, so
/// it already holds this chunk's name and key: it could fetch and decrypt the chunk itself, and the copy only
/// saves the work. Convergent keys are derived with each domain's own secret, so two tenants' function layers
/// never share a name; only shared (os, runtime) layers do, and both tenants may read those.
/// </para>
/// <para>
/// A limit: a chunk pinned for a copy while its instance is disposed keeps its buffer out of the pool for good (as
/// any chunk pinned at disposal does).
/// </para>
/// Thread-safe. Dispose only after every lease is released.
/// </summary>
public sealed class HostMemory : IDisposable
{
    private readonly int _maxResident;
    private readonly Queue<(ResidentChunks Owner, int Chunk)> _loadedOrder = new();
    /// <summary>Every resident chunk by name (a list per name: one per instance and index holding it), for copies
    /// across instances: while any holder is resident, a load anywhere copies instead of fetching.</summary>
    private readonly Dictionary<ChunkName, Holder> _byName = [];
    private readonly Dictionary<LeaseKey, Shared> _instances = [];
    private int _resident, _leases;
    private long _loads, _evictions, _sharedHits;

    /// <param name="budgetBytes">Plaintext kept in memory at most by all attached instances together (whole
    /// 512 KiB chunks, at least two).</param>
    /// <param name="reserve">Populated chunk buffers kept ready ahead of loads (<see cref="ChunkBufferPool"/>).
    /// </param>
    public HostMemory(long budgetBytes, int reserve = ResidentChunks.DefaultReserve)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(budgetBytes);
        ArgumentOutOfRangeException.ThrowIfNegative(reserve);
        // In long, then clamped: a budget of terabytes must not wrap to a negative count.
        _maxResident = (int)Math.Clamp(budgetBytes / ChunkGeometry.ChunkSize, 2, int.MaxValue);
        Buffers = new ChunkBufferPool(_maxResident, Math.Min(reserve, _maxResident));
    }

    /// <summary>Taken for every change to the resident set of any attached instance (loads, evictions,
    /// disposal); never on the hit path.</summary>
    internal Lock Lock { get; } = new();

    /// <summary>The one pool every attached instance decrypts into.</summary>
    public ChunkBufferPool Buffers { get; }

    /// <summary>The budget in bytes (whole chunks).</summary>
    public long BudgetBytes => (long)_maxResident * ChunkGeometry.ChunkSize;

    /// <summary>Bytes of plaintext resident now, all instances together.</summary>
    public long ResidentBytes => (long)Volatile.Read(ref _resident) * ChunkGeometry.ChunkSize;

    /// <summary>Chunks made resident so far: fetched and decrypted, or copied (<see cref="SharedHits"/>).</summary>
    public long Loads => Interlocked.Read(ref _loads);

    public long Evictions => Interlocked.Read(ref _evictions);

    /// <summary>Loads served by copying another resident chunk of the same name and key.</summary>
    public long SharedHits => Interlocked.Read(ref _sharedHits);

    /// <summary>Leases held now: restores attached.</summary>
    public int Restores { get { lock (Lock) return _leases; } }

    /// <summary>Distinct instances alive now (restores of one chain share one).</summary>
    public int Instances { get { lock (Lock) return _instances.Count; } }

    /// <summary>A snapshot of every counter, for metrics.</summary>
    public HostMemoryCounters Counters()
    {
        lock (Lock)
        {
            return new HostMemoryCounters(BudgetBytes, ResidentBytes, Loads, Evictions, SharedHits, _leases,
                _instances.Count);
        }
    }

    internal bool IsFull => Volatile.Read(ref _resident) >= _maxResident;

    /// <summary>The memory tier of <paramref name="chain"/>, shared with every other lease of the same chain,
    /// tenant and reader; the instance is disposed when its last lease is. <paramref name="chain"/> must have been
    /// opened for <paramref name="tenant"/> (its access checks are the caller's).</summary>
    public MemoryLease Lease(SnapshotChain chain, string? tenant, ChunkReader reader)
    {
        ArgumentNullException.ThrowIfNull(chain);
        ArgumentNullException.ThrowIfNull(reader);
        var key = new LeaseKey(Identity(chain, tenant), reader);
        lock (Lock)
        {
            if (!_instances.TryGetValue(key, out var shared))
                _instances[key] = shared = new Shared(new ResidentChunks(chain, reader, this));
            shared.Count++;
            _leases++;
            return new MemoryLease(this, key, shared.Memory);
        }
    }

    internal void Release(LeaseKey key)
    {
        ResidentChunks? last = null;
        lock (Lock)
        {
            var shared = _instances[key];
            _leases--;
            if (--shared.Count == 0)
            {
                _instances.Remove(key);
                last = shared.Memory;
            }
        }
        last?.Dispose();
    }

    /// <summary>Which chain an instance serves: tenant, then every layer's name and manifest hash, top first. Equal
    /// identities are the same bytes under the same keys (a manifest's hash covers its entries and key table).
    /// </summary>
    internal static string Identity(SnapshotChain chain, string? tenant)
    {
        var parts = new List<string>(chain.Layers.Count + 1) { tenant ?? "" };
        foreach (Manifest layer in chain.Layers) parts.Add($"{layer.Name}@{Convert.ToHexStringLower(layer.Hash)}");
        return string.Join('\n', parts);
    }

    /// <summary>Pins a resident chunk of any attached instance with the same name, key and plaintext hash as
    /// <paramref name="chunk"/> of <paramref name="requester"/>; the caller copies from it, then unpins it from
    /// <paramref name="owner"/>.</summary>
    internal bool TryPinSame(ResidentChunks requester, int chunk, out ResidentChunks owner, out int at,
        out nint address)
    {
        ref readonly var want = ref requester.Chain.Chunks[chunk];
        lock (Lock)
        {
            _byName.TryGetValue(want.Name, out var holder);
            for (; holder is not null; holder = holder.Next)
            {
                // Pinned under the lock: no eviction or disposal can take it before the copy.
                if (SameSecret(holder.Owner.Chain.Chunks[holder.Chunk].Secret, want.Secret)
                    && holder.Owner.TryPin(holder.Chunk, out address))
                {
                    (owner, at) = (holder.Owner, holder.Chunk);
                    return true;
                }
            }
        }
        (owner, at, address) = (null!, -1, 0);
        return false;
    }

    internal void CountSharedHit() => Interlocked.Increment(ref _sharedHits);

    private static bool SameSecret(in ChunkSecret a, in ChunkSecret b) =>
        ((ReadOnlySpan<byte>)a.Key).SequenceEqual(b.Key)
        && ((ReadOnlySpan<byte>)a.PlaintextHash).SequenceEqual(b.PlaintextHash);

    /// <summary>Records a chunk just made resident (under <see cref="Lock"/>), then evicts the oldest unused
    /// chunks of any instance until within budget.</summary>
    internal void AddedLocked(ResidentChunks owner, int chunk)
    {
        _loadedOrder.Enqueue((owner, chunk));
        var name = owner.Chain.Chunks[chunk].Name;
        _byName[name] = new Holder(owner, chunk, _byName.GetValueOrDefault(name));
        _loads++;
        // Counted in a local and published once: a reader of ResidentBytes never sees the moment between the
        // load and the eviction it causes.
        int resident = _resident + 1;
        int attempts = _loadedOrder.Count;
        while (resident > _maxResident && attempts-- > 0)
        {
            var victim = _loadedOrder.Dequeue();
            if (!victim.Owner.TryEvictLocked(victim.Chunk))
            {
                _loadedOrder.Enqueue(victim); // in use: try the next oldest
                continue;
            }
            Forget(victim.Owner, victim.Chunk);
            resident--;
            _evictions++;
        }
        Volatile.Write(ref _resident, resident);
    }

    /// <summary>Drops a disposed instance's resident chunks from the order, the index and the count (under
    /// <see cref="Lock"/>). A rebuild of the queue: disposal is rare, loads are not.</summary>
    internal void DetachLocked(ResidentChunks owner)
    {
        int kept = _loadedOrder.Count;
        for (int i = 0; i < kept; i++)
        {
            var entry = _loadedOrder.Dequeue();
            if (entry.Owner != owner) _loadedOrder.Enqueue(entry);
            else
            {
                Forget(owner, entry.Chunk);
                _resident--;
            }
        }
    }

    private void Forget(ResidentChunks owner, int chunk)
    {
        var name = owner.Chain.Chunks[chunk].Name;
        if (!_byName.TryGetValue(name, out var first)) return;
        if (first.Owner == owner && first.Chunk == chunk)
        {
            if (first.Next is null) _byName.Remove(name);
            else _byName[name] = first.Next;
            return;
        }
        for (var h = first; h.Next is not null; h = h.Next)
        {
            if (h.Next.Owner == owner && h.Next.Chunk == chunk)
            {
                h.Next = h.Next.Next;
                return;
            }
        }
    }

    /// <summary>Unmaps the pool's free buffers; buffers still resident are unmapped as they come back.</summary>
    public void Dispose() => Buffers.Dispose();

    internal readonly record struct LeaseKey(string Chain, ChunkReader Reader);

    /// <summary>One resident chunk in the by-name lists; newest first.</summary>
    private sealed class Holder(ResidentChunks owner, int chunk, Holder? next)
    {
        public readonly ResidentChunks Owner = owner;
        public readonly int Chunk = chunk;
        public Holder? Next = next;
    }

    private sealed class Shared(ResidentChunks memory)
    {
        public readonly ResidentChunks Memory = memory;
        public int Count;
    }
}
