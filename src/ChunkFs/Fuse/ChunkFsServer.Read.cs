using System.Diagnostics;
using Snapshots.ChunkFs.Native;
using Snapshots.Store;
using Snapshots.Store.Chunks;

namespace Snapshots.ChunkFs.Fuse;

/// <summary>READ, and the replies every request is answered with.</summary>
public sealed partial class ChunkFsServer
{
    /// <summary>Segments of one read reply: a 2 MiB read at an unaligned offset spans five chunks.</summary>
    private const int MaxSegments = 6;
    private int _missesInFlight;

    /// <summary>Any offset and size: the part within the file is answered (short at its end, empty past it),
    /// straight from the chunk buffers when its chunks are in memory.</summary>
    private unsafe void Read(FuseInHeader* h, FuseReadIn* r)
    {
        long start = Stopwatch.GetTimestamp();
        var file = FileOf(h->NodeId);
        if (file is null) { ReplyError(h->Unique, LibC.EISDIR); return; }
        long offset = (long)Math.Min(r->Offset, long.MaxValue);
        int length = offset >= file.Size ? 0 : (int)Math.Min(r->Size, file.Size - offset);
        if (length == 0) { ReplyBytes(h->Unique, null, 0); return; }
        file.Recorder?.Touch(offset, length);
        if (TryReply(h->Unique, file, offset, length))
        {
            Count(file, length, start);
            return;
        }
        Interlocked.Increment(ref file.Counters.Misses);
        Interlocked.Increment(ref _missesInFlight);
        _ = ServeMissAsync(h->Unique, file, offset, length, start);
    }

    private static void Count(ChunkFsFile file, int length, long start)
    {
        Interlocked.Increment(ref file.Counters.Reads);
        Interlocked.Add(ref file.Counters.Bytes, length);
        file.Counters.Time(start);
    }

    /// <summary>Replies with the bytes when every chunk of the range is resident (pinned for the writev); false,
    /// having sent nothing, when one is not.</summary>
    private unsafe bool TryReply(ulong unique, ChunkFsFile file, long offset, int length)
    {
        var memory = file.Memory;
        IoVec* iov = stackalloc IoVec[MaxSegments + 1];
        int* pinned = stackalloc int[MaxSegments];
        int pins = 0, segments = 1;
        bool complete = true;
        var header = new FuseOutHeader { Len = (uint)(sizeof(FuseOutHeader) + length), Unique = unique };
        iov[0] = new IoVec { Base = &header, Len = (nuint)sizeof(FuseOutHeader) };
        for (long pos = offset, end = offset + length; pos < end; segments++)
        {
            int chunk = (int)(pos / ChunkGeometry.ChunkSize);
            int within = (int)(pos % ChunkGeometry.ChunkSize);
            int take = (int)Math.Min(end - pos, ChunkGeometry.ChunkSize - within);
            nint source;
            if (memory.IsZeroChunk(chunk)) source = _zeros;
            else if (memory.TryPin(chunk, out var address)) { pinned[pins++] = chunk; source = address + within; }
            else { complete = false; break; }
            iov[segments] = new IoVec { Base = (void*)source, Len = (nuint)take };
            pos += take;
        }
        if (complete) Send(iov, segments);
        for (int i = 0; i < pins; i++) memory.Unpin(pinned[i]);
        return complete;
    }

    /// <summary>A read whose chunks must be fetched: waits for them off the reader threads, with demand priority,
    /// pinning each as it arrives so that none is evicted before the reply (however small the memory budget and
    /// however many reads share it), then replies; EIO at the deadline or when a chunk cannot be had intact, with a
    /// log line naming the chunk and the snapshot. Never throws.</summary>
    private async Task ServeMissAsync(ulong unique, ChunkFsFile file, long offset, int length, long start)
    {
        var memory = file.Memory;
        int first = (int)(offset / ChunkGeometry.ChunkSize);
        int last = (int)((offset + length - 1) / ChunkGeometry.ChunkSize);
        var pins = new Task<nint>?[last - first + 1];
        int failed = -1;
        try
        {
            // Every chunk of the range asked for at once (a read may span up to five), then awaited in order.
            for (int c = first; c <= last; c++)
                if (!memory.IsZeroChunk(c)) pins[c - first] = memory.PinAsync(c, _stop.Token).AsTask();
            for (int c = first; c <= last; c++)
            {
                if (pins[c - first] is not { } pin) continue;
                failed = c;
                var left = _options.ReadDeadline - Stopwatch.GetElapsedTime(start);
                if (left <= TimeSpan.Zero) throw new TimeoutException();
                await pin.WaitAsync(left, _stop.Token);
            }
            failed = -1;
            // Held pinned: the reply cannot miss.
            if (!TryReply(unique, file, offset, length)) throw new InvalidOperationException("a pinned chunk left");
            Count(file, length, start);
        }
        catch (Exception ex)
        {
            Interlocked.Increment(ref file.Counters.Errors);
            string what = failed >= 0 ? $"chunk {failed}" : "its chunks";
            string why = ex switch
            {
                TimeoutException => $"not in memory within {_options.ReadDeadline.TotalSeconds:0.###} s",
                OperationCanceledException => "the mount is closing",
                SnapshotException s => s.Message,
                _ => ex.ToString(),
            };
            _options.Log($"ChunkFs: read of {length} bytes at {offset} of '{file.Name}' failed with EIO: {what}: "
                + why);
            if (!_stop.IsCancellationRequested) ReplyError(unique, LibC.EIO);
        }
        finally
        {
            // Each pin taken is given back, now or, for one still under way past the deadline, when it lands.
            for (int i = 0; i < pins.Length; i++)
            {
                if (pins[i] is not { } pin) continue;
                int chunk = first + i;
                if (pin.IsCompletedSuccessfully) memory.Unpin(chunk);
                else if (!pin.IsCompleted)
                {
                    _ = pin.ContinueWith(t => { if (t.IsCompletedSuccessfully) memory.Unpin(chunk); },
                        CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                }
            }
            Interlocked.Decrement(ref _missesInFlight);
        }
    }

    /// <summary>Pushes bytes into the kernel's page cache for a file (FUSE_NOTIFY_STORE): later reads and faults
    /// of those pages never reach the mount. False when the kernel refused (the inode is no longer cached).
    /// </summary>
    internal unsafe bool NotifyStore(ulong nodeId, long offset, nint data, int length)
    {
        if (_stop.IsCancellationRequested) return false;
        var store = new FuseNotifyStoreOut { NodeId = nodeId, Offset = (ulong)offset, Size = (uint)length };
        var header = new FuseOutHeader
        {
            Len = (uint)(sizeof(FuseOutHeader) + sizeof(FuseNotifyStoreOut) + length),
            Error = FuseAbi.FUSE_NOTIFY_STORE, // a notification: unique 0, its code where an error would be
        };
        IoVec* iov = stackalloc IoVec[3];
        iov[0] = new IoVec { Base = &header, Len = (nuint)sizeof(FuseOutHeader) };
        iov[1] = new IoVec { Base = &store, Len = (nuint)sizeof(FuseNotifyStoreOut) };
        iov[2] = new IoVec { Base = (void*)data, Len = (nuint)length };
        return Send(iov, 3);
    }

    /// <summary>Drops a range of a file from the kernel's page cache (FUSE_NOTIFY_INVAL_INODE): mapped pages are
    /// unmapped, and the next access reads from the mount again.</summary>
    internal unsafe void NotifyInvalidate(ulong nodeId, long offset, long length)
    {
        if (_stop.IsCancellationRequested) return;
        var inval = new FuseNotifyInvalInodeOut { Ino = nodeId, Off = offset, Len = length };
        var header = new FuseOutHeader
        {
            Len = (uint)(sizeof(FuseOutHeader) + sizeof(FuseNotifyInvalInodeOut)),
            Error = FuseAbi.FUSE_NOTIFY_INVAL_INODE,
        };
        IoVec* iov = stackalloc IoVec[2];
        iov[0] = new IoVec { Base = &header, Len = (nuint)sizeof(FuseOutHeader) };
        iov[1] = new IoVec { Base = &inval, Len = (nuint)sizeof(FuseNotifyInvalInodeOut) };
        Send(iov, 2);
    }

    /// <summary>A chunk of zeros, for zero chunks and prefetched zero pages.</summary>
    internal nint Zeros => _zeros;

    private unsafe void Reply<T>(ulong unique, T body) where T : unmanaged =>
        ReplyBytes(unique, (byte*)&body, sizeof(T));

    private unsafe void ReplyBytes(ulong unique, byte* data, int length)
    {
        var header = new FuseOutHeader { Len = (uint)(sizeof(FuseOutHeader) + length), Unique = unique };
        IoVec* iov = stackalloc IoVec[2];
        iov[0] = new IoVec { Base = &header, Len = (nuint)sizeof(FuseOutHeader) };
        iov[1] = new IoVec { Base = data, Len = (nuint)length };
        Send(iov, length == 0 ? 1 : 2);
    }

    /// <summary>An error reply (errno positive; 0 is success with no body).</summary>
    private unsafe void ReplyError(ulong unique, int errno)
    {
        var header = new FuseOutHeader { Len = (uint)sizeof(FuseOutHeader), Error = -errno, Unique = unique };
        var iov = new IoVec { Base = &header, Len = (nuint)sizeof(FuseOutHeader) };
        Send(&iov, 1);
    }

    /// <summary>One reply or notification in one write. ENOENT: the request was interrupted and is gone; ENODEV:
    /// the mount is gone. Neither is an error of ours.</summary>
    private unsafe bool Send(IoVec* iov, int count)
    {
        if (LibC.writev(_fd, iov, count) >= 0) return true;
        int e = LibC.Errno;
        if (e is not (LibC.ENOENT or LibC.ENODEV)) _options.Log($"ChunkFs: a reply failed: {LibC.StrError(e)}");
        return false;
    }
}
