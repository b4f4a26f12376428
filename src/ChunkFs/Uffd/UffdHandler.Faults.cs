using System.Diagnostics;
using Snapshots.ChunkFs.Native;
using Snapshots.Prefetch;
using Snapshots.Store;
using Snapshots.Store.Chunks;

namespace Snapshots.ChunkFs.Uffd;

public sealed partial class UffdHandler
{
    /// <summary>
    /// Serves one demand fault: zeros for zero chunks and removed pages, else the page from its chunk.
    /// </summary>
    private void ServeFault(ulong address, bool retry)
    {
        long t0 = Stopwatch.GetTimestamp();
        ulong page = address & ~(ulong)(PageSize - 1);
        if (!TryFileOffset(page, out long off))
        {
            FailVm($"fault at 0x{address:x}, outside every region the VMM registered");
            return;
        }
        long pageIndex = off / PageSize;
        int chunk = (int)(off / ChunkGeometry.ChunkSize);
        InstallStatus status;
        long installed;
        int errno;
        if (_removed.Get(pageIndex) || _memory.IsZeroChunk(chunk))
        {
            // Zero memory: map the zero page over the rest of the chunk (within the region) in one call.
            ulong len = BytesToRunEnd(page, off);
            status = _uffd.ZeroPage(page, len, out installed, out errno);
            _zero += installed / PageSize;
            for (long p = 0; p < installed / PageSize; p++)
            {
                if (!_removed.Get(pageIndex + p)) _installed.Set(pageIndex + p);
            }
        }
        else
        {
            // The page from its own chunk if that is in memory; else from the working-set pack when the plan
            // holds it (one pack chunk carries 128 planned pages); else its own chunk, fetched now.
            var source = _memory;
            int sourceChunk = chunk;
            long within = off - (long)chunk * ChunkGeometry.ChunkSize;
            if (!_memory.TryPin(chunk, out nint src))
            {
                int slot = _packSlot is null ? -1 : _packSlot[pageIndex];
                if (slot >= 0)
                {
                    source = _pack!;
                    sourceChunk = slot / ChunkGeometry.PagesPerChunk;
                    within = (long)(slot % ChunkGeometry.PagesPerChunk) * PageSize;
                }
                if (!source.TryPin(sourceChunk, out src) && !TryLoadForDemand(source, sourceChunk, off, out src))
                    return;
            }
            // Fault-around: from the snapshot's own chunk, also install the next few pages a guest usually touches
            // right after (REAP measured runs of 2-3 pages), stopping at anything present, removed, or past the
            // chunk or the region. One copy instead of several faults, each a round trip through the kernel.
            int pages = ReferenceEquals(source, _memory) ? FaultAroundPages(page, pageIndex, off) : 1;
            try
            {
                status = _uffd.Copy(
                    page, src + (nint)within, (ulong)pages * PageSize, wake: true, out installed, out errno);
            }
            finally
            {
                source.Unpin(sourceChunk);
            }
            if (status == InstallStatus.Done) installed = (long)pages * PageSize;
            long done = installed / PageSize;
            for (long p = 0; p < done; p++) _installed.Set(pageIndex + p);
            _copied += done;
            if (status == InstallStatus.Exists && done > 0) status = InstallStatus.Done; // the faulting page landed
        }

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
            case InstallStatus.Gone:
                _vmGone = true;
                return;
            case InstallStatus.Failed:
                FailVm($"installing the page at offset {off} failed (errno {errno})");
                return;
        }
        if (!retry) _faults++;
        Record(pageIndex, t0);
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

    /// <summary>A demand fault on a chunk not in memory: fetch it now, within the deadline, or fail the VM.</summary>
    private bool TryLoadForDemand(Memory.ResidentChunks source, int chunk, long off, out nint src)
    {
        src = 0;
        using var deadline = new CancellationTokenSource(_options.FaultDeadline);
        try
        {
            src = source.PinAsync(chunk, deadline.Token).AsTask().GetAwaiter().GetResult();
            return true;
        }
        catch (OperationCanceledException)
        {
            FailVm($"the page at offset {off} (chunk {chunk}) could not be fetched within "
                + $"{_options.FaultDeadline.TotalSeconds:F1} s");
        }
        catch (SnapshotException ex)
        {
            FailVm(ex.Message);
        }
        return false;
    }

    private void Record(long pageIndex, long t0)
    {
        long now = Stopwatch.GetTimestamp();
        long n = _faults - 1;
        if (n >= 0 && n < _faultTicks.Length) _faultTicks[n] = now - t0;
        if (_touches is not null && _touchCount < _touches.Length)
        {
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
        LibC.kill(_session.VmmPid, LibC.SIGKILL);
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

    private RestoreStats Stats(TimeSpan elapsed, PrefetchScheduler? scheduler)
    {
        int n = (int)Math.Min(_faults, _faultTicks.Length);
        var sorted = _faultTicks.AsSpan(0, n);
        sorted.Sort(); // in place: the run is over
        double Us(long ticks) => ticks * 1_000_000.0 / Stopwatch.Frequency;
        return new RestoreStats
        {
            Snapshot = _memory.Name, VmmPid = _session.VmmPid, Regions = _session.Regions.Length,
            Faults = _faults, PagesCopied = _copied, ZeroPages = _zero, PrefetchedPages = _prefetched,
            PlannedPages = _options.Plan?.Pages.Length ?? 0, ExistingPages = _existing,
            RemoveEvents = _removeEvents, RemovedPages = _removedPages,
            FaultP50Us = n > 0 ? Us(sorted[n / 2]) : 0, FaultP99Us = n > 0 ? Us(sorted[(int)(n * 0.99)]) : 0,
            FaultMaxUs = n > 0 ? Us(sorted[^1]) : 0,
            FaultServiceMs = Us(Sum(sorted)) / 1000,
            ChunksLoaded = _memory.Loads + (_pack?.Loads ?? 0),
            ChunkEvictions = _memory.Evictions + (_pack?.Evictions ?? 0),
            Seconds = elapsed.TotalSeconds,
            Outcome = _failure is null ? RestoreStats.ExitedOutcome : RestoreStats.FailedOutcome,
            Reason = _failure,
            Prefetch = scheduler is null ? null
                : $"{scheduler.ChunksLoaded} {(_pack is null ? "snapshot" : "working-set pack")} chunks loaded, "
                    + $"{scheduler.Failures} failed",
        };
    }
}
