using Snapshots.ChunkFs.Native;
using Snapshots.Store.Chunks;

namespace Snapshots.ChunkFs.Memory;

/// <summary>
/// Chunk-sized (512 KiB), page-aligned native buffers whose pages are already backed, reused. The first write to a
/// fresh 4 KiB page is a page fault (1.4-1.6 us each on these VMs, 128 per chunk: ~0.2 ms a chunk, as much as its
/// decryption), so a chunk load must not decrypt into fresh memory. A background refill populates slabs of
/// <see cref="SlabChunks"/> buffers (madvise MADV_POPULATE_WRITE: ~0.16 ms a chunk, off the fault's path) to keep
/// <c>reserve</c> buffers ahead of the loads, never more than <c>maxBuffers</c> in all; evicted chunks' buffers
/// come back here. <see cref="Rent()"/> never waits: with nothing populated it maps a fresh slab (counted in
/// <see cref="ColdRents"/>). Transparent huge pages are not asked for: their compaction stalled a populate for
/// ~0.5 s on these VMs. Disposal unmaps the free buffers; a buffer still rented stays mapped until it is returned
/// (then unmapped), so a load finishing late never writes into unmapped memory.
/// </summary>
public sealed class ChunkBufferPool : IDisposable
{
    /// <summary>Buffers per slab: 2 MiB, one mmap and one madvise.</summary>
    public const int SlabChunks = 4;
    private readonly int _maxBuffers, _reserve;
    private readonly Stack<nint> _free = new();
    private readonly Lock _lock = new();
    private int _buffers;
    private bool _refilling, _disposed;
    private long _coldRents;
    private Task _refill = Task.CompletedTask;

    /// <param name="maxBuffers">The most buffers the refill populates ahead (the memory tier's budget in chunks);
    /// <see cref="Rent()"/> may go past it when every buffer is in use.</param>
    /// <param name="reserve">Populated buffers to keep ready; the first refill starts at once.</param>
    public ChunkBufferPool(int maxBuffers, int reserve)
    {
        _maxBuffers = Math.Max(1, maxBuffers);
        _reserve = Math.Clamp(reserve, 0, _maxBuffers);
        lock (_lock) StartRefillLocked();
    }

    /// <summary>Buffers rented when none was populated: each write to them faulted on the load's path.</summary>
    public long ColdRents => Interlocked.Read(ref _coldRents);

    /// <summary>Buffers mapped so far (free, rented or resident).</summary>
    public int Buffers { get { lock (_lock) return _buffers; } }

    /// <summary>Populated buffers ready to rent.</summary>
    public int Ready { get { lock (_lock) return _free.Count; } }

    /// <summary>A 512 KiB page-aligned buffer, populated unless <see cref="ColdRents"/> counts it.</summary>
    public nint Rent() => Rent(out _);

    /// <summary>As <see cref="Rent()"/>; <paramref name="fresh"/> says whether this one was mapped fresh (for a
    /// caller that counts its own, as a memory tier sharing a host's pool does).</summary>
    public nint Rent(out bool fresh)
    {
        fresh = false;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            bool hit = _free.TryPop(out var buffer);
            StartRefillLocked();
            if (hit) return buffer;
        }
        fresh = true;
        // Nothing ready (the refill is behind, or every buffer is in use): map one now and let the load fault.
        Interlocked.Increment(ref _coldRents);
        nint cold = Map(ChunkGeometry.ChunkSize, populate: false);
        lock (_lock)
        {
            if (_disposed)
            {
                Unmap(cold);
                throw new ObjectDisposedException(nameof(ChunkBufferPool));
            }
            _buffers++;
        }
        return cold;
    }

    /// <summary>Takes back a buffer from <see cref="Rent()"/> for reuse (its pages stay populated); after
    /// <see cref="Dispose"/>, unmaps it.</summary>
    public void Return(nint buffer)
    {
        lock (_lock)
        {
            if (!_disposed)
            {
                _free.Push(buffer);
                return;
            }
        }
        Unmap(buffer);
    }

    /// <summary>Waits until the refill under way (if any) has finished: for tests and benchmarks.</summary>
    public Task WaitRefilledAsync()
    {
        lock (_lock) return _refill;
    }

    private void StartRefillLocked()
    {
        // Below half the reserve (rounded up: a reserve of 1 refills when empty), and room to grow.
        if (_refilling || _disposed || _free.Count >= (_reserve + 1) / 2 || _buffers >= _maxBuffers) return;
        _refilling = true;
        _refill = Task.Factory.StartNew(Refill, CancellationToken.None, TaskCreationOptions.LongRunning,
            TaskScheduler.Default);
    }

    private void Refill()
    {
        // Populating is the kernel zeroing pages: let the loads, the handler and the VM have the CPUs first.
        LibC.setpriority(LibC.PRIO_PROCESS, (uint)LibC.gettid(), 19);
        try
        {
            while (true)
            {
                lock (_lock)
                {
                    if (_disposed || _free.Count >= _reserve || _buffers >= _maxBuffers) return;
                }
                int count;
                // Never past the bound, nor much past the reserve.
                lock (_lock) count = Math.Min(Math.Min(SlabChunks, _maxBuffers - _buffers), _reserve - _free.Count);
                if (count <= 0) return;
                nint slab = Map(count * ChunkGeometry.ChunkSize, populate: true);
                lock (_lock)
                {
                    if (_disposed)
                    {
                        for (int i = 0; i < count; i++) Unmap(slab + (i * ChunkGeometry.ChunkSize));
                        return;
                    }
                    _buffers += count;
                    for (int i = count - 1; i >= 0; i--) _free.Push(slab + (i * ChunkGeometry.ChunkSize));
                }
            }
        }
        catch (InsufficientMemoryException)
        {
            // The host is short of memory: stop populating ahead; loads map their own buffers (and may fail).
        }
        finally
        {
            lock (_lock) _refilling = false;
        }
    }

    private static unsafe nint Map(int bytes, bool populate)
    {
        void* p = LibC.mmap(null, (nuint)bytes, LibC.PROT_READ | LibC.PROT_WRITE,
            LibC.MAP_PRIVATE | LibC.MAP_ANONYMOUS, -1, 0);
        if ((nint)p == -1)
        {
            throw new InsufficientMemoryException(
                $"mmap of {bytes >> 10} KiB of chunk buffers failed (errno {LibC.Errno})");
        }
        if (populate && LibC.madvise(p, (nuint)bytes, LibC.MADV_POPULATE_WRITE) != 0)
        {
            int errno = LibC.Errno;
            if (errno != LibC.EINVAL)
            {
                LibC.munmap(p, (nuint)bytes);
                throw new InsufficientMemoryException(
                    $"populating {bytes >> 10} KiB of chunk buffers failed (errno {errno})");
            }
            // Kernels before 5.14 lack MADV_POPULATE_WRITE: touch each page instead, still off the fault's path.
            var first = (byte*)p;
            for (int o = 0; o < bytes; o += ChunkGeometry.PageSize) first[o] = 0;
        }
        return (nint)p;
    }

    /// <summary>Unmaps one buffer: part of a slab or a whole cold mapping (munmap may take part of a mapping).
    /// </summary>
    private static unsafe void Unmap(nint buffer) => LibC.munmap((void*)buffer, ChunkGeometry.ChunkSize);

    /// <summary>Unmaps every free buffer; buffers still rented are unmapped when returned.</summary>
    public void Dispose()
    {
        Task refill;
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            refill = _refill;
        }
        refill.GetAwaiter().GetResult(); // a populate in progress finishes within a millisecond or so
        lock (_lock)
        {
            while (_free.TryPop(out var buffer)) Unmap(buffer);
        }
    }
}
