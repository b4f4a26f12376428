using System.Collections.Concurrent;
using System.Diagnostics;
using Snapshots.ChunkFs.Memory;
using Snapshots.ChunkFs.Native;
using Snapshots.Prefetch;
using Snapshots.Store.Chunks;
using Snapshots.Store.Tiers;
using static Snapshots.ChunkFs.Native.LibC;

namespace Snapshots.ChunkFs.Uffd;

/// <summary>
/// Serves one VMM's page faults from a snapshot, Firecracker's way, until the VMM exits.
///
/// One thread owns every ioctl on the uffd: demand faults, REMOVE events and the installation of prefetched pages
/// all happen here, in that order of priority, so a page a guest freed (REMOVE) can never be refilled behind its
/// back and a demand fault never waits behind more than one prefetch run. Chunk fetches run elsewhere (the
/// prefetcher's workers, or this thread when a demand fault needs a chunk nobody has fetched). A fault that cannot
/// be served within the deadline fails the VM: it is killed and the reason logged, never left hanging; the one way
/// to stop serving without killing it is <see cref="Detach"/>.
/// </summary>
public sealed partial class UffdHandler : IPrefetchTarget, IDisposable
{
    private const int PageSize = ChunkGeometry.PageSize;
    private readonly UffdSession _session;
    private readonly ResidentChunks _memory;
    private readonly UffdHandlerOptions _options;
    private readonly UserfaultFd _uffd;
    private readonly PageBitmap _installed, _removed;
    private readonly long _pages;
    private readonly UffdMsg[] _events = new UffdMsg[64];
    private readonly ulong[] _pendingFaults = new ulong[1024];
    private int _pendingCount;
    private readonly ConcurrentQueue<PrefetchUnit> _ready = new();
    private PrefetchUnit? _installing;
    private int _installNext;
    private readonly ResidentChunks? _pack;
    /// <summary>For each page of the memory file, its slot in the working-set pack, or -1.</summary>
    private readonly int[]? _packSlot;
    private readonly long[] _faultTicks;
    private readonly PageTouch[]? _touches;
    /// <summary>Pages already in <see cref="_touches"/>: a page freed (REMOVE) and touched again, or faulted by
    /// two vCPUs at once, faults again, but only its first touch belongs in the log.</summary>
    private readonly PageBitmap? _touched;
    private int _touchCount;
    private long _lastTouch;
    private long _faults, _copied, _zero, _prefetched, _existing, _removeEvents, _removedPages, _unregistered;
    /// <summary>ESRCH: the VMM's address space is gone; nothing more can be installed. The loop still ends only
    /// when the pidfd says the VMM exited.</summary>
    private bool _memoryGone;
    /// <summary>Faults waiting for their chunk (UffdHandler.Faults.cs); empty on the resident path.</summary>
    private readonly List<ParkedFault> _parked = [];
    private TimeSpan _runDelayAtStart;
    private long _parkedTotal;
    private int _wakeFd = -1;
    private string? _failure;
    private bool _vmGone;
    private volatile bool _detachRequested;
    private bool _detached;
    /// <summary>0: new; 1: Run was called (it releases the removed-pages mapping when it returns); 2: disposed
    /// before running. The mapping is native memory: it must never be released under a running Run.</summary>
    private int _lifecycle;

    public UffdHandler(UffdSession session, ResidentChunks memory, UffdHandlerOptions options)
    {
        _session = session;
        _memory = memory;
        _options = options;
        _uffd = session.Uffd;
        _pages = memory.Size / PageSize;
        _installed = new PageBitmap(_pages);
        _removed = options.RemovedPagesPath is { } removedPath
            ? PageBitmap.MapFile(removedPath, _pages)
            : new PageBitmap(_pages);
        _faultTicks = new long[Math.Min(_pages, 1 << 20)];
        if (options.Record)
        {
            _touches = new PageTouch[_pages];
            _touched = new PageBitmap(_pages);
        }
        if (options.Pack is not null && options.Plan is { PackName: not null } plan)
        {
            _pack = options.Pack;
            _packSlot = new int[_pages];
            Array.Fill(_packSlot, -1);
            for (int k = 0; k < plan.Pages.Length; k++) _packSlot[plan.Pages[k]] = k;
        }
    }

    /// <summary>The recorded first touches (after <see cref="Run"/>), when recording.</summary>
    public AccessLog? RecordedLog => _touches is null ? null
        : new AccessLog { ImageSize = _memory.Size, Touches = _touches.AsSpan(0, _touchCount).ToArray() };

    /// <summary>The counters so far, read from any thread while <see cref="Run"/> serves (each value is read
    /// whole; together they are a moment's approximation).</summary>
    public HandlerProgress Progress => new(
        Volatile.Read(ref _faults), Volatile.Read(ref _copied), Volatile.Read(ref _zero),
        Volatile.Read(ref _prefetched), _options.Plan?.Pages.Length ?? 0, Volatile.Read(ref _parkedTotal),
        _parked.Count, Volatile.Read(ref _removedPages), _session.VmmPid);

    /// <summary>
    /// Stops <see cref="Run"/> without failing the VM: the handler returns (outcome "detached") at its next step,
    /// within one prefetch run, and the VMM is left running and untouched. Its vCPUs then wait on their next fault,
    /// however long, until another handler takes the uffd back (<see cref="UffdSession.TakeBack"/>, which also
    /// re-asks faults this one read but had not served): detach only to hand the VM over (a daemon draining), or
    /// to stand in for this handler's death in tests. Callable from any thread, before or during Run; the caller
    /// then disposes the session (closing this process's copy of the uffd). Compare cancelling Run's token, which
    /// kills the VM.
    /// </summary>
    public void Detach()
    {
        _detachRequested = true;
        Wake();
    }

    /// <summary>Serves faults on the calling thread until the VMM exits or is failed, or the handler is
    /// detached.</summary>
    /// <exception cref="InvalidOperationException">Run was called before, or the handler was disposed.</exception>
    public RestoreStats Run(CancellationToken ct)
    {
        if (Interlocked.CompareExchange(ref _lifecycle, 1, 0) != 0)
            throw new InvalidOperationException("a UffdHandler runs once, and not after Dispose");
        var clock = Stopwatch.StartNew();
        _lastTouch = Stopwatch.GetTimestamp();
        _runDelayAtStart = ThreadRunDelay.Read();
        int pidfd = PidfdOpen(_session.VmmPid);
        _wakeFd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        using var stopPrefetch = new CancellationTokenSource();
        PrefetchScheduler? scheduler = null;
        Task prefetch = Task.CompletedTask;
        if (_options.Plan is { } plan)
        {
            var units = _pack is not null ? PrefetchUnit.FromPackChunks(plan) : PrefetchUnit.FromImageChunks(plan);
            scheduler = new PrefetchScheduler(units, this, _options.Prefetch);
            prefetch = scheduler.RunAsync(stopPrefetch.Token);
        }
        try
        {
            Loop(pidfd, ct);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // A bug here must not leave the VM waiting on a fault nobody will serve: fail it with the reason.
            FailVm($"the handler failed: {ex.GetType().Name}: {ex.Message}");
        }
        finally
        {
            stopPrefetch.Cancel();
            // Not the caller's token: the prefetcher was told to stop just above; wait (5 s at most) until it has.
            try { prefetch.Wait(TimeSpan.FromSeconds(5), CancellationToken.None); } catch (AggregateException) { }
            if (pidfd >= 0) close(pidfd);
            // A fetch finishing later must not write into a descriptor number reused meanwhile.
            int wakeFd = _wakeFd;
            _wakeFd = -1;
            if (wakeFd >= 0) close(wakeFd);
            // The bits stay in the file (RemovedPagesPath) for the next handler; nothing reads them after this.
            _removed.Dispose();
        }
        return Stats(clock.Elapsed, scheduler, ThreadRunDelay.Read() - _runDelayAtStart);
    }

    private const ulong UffdKey = 0, PidKey = 1, WakeKey = 2;

    /// <summary>Waits on the uffd, the VMM's pidfd and the prefetcher's eventfd with one epoll set, registered
    /// once: every step between a copy and this thread's sleep is latency the guest sees.</summary>
    private unsafe void Loop(int pidfd, CancellationToken ct)
    {
        int epfd = epoll_create1(EPOLL_CLOEXEC);
        if (epfd < 0) { FailVm($"epoll_create1 failed (errno {Errno})"); return; }
        try
        {
            Register(epfd, _uffd.Fd, UffdKey);
            if (pidfd >= 0) Register(epfd, pidfd, PidKey);
            Register(epfd, _wakeFd, WakeKey);
            var ready = stackalloc EpollEvent[3];
            while (!_vmGone && _failure is null)
            {
                if (_detachRequested)
                {
                    _detached = true;
                    _options.Log($"detached from VM pid {_session.VmmPid}; it is left running for another handler");
                    return;
                }
                if (ct.IsCancellationRequested) { FailVm("the handler was stopped"); return; }
                int parkedWait = _parked.Count > 0 ? ServeParked() : -1;
                if (_failure is not null || _vmGone) return;
                bool installWork = _pendingCount > 0 || _installing is not null || !_ready.IsEmpty;
                // SAFETY: ready is a 3-element stack array that outlives the call.
                int n = epoll_wait(epfd, ready, 3, installWork ? 0 : parkedWait >= 0 ? parkedWait : 200);
                if (n < 0 && Errno != EINTR) { FailVm($"epoll_wait failed (errno {Errno})"); return; }
                bool faultsPending = false, vmmExited = pidfd < 0, wake = false;
                for (int i = 0; i < n; i++)
                {
                    if (ready[i].Data == UffdKey)
                    {
                        faultsPending = (ready[i].Events & EPOLLIN) != 0;
                        if ((ready[i].Events & (EPOLLERR | EPOLLHUP)) != 0) vmmExited = true;
                    }
                    else if (ready[i].Data == PidKey) vmmExited = true;
                    else wake = true;
                }
                bool eventsRead = faultsPending && DrainEvents();
                if (_failure is not null || _vmGone) return;
                if (_pendingCount > 0) RetryPendingFaults();
                if (wake) { ulong v; read(_wakeFd, &v, 8); }
                if (!eventsRead) InstallOneRun();
                // The VMM's pidfd turns readable when it exits; nobody is left to wait on a page after that.
                if (vmmExited) _vmGone = true;
            }
        }
        finally
        {
            close(epfd);
        }
    }

    private unsafe void Register(int epfd, int fd, ulong key)
    {
        var ev = new EpollEvent { Events = EPOLLIN, Data = key };
        // SAFETY: ev lives on this frame for the call; the kernel copies it.
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) FailVm($"epoll_ctl failed (errno {Errno})");
    }

    private bool DrainEvents()
    {
        bool any = false;
        while (_failure is null && !_vmGone)
        {
            int n = _uffd.ReadEvents(_events, out int errno);
            if (n < 0) { FailVm($"reading uffd events failed (errno {errno})"); return any; }
            if (n == 0) return any;
            any = true;
            // Every REMOVE of the batch first: once its message is read the kernel no longer refuses installs
            // (mmap_changing is cleared) and may zap the range at any moment, so a fault of the same batch served
            // first could install a freed page (fault-around) after the zap, where it would stay.
            for (int i = 0; i < n; i++)
            {
                ref var e = ref _events[i];
                if (e.Event == UffdAbi.UFFD_EVENT_REMOVE) OnRemove(e.RemoveStart, e.RemoveEnd);
            }
            for (int i = 0; i < n && _failure is null && !_vmGone; i++)
            {
                ref var e = ref _events[i];
                if (e.Event == UffdAbi.UFFD_EVENT_PAGEFAULT) ServeFault(e.PagefaultAddress, retry: false);
            }
            // A short read drained the queue: go back to poll without one more read() that would say EAGAIN. On a
            // busy host the woken vCPU thread often runs only once this thread sleeps, so every step after the
            // copy is latency the guest sees.
            if (n < _events.Length) return any;
        }
        return any;
    }

    private void RetryPendingFaults()
    {
        int count = _pendingCount;
        _pendingCount = 0;
        for (int i = 0; i < count && _failure is null && !_vmGone; i++) ServeFault(_pendingFaults[i], retry: true);
    }

    /// <summary>A REMOVE (balloon, madvise DONTNEED): later faults in the range read zeros.</summary>
    private void OnRemove(ulong start, ulong end)
    {
        _removeEvents++;
        for (ulong a = start & ~(ulong)(PageSize - 1); a < end; a += PageSize)
        {
            if (!TryFileOffset(a, out long off)) continue;
            long page = off / PageSize;
            _removed.Set(page);
            _installed.Clear(page);
            _removedPages++;
        }
    }

    private void Defer(ulong address)
    {
        if (_pendingCount == _pendingFaults.Length)
        {
            FailVm("too many faults deferred behind pending events");
            return;
        }
        _pendingFaults[_pendingCount++] = address;
    }

    /// <summary>Installs one run of prefetched pages (at most InstallBatchPages, consecutive in the guest and in the
    /// chunk they come from) from a unit the prefetcher loaded.</summary>
    private void InstallOneRun()
    {
        while (!_memoryGone)
        {
            if (_installing is null)
            {
                if (!_ready.TryDequeue(out var next)) return;
                _installing = next;
                _installNext = 0;
            }
            var unit = _installing;
            var pages = unit.Pages;
            int i = _installNext;
            while (i < pages.Length && (_installed.Get(pages[i]) || _removed.Get(pages[i]))) i++;
            if (i == pages.Length) { _installing = null; continue; }
            int start = i;
            while (i < pages.Length && i - start < _options.InstallBatchPages
                   && pages[i] == pages[start] + (uint)(i - start) && unit.SlotOf(i) == unit.SlotOf(start) + (i - start)
                   && !_installed.Get(pages[i]) && !_removed.Get(pages[i])) i++;
            _installNext = i;
            InstallRun(unit.FromPack ? _pack! : _memory, unit.Chunk, unit.SlotOf(start), pages[start], i - start);
            return;
        }
    }

    private void InstallRun(ResidentChunks source, int chunk, int slot, long firstPage, int count)
    {
        long off = firstPage * PageSize;
        if (!TryGuestAddress(off, count * (long)PageSize, out ulong dst)) return;
        if (!source.TryPin(chunk, out nint src)) return; // evicted meanwhile: demand will fetch it if the VM wants it
        try
        {
            // DONTWAKE: nobody waits on a page we install ahead; a thread that does wait faulted, and its fault
            // (answered EEXIST) wakes it.
            var status = _uffd.Copy(
                dst, src + (nint)slot * PageSize, (ulong)(count * PageSize), wake: false,
                out long copied, out int errno);
            long done = status == InstallStatus.Done ? count : copied / PageSize;
            for (long p = 0; p < done; p++) _installed.Set(firstPage + p);
            _prefetched += done;
            switch (status)
            {
                case InstallStatus.Exists:
                    _installed.Set(firstPage); // the first page is present already
                    _existing++;
                    break;
                case InstallStatus.MemoryGone:
                    _memoryGone = true;
                    break;
                case InstallStatus.Partial:
                case InstallStatus.Again:
                case InstallStatus.NotRegistered:
                    // The rest of the run is left to demand: a page present, a REMOVE pending, or memory the VMM
                    // remapped. Nothing is lost: a page not installed faults and is served then.
                    break;
                case InstallStatus.NoMemory:
                case InstallStatus.Failed:
                    _options.Log($"prefetch copy at offset {off} failed (errno {errno}); demand will serve it");
                    break;
            }
        }
        finally
        {
            source.Unpin(chunk);
        }
    }

    void IPrefetchTarget.ChunkReady(PrefetchUnit unit)
    {
        _ready.Enqueue(unit);
        Wake();
    }

    ValueTask IPrefetchTarget.LoadChunkAsync(PrefetchUnit unit, CancellationToken ct)
    {
        var source = unit.FromPack ? _pack! : _memory;
        return source.IsZeroChunk(unit.Chunk)
            ? ValueTask.CompletedTask
            : new ValueTask(source.LoadAsync(unit.Chunk, ct, FetchPriority.Prefetch));
    }

    /// <summary>Unmaps the removed-pages file (<see cref="UffdHandlerOptions.RemovedPagesPath"/>; its bits stay in
    /// it) and releases its lock, for a handler that never ran; once <see cref="Run"/> was called, Run does it when
    /// it returns, and this does nothing.</summary>
    public void Dispose()
    {
        if (Interlocked.CompareExchange(ref _lifecycle, 2, 0) != 0) return;
        _removed.Dispose();
        _installed.Dispose();
        _touched?.Dispose();
    }

    private unsafe void Wake()
    {
        ulong one = 1;
        if (_wakeFd >= 0) write(_wakeFd, &one, 8);
    }
}
