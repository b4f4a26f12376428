using System.Diagnostics;
using Snapshots.ChunkFs.Native;
using Snapshots.Prefetch;
using Snapshots.Store;
using Snapshots.Store.Chunks;

namespace Snapshots.ChunkFs.Uffd;

public sealed partial class UffdHandler
{
    /// <summary>
    /// Serves one demand fault: zeros where the true content is zero (a zero chunk, or a page freed since the
    /// restore), else the page from its chunk. Every install obeys docs/loader.md's rule: a page is only ever
    /// installed with its true content, so a run (fault-around, zero run) stops at the first page that is present,
    /// freed (for a copy), or not freed (for a zero run in a data chunk).
    /// </summary>
    /// <param name="address">The faulting address.</param>
    /// <param name="retry">Served again after EAGAIN: already counted.</param>
    /// <param name="t0">When the fault was first read (a parked fault keeps its own); 0: now.</param>
    /// <param name="deadline">A parked fault's deadline (Stopwatch ticks); 0: a new fault.</param>
    private void ServeFault(ulong address, bool retry, long t0 = 0, long deadline = 0)
    {
        if (t0 == 0) t0 = Stopwatch.GetTimestamp();
        ulong page = address & ~(ulong)(PageSize - 1);
        if (!TryFileOffset(page, out long off))
        {
            FailVm($"fault at 0x{address:x}, outside every region the VMM registered");
            return;
        }
        long pageIndex = off / PageSize;
        int chunk = (int)(off / ChunkGeometry.ChunkSize);
        InstallStatus status;
        long landed;
        int errno;
        bool zeroChunk = _memory.IsZeroChunk(chunk);
        int slot = _packSlot is null ? -1 : _packSlot[pageIndex];
        // A planned page whose pack chunk is all zeros holds zeros in the snapshot too (the pack is a copy).
        bool zeroInPack = slot >= 0 && _pack!.IsZeroChunk(slot / ChunkGeometry.PagesPerChunk);
        if (zeroChunk || _removed.Get(pageIndex) || (zeroInPack && !_memory.IsResident(chunk)))
        {
            int pages = zeroChunk || _removed.Get(pageIndex) ? ZeroRunPages(page, pageIndex, off, zeroChunk) : 1;
            status = Install(page, 0, pages, wake: true, out landed, out errno);
            _zero += landed;
        }
        else
        {
            // The page from its own chunk if that is in memory; else from the working-set pack when the plan
            // holds it (one pack chunk carries 128 planned pages); else its own chunk, fetched now.
            var source = _memory;
            int sourceChunk = chunk;
            long within = off - ((long)chunk * ChunkGeometry.ChunkSize);
            if (!_memory.TryPin(chunk, out nint src))
            {
                if (slot >= 0)
                {
                    source = _pack!;
                    sourceChunk = slot / ChunkGeometry.PagesPerChunk;
                    within = (long)(slot % ChunkGeometry.PagesPerChunk) * PageSize;
                }
                if (!source.TryPin(sourceChunk, out src))
                {
                    // Not in memory: fetch it elsewhere and park the fault; other faults go on meanwhile.
                    Park(address, source, sourceChunk, off, t0, deadline, retry);
                    return;
                }
            }
            // Fault-around: from the snapshot's own chunk, also install the next few pages a guest usually touches
            // right after (REAP measured runs of 2-3 pages), stopping at anything present, removed, or past the
            // chunk or the region. One copy instead of several faults, each a round trip through the kernel.
            int pages = ReferenceEquals(source, _memory) ? FaultAroundPages(page, pageIndex, off) : 1;
            try
            {
                status = Install(page, src + (nint)within, pages, wake: true, out landed, out errno);
            }
            finally
            {
                source.Unpin(sourceChunk);
            }
            _copied += landed;
        }
        for (long p = 0; p < landed; p++) _installed.Set(pageIndex + p);

        switch (status)
        {
            case InstallStatus.Exists:
                // Installed meanwhile (a prefetched run, with DONTWAKE): wake the thread that faulted.
                _existing++;
                _installed.Set(pageIndex);
                _uffd.Wake(page, PageSize);
                break;
            case InstallStatus.Again:
                Defer(address); // a REMOVE is pending: read it first, then serve this fault again
                return;
            case InstallStatus.NotRegistered:
                // Even the faulting page alone is outside a registered vma: the VMM mapped other memory over it
                // after the fault was queued, and the kernel retries that access on the new mapping. Not ours.
                _unregistered++;
                _uffd.Wake(page, PageSize);
                break;
            case InstallStatus.MemoryGone:
                // The VMM's address space is gone; its exit is learnt from its pidfd, never from an errno.
                _memoryGone = true;
                return;
            case InstallStatus.NoMemory:
                FailVm($"installing the page at offset {off} failed: the host is out of memory (ENOMEM)");
                return;
            case InstallStatus.Failed:
                FailVm($"installing the page at offset {off} failed (errno {errno})");
                return;
        }
        if (!retry) _faults++;
        Record(pageIndex, t0);
    }

    /// <summary>Installs <paramref name="pages"/> pages at <paramref name="dst"/>: zeros when
    /// <paramref name="src"/> is 0, else a copy. A range the kernel refuses whole because part of it is no longer
    /// registered (ENOENT: fresh memory mapped over it) is retried as the first page alone, so a fault-around that
    /// meets a remapped range still serves its fault. <paramref name="landed"/> counts pages installed from the
    /// first.</summary>
    private InstallStatus Install(ulong dst, nint src, int pages, bool wake, out long landed, out int errno)
    {
        var status = InstallOnce(dst, src, pages, wake, out landed, out errno);
        if (status == InstallStatus.NotRegistered && pages > 1)
            status = InstallOnce(dst, src, 1, wake, out landed, out errno);
        return status;
    }

    private InstallStatus InstallOnce(ulong dst, nint src, int pages, bool wake, out long landed, out int errno)
    {
        ulong len = (ulong)pages * PageSize;
        long bytes;
        var status = src == 0
            ? _uffd.ZeroPage(dst, len, out bytes, out errno)
            : _uffd.Copy(dst, src, len, wake, out bytes, out errno);
        landed = status == InstallStatus.Done ? pages : bytes / PageSize;
        return status;
    }

    /// <summary>How many pages from a zero-content page a zero run may cover: in a zero chunk, up to the first
    /// present page; in a data chunk, only the following pages that were freed too (the others hold the
    /// snapshot's bytes).</summary>
    private int ZeroRunPages(ulong page, long pageIndex, long off, bool zeroChunk)
    {
        int limit = (int)(BytesToRunEnd(page, off) / PageSize);
        int n = 1;
        while (n < limit && !_installed.Get(pageIndex + n) && (zeroChunk || _removed.Get(pageIndex + n))) n++;
        return n;
    }

    private int FaultAroundPages(ulong page, long pageIndex, long off)
    {
        // A recorded restore must see every first touch: pages installed ahead never fault.
        ulong wanted = (ulong)(_touches is null ? _options.FaultAroundPages : 1);
        int limit = (int)Math.Min(wanted, BytesToRunEnd(page, off) / PageSize);
        int n = 1;
        while (n < limit && !_installed.Get(pageIndex + n) && !_removed.Get(pageIndex + n)) n++;
        return n;
    }

    /// <summary>Bytes from a page to the end of its chunk or its region, whichever comes first: the most one
    /// install for a fault may cover.</summary>
    private ulong BytesToRunEnd(ulong page, long off)
    {
        long chunkEnd = Math.Min((off / ChunkGeometry.ChunkSize + 1) * ChunkGeometry.ChunkSize, _memory.Size);
        ulong len = (ulong)(chunkEnd - off);
        foreach (var r in _session.Regions)
            if (r.Contains(page)) len = Math.Min(len, r.End - page);
        return len;
    }

    /// <summary>A demand fault whose chunk is being fetched. The handler serves other faults, REMOVE events and
    /// prefetch installs meanwhile; the fetch's completion wakes it (eventfd), and the fault is served then, or the
    /// VM is failed at the fault's own deadline with the reason.</summary>
    private readonly record struct ParkedFault(ulong Address, long Offset, int Chunk, Task Load, long T0,
        long Deadline, bool Counted);

    private const int MaxParked = 1 << 16;

    private void Park(ulong address, Memory.ResidentChunks source, int chunk, long off, long t0, long deadline,
        bool counted)
    {
        if (_parked.Count >= MaxParked)
        {
            FailVm($"over {MaxParked} faults waiting for chunks");
            return;
        }
        if (deadline == 0)
            deadline = Stopwatch.GetTimestamp() + (long)(_options.FaultDeadline.TotalSeconds * Stopwatch.Frequency);
        var load = source.LoadAsync(chunk, CancellationToken.None);
        if (!load.IsCompleted)
        {
            _ = load.ContinueWith(static (_, self) => ((UffdHandler)self!).Wake(), this, CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
        _parked.Add(new ParkedFault(address, off, chunk, load, t0, deadline, counted));
        _parkedTotal++;
    }

    /// <summary>Serves the parked faults whose chunk arrived; fails the VM for one whose fetch failed or whose
    /// deadline passed. Returns the milliseconds until the nearest deadline (for the poll's timeout), or -1.</summary>
    private int ServeParked()
    {
        long now = Stopwatch.GetTimestamp();
        long nearest = long.MaxValue;
        for (int i = 0; i < _parked.Count && _failure is null && !_vmGone;)
        {
            var f = _parked[i];
            if (f.Load.IsCompleted)
            {
                _parked[i] = _parked[^1];
                _parked.RemoveAt(_parked.Count - 1);
                if (f.Load.Exception?.InnerException is SnapshotException ex) FailVm(ex.Message);
                else if (f.Load.IsFaulted) FailVm($"fetching chunk {f.Chunk} failed: "
                    + $"{f.Load.Exception!.InnerException!.Message}");
                else ServeFault(f.Address, f.Counted, f.T0, f.Deadline); // parks again if evicted meanwhile
                continue;
            }
            if (now >= f.Deadline)
            {
                FailVm($"the page at offset {f.Offset} (chunk {f.Chunk}) could not be fetched within "
                    + $"{_options.FaultDeadline.TotalSeconds:F1} s");
                return -1;
            }
            nearest = Math.Min(nearest, f.Deadline);
            i++;
        }
        if (nearest == long.MaxValue) return -1;
        return (int)Math.Clamp((nearest - now) * 1000 / Stopwatch.Frequency + 1, 1, 200);
    }

    private void Record(long pageIndex, long t0)
    {
        long now = Stopwatch.GetTimestamp();
        long n = _faults - 1;
        if (n >= 0 && n < _faultTicks.Length) _faultTicks[n] = now - t0;
        _options.FaultObserver?.FaultServed(now - t0);
        if (_touches is not null && _touchCount < _touches.Length && !_touched!.Get(pageIndex))
        {
            _touched.Set(pageIndex);
            uint delta = (uint)Math.Min(uint.MaxValue, Stopwatch.GetElapsedTime(_lastTouch, now).Ticks / 10);
            _touches[_touchCount++] = new PageTouch((uint)pageIndex, delta);
            _lastTouch = now;
        }
    }

    /// <summary>Kills the VMM (by the pid its socket gave us) and records why: a VM that cannot get its memory
    /// must fail loudly, not hang on a fault forever.</summary>
    private void FailVm(string reason)
    {
        _failure = reason;
        _options.Log($"failing VM pid {_session.VmmPid}: {reason}");
        _session.KillVmm();
    }

    private bool TryFileOffset(ulong address, out long offset)
    {
        foreach (var r in _session.Regions)
            if (r.Contains(address)) { offset = (long)(r.Offset + (address - r.BaseHostVirtAddr)); return true; }
        offset = 0;
        return false;
    }

    private bool TryGuestAddress(long offset, long length, out ulong address)
    {
        foreach (var r in _session.Regions)
            if ((ulong)offset >= r.Offset && (ulong)(offset + length) <= r.Offset + r.Size)
            {
                address = r.BaseHostVirtAddr + ((ulong)offset - r.Offset);
                return true;
            }
        address = 0;
        return false;
    }

    private static long Sum(ReadOnlySpan<long> values)
    {
        long total = 0;
        foreach (var v in values) total += v;
        return total;
    }

    private RestoreStats Stats(TimeSpan elapsed, PrefetchScheduler? scheduler, TimeSpan runDelay)
    {
        int n = (int)Math.Min(_faults, _faultTicks.Length);
        var sorted = _faultTicks.AsSpan(0, n);
        sorted.Sort(); // in place: the run is over
        double S(long ticks) => ticks / (double)Stopwatch.Frequency;
        var loads = _memory.Times();
        return new RestoreStats
        {
            Snapshot = _memory.Name, VmmPid = _session.VmmPid, Regions = _session.Regions.Length,
            Faults = _faults, PagesCopied = _copied, ZeroPages = _zero, PrefetchedPages = _prefetched,
            PlannedPages = _options.Plan?.Pages.Length ?? 0, ExistingPages = _existing,
            RemoveEvents = _removeEvents, RemovedPages = _removedPages, UnregisteredFaults = _unregistered,
            ParkedFaults = _parkedTotal,
            FaultLatencySeconds = new Percentiles(n > 0 ? S(sorted[n / 2]) : 0, n > 0 ? S(sorted[(int)(n * 0.99)]) : 0)
            {
                Max = n > 0 ? S(sorted[^1]) : 0,
            },
            FaultServiceSeconds = S(Sum(sorted)),
            ChunksLoaded = _memory.Loads + (_pack?.Loads ?? 0),
            ChunkEvictions = _memory.Evictions + (_pack?.Evictions ?? 0),
            ChunkLoadLatencySeconds = loads.Load, ChunkDecryptLatencySeconds = loads.Decrypt,
            ColdBuffers = _memory.ColdBuffers + (_pack?.ColdBuffers ?? 0),
            Seconds = elapsed.TotalSeconds,
            HandlerRunDelaySeconds = runDelay.TotalSeconds,
            Outcome = _failure is not null ? RestoreStats.FailedOutcome
                : _detached ? RestoreStats.DetachedOutcome : RestoreStats.ExitedOutcome,
            Reason = _failure,
            Prefetch = scheduler is null ? null
                : $"{scheduler.ChunksLoaded} {(_pack is null ? "snapshot" : "working-set pack")} chunks loaded, "
                    + $"{scheduler.Failures} failed",
        };
    }
}
