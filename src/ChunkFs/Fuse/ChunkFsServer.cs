using System.Diagnostics;
using System.Runtime.InteropServices;
using Snapshots.ChunkFs.Native;
using Snapshots.Prefetch;
using Snapshots.Store;
using Snapshots.Store.Chunks;

namespace Snapshots.ChunkFs.Fuse;

/// <summary>
/// ChunkFs: snapshots as read-only files of a FUSE mount, served from their memory tiers. The kernel protocol is
/// spoken over /dev/fuse directly (docs/chunkfs.md says why): a few threads read requests; a read whose chunks are
/// in memory is answered at once from the chunk buffers themselves (one writev, no copy, no allocation), one that
/// needs a fetch is answered off those threads when its chunks arrive, or with EIO at its deadline. Lifecycle:
/// <see cref="StartAsync"/> mounts and completes once the kernel's INIT is answered; <see cref="Completion"/> ends
/// when the mount goes away; <see cref="Dispose"/> unmounts.
/// </summary>
public sealed partial class ChunkFsServer : IDisposable
{
    /// <summary>Requests other than WRITE are small; writes are refused, and max_write is the kernel's minimum.
    /// </summary>
    private const int RequestBufferBytes = 128 << 10;
    private const int MaxWrite = 4096;
    private readonly ChunkFsFile[] _files;
    private readonly ChunkFsOptions _options;
    private readonly string _mountPoint;
    private readonly TaskCompletionSource _initialized = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _prefetches = [];
    private readonly Thread[] _threads;
    private readonly uint _uid, _gid;
    private readonly long _mountedAt = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
    private FuseMount? _mount;
    private int _fd = -1;
    private int _running;
    private bool _disposed;

    /// <summary>Zeros for zero chunks and past-the-end reads: one chunk's worth, shared by every reply.</summary>
    private readonly nint _zeros;

    /// <param name="mountPoint">An existing, empty-of-mounts directory.</param>
    /// <param name="files">The files to expose (distinct names).</param>
    /// <param name="options"></param>
    public ChunkFsServer(string mountPoint, IReadOnlyList<ChunkFsFile> files, ChunkFsOptions options)
    {
        ArgumentNullException.ThrowIfNull(files);
        ArgumentNullException.ThrowIfNull(options);
        if (files.Count == 0) throw new InvalidInputException("no snapshot to mount", "name");
        if (options.MaxReadBytes is < 4096 or > (2 << 20) || options.MaxReadBytes % 4096 != 0)
        {
            throw new InvalidInputException(
                $"max read of {options.MaxReadBytes} bytes: use a multiple of 4 KiB up to 2 MiB", "max-read");
        }
        if (options.ReadAheadBytes < 0 || options.ReadAheadBytes > options.MaxReadBytes)
        {
            throw new InvalidInputException(
                $"read-ahead of {options.ReadAheadBytes} bytes: use 0 to {options.MaxReadBytes}", "read-ahead");
        }
        if (options.Threads is < 1 or > 64)
            throw new InvalidInputException($"{options.Threads} threads: use 1-64", "threads");
        _files = [.. files];
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < _files.Length; i++)
        {
            if (!names.Add(_files[i].Name))
                throw new InvalidInputException($"snapshot '{_files[i].Name}' is named twice", "name");
            _files[i].NodeId = FuseAbi.FUSE_ROOT_ID + 1 + (ulong)i;
            if (options.Record) _files[i].Recorder = new ReadRecorder(_files[i].Size);
        }
        _options = options;
        _mountPoint = mountPoint;
        _uid = options.OwnerUid ?? LibC.geteuid();
        _gid = options.OwnerGid ?? LibC.getegid();
        _threads = new Thread[options.Threads];
        _zeros = AllocZeros();
    }

    /// <summary>The mount point, resolved (valid once started).</summary>
    public string MountPoint => _mount?.Path ?? _mountPoint;

    public IReadOnlyList<ChunkFsFile> Files => _files;

    /// <summary>Completes when the mount is gone (unmounted by <see cref="Dispose"/>, by an operator, or its
    /// connection aborted) and every reader thread has exited.</summary>
    public Task Completion => _stopped.Task;

    /// <summary>Mounts and starts the reader threads; completes when the kernel's INIT has been answered, so the
    /// files can be opened.</summary>
    /// <exception cref="InvalidInputException">The mount point is missing or busy.</exception>
    /// <exception cref="SnapshotException">Mounting failed, or the kernel did not start the session in 10 s.
    /// </exception>
    public async Task StartAsync(CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _mount = FuseMount.Mount(_mountPoint, _options.MaxReadBytes, allowOther: true, _options.Log);
        _fd = _mount.Fd;
        _running = _threads.Length;
        for (int i = 0; i < _threads.Length; i++)
        {
            _threads[i] = new Thread(ReaderLoop) { Name = $"chunkfs-{i}", IsBackground = true };
            _threads[i].Start();
        }
        try
        {
            await _initialized.Task.WaitAsync(TimeSpan.FromSeconds(10), ct);
        }
        catch (TimeoutException)
        {
            throw new SnapshotException($"the kernel did not start the FUSE session on {MountPoint} within 10 s");
        }
        // Prefetch from the mount on, not from the VMM's first open: the page cache fills while the VMM starts.
        // A store notification needs the kernel to hold the file's inode: a lookup of our own makes it.
        foreach (var f in _files)
        {
            if (f.Prefetch is not { Count: > 0 }) continue;
            _ = File.Exists(Path.Combine(MountPoint, f.Name));
            if (f.FirstOpen()) StartPrefetch(f);
        }
    }

    /// <summary>One reader thread: requests in, replies out, until the mount goes away (ENODEV).</summary>
    private unsafe void ReaderLoop()
    {
        byte* buffer = (byte*)NativeMemory.AlignedAlloc(RequestBufferBytes, 4096);
        try
        {
            while (true)
            {
                nint n = LibC.read(_fd, buffer, RequestBufferBytes);
                if (n < 0)
                {
                    int e = LibC.Errno;
                    // ENOENT: the request was interrupted before we read it.
                    if (e is LibC.EINTR or LibC.EAGAIN or LibC.ENOENT) continue;
                    if (e != LibC.ENODEV) _options.Log($"ChunkFs: reading /dev/fuse failed: {LibC.StrError(e)}");
                    return;
                }
                if (n < sizeof(FuseInHeader)) continue;
                Dispatch((FuseInHeader*)buffer, (int)n);
            }
        }
        catch (Exception ex)
        {
            // A bug here must not take the process down silently with VMs reading: say it, then end the mount.
            _options.Log($"ChunkFs: a reader thread failed: {ex}");
            _mount?.Abort();
        }
        finally
        {
            NativeMemory.AlignedFree(buffer);
            if (Interlocked.Decrement(ref _running) == 0) _stopped.TrySetResult();
        }
    }

    private ChunkFsFile? FileOf(ulong nodeId)
    {
        ulong i = nodeId - FuseAbi.FUSE_ROOT_ID - 1;
        return i < (ulong)_files.Length ? _files[i] : null;
    }

    /// <summary>Pushes a file's planned chunks into the page cache, once, from its first open.</summary>
    private void StartPrefetch(ChunkFsFile file)
    {
        if (file.Prefetch is not { Count: > 0 } work) return;
        var target = new StorePrefetch(this, file);
        var scheduler = new PrefetchScheduler(work, target, new PrefetchOptions { Concurrency = 2 });
        lock (_prefetches) _prefetches.Add(Task.Run(() => scheduler.RunAsync(_stop.Token)));
    }

    private static unsafe nint AllocZeros()
    {
        var p = LibC.mmap(null, ChunkGeometry.ChunkSize, LibC.PROT_READ, LibC.MAP_PRIVATE | LibC.MAP_ANONYMOUS,
            -1, 0);
        if (p == (void*)-1)
            throw new InvalidOperationException($"cannot map the zero chunk: {LibC.StrError(LibC.Errno)}");
        return (nint)p;
    }

    /// <summary>The figures of every file.</summary>
    public IReadOnlyList<ChunkFsFileStats> Stats()
    {
        var stats = new ChunkFsFileStats[_files.Length];
        for (int i = 0; i < _files.Length; i++) stats[i] = ChunkFsFileStats.Of(_files[i]);
        return stats;
    }

    /// <summary>The access log of each file's reads (when recording), by file name.</summary>
    public IReadOnlyDictionary<string, AccessLog> RecordedLogs()
    {
        var logs = new Dictionary<string, AccessLog>(StringComparer.Ordinal);
        foreach (var f in _files) if (f.Recorder is { } r) logs[f.Name] = r.Log();
        return logs;
    }

    /// <summary>Unmounts (aborting the connection if a VMM still uses it), waits for the reader threads and the
    /// prefetchers, and releases the descriptor.</summary>
    public unsafe void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _stop.Cancel();
        if (_mount is not null)
        {
            _mount.Unmount();
            foreach (var t in _threads)
            {
                if (t is null || t.Join(TimeSpan.FromSeconds(5))) continue;
                // A reader still blocked: the unmount left the connection up; abort it so the read returns.
                _mount.Abort();
                t.Join(TimeSpan.FromSeconds(5));
            }
            // Reads waiting on fetches end at once (the stop token): none may reply on a closed descriptor.
            var until = Stopwatch.GetTimestamp() + Stopwatch.Frequency * 5;
            while (Volatile.Read(ref _missesInFlight) > 0 && Stopwatch.GetTimestamp() < until) Thread.Sleep(1);
            Task[] prefetches;
            lock (_prefetches) prefetches = [.. _prefetches];
            try { Task.WaitAll(prefetches, TimeSpan.FromSeconds(5)); }
            catch (AggregateException) { } // cancelled: nothing to report
            _mount.Dispose();
        }
        _stopped.TrySetResult();
        if (Volatile.Read(ref _missesInFlight) == 0) LibC.munmap((void*)_zeros, ChunkGeometry.ChunkSize);
        _stop.Dispose();
    }
}
