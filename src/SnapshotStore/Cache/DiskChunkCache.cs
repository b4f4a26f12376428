using Microsoft.Win32.SafeHandles;
using Snapshots.Store.Chunks;

namespace Snapshots.Store.Cache;

/// <summary>
/// The worker's local disk tier: ciphertext chunk files under DIR/ab/NAME, bounded to a byte budget, least
/// recently used evicted first, in batches from a high watermark down to a low one (<see cref="DiskCacheOptions"/>).
/// Crash-safe without a journal: each entry is written to a temp file and renamed, the index is rebuilt from the
/// directory at open (recency from file times, refreshed on every hit), and every entry is hashed against its name
/// before it is returned, so a torn or tampered file is dropped, never served. Entries are opened as
/// <see cref="Files.SafeDirectory"/> does: a symlink, FIFO or oversized file planted in the directory is dropped as
/// a miss (never followed, never blocking), and the next tier asked.
/// A fill is only an optimisation: one that would take the filesystem under its free-space floor, or that fails
/// with ENOSPC or EDQUOT, makes room by evicting a batch and is tried once more, then dropped (counted), never
/// thrown. Chunks under a <see cref="Protect"/> lease are never evicted. <see cref="Counters"/> reports it all.
/// </summary>
public sealed partial class DiskChunkCache : IChunkCache, IDisposable
{
    private readonly string _dir;
    private readonly Files.SafeDirectory _safe;
    private readonly DiskCacheOptions _options;
    private readonly Lock _lock = new();
    private readonly Dictionary<ChunkName, LinkedListNode<Entry>> _index = [];
    private readonly LinkedList<Entry> _lru = new(); // first = most recent
    private long _bytes;
    private long _dropped;
    private readonly long _scanEvery;
    private long _written;

    private readonly record struct Entry(ChunkName Name, long Size);

    /// <summary>Opens (creating) the cache in <paramref name="dir"/> with a budget of <paramref name="maxBytes"/>
    /// bytes, the default watermarks and free-space floor, and no hashing at open (entries are checked as they are
    /// read): what a short-lived process wants. Throws as <see cref="DiskChunkCache(string, DiskCacheOptions)"/>.
    /// </summary>
    public DiskChunkCache(string dir, long maxBytes)
        : this(dir, new DiskCacheOptions(maxBytes) { VerifyAtOpen = false }) { }

    /// <summary>Opens (creating) the cache in <paramref name="dir"/>, rebuilding its index from the files there and
    /// evicting down to the low watermark if it is over the high one. Throws <see cref="InvalidInputException"/>
    /// when the budget is under one chunk (cache-size) or <paramref name="dir"/> is a file (cache-dir),
    /// <see cref="ArgumentOutOfRangeException"/> for watermarks that cannot work together, and
    /// <see cref="IOException"/> when the directory cannot be made or opened.</summary>
    public DiskChunkCache(string dir, DiskCacheOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _dir = Path.GetFullPath(dir);
        _scanEvery = Math.Max(ConvergentCipherSize, options.BudgetBytes / 16);
        if (File.Exists(_dir)) throw new InvalidInputException($"cache {_dir} is a file, not a directory", "cache-dir");
        Directory.CreateDirectory(_dir);
        _safe = new Files.SafeDirectory(_dir);
        (_drive, _floor) = FreeSpaceFloor(_dir, options);
        Load(verify: options.VerifyAtOpen);
    }

    private const long ConvergentCipherSize = Crypto.ConvergentCipher.MaxCiphertextSize;

    public string Describe => $"disk cache {_dir}";
    public bool VerifiesOnRead => true;

    /// <summary>The options the cache was opened with.</summary>
    public DiskCacheOptions Options => _options;

    /// <summary>Bytes of the entries in the index (file lengths).</summary>
    public long Bytes { get { lock (_lock) return _bytes; } }

    /// <summary>Entries in the index.</summary>
    public int Count { get { lock (_lock) return _index.Count; } }

    /// <summary>Entries evicted since the cache was opened (not counting corrupt ones).</summary>
    public long Evictions => Interlocked.Read(ref _evictions);

    /// <summary>Entries deleted as corrupt since the cache was opened (at open, at a rebuild, or at read).</summary>
    public long DroppedCorrupt => Interlocked.Read(ref _dropped);

    private string PathOf(ChunkName name)
    {
        var hex = name.ToString();
        return Path.Combine(_dir, hex[..2], hex);
    }

    public ValueTask<int> TryGetAsync(ChunkName name, Memory<byte> buffer, CancellationToken ct = default)
    {
        var hex = name.ToString();
        SafeFileHandle? handle;
        long length;
        try { handle = _safe.OpenRegular($"{hex[..2]}/{hex}", buffer.Length, out length); }
        catch (HostileFileException)
        {
            Drop(name); // planted or oversized: not ours to serve; the link itself (not its target) is removed
            return ValueTask.FromResult(-1);
        }
        if (handle is null) { Forget(name); return ValueTask.FromResult(-1); }
        using (handle)
        {
            int n = RandomAccess.Read(handle, buffer.Span[..(int)length], 0);
            if (!name.Matches(buffer.Span[..n]))
            {
                Drop(name); // torn or tampered: deleted, counted, and a miss, so the next tier serves it
                return ValueTask.FromResult(-1);
            }
            Touch(name, n, handle);
            return ValueTask.FromResult(n);
        }
    }

    /// <summary>Writes the chunk unless it is cached already, then evicts a batch if the cache passed its high
    /// watermark. Never throws for a full disk: the fill is dropped and counted
    /// (<see cref="DiskCacheCounters.FullDiskSkips"/>); other I/O errors are thrown (the reader counts them as
    /// failed fills).</summary>
    public ValueTask PutAsync(ChunkName name, ReadOnlyMemory<byte> ciphertext, CancellationToken ct = default)
    {
        lock (_lock)
        {
            if (_index.ContainsKey(name)) return ValueTask.CompletedTask;
        }
        if (!TryStore(name, ciphertext.Span)) return ValueTask.CompletedTask;
        List<ChunkName>? victims;
        bool reconcile;
        lock (_lock)
        {
            if (!_index.ContainsKey(name))
            {
                _index[name] = _lru.AddFirst(new Entry(name, ciphertext.Length));
                _bytes += ciphertext.Length;
            }
            victims = EvictAboveHighLocked();
            _written += ciphertext.Length;
            reconcile = _written >= _scanEvery;
        }
        DeleteEntries(victims);
        // Counted from the last try: one that timed out behind a stuck holder is tried again an interval later.
        if (reconcile)
        {
            Reconcile();
            lock (_lock) _written = 0;
        }
        return ValueTask.CompletedTask;
    }

    public void Remove(ChunkName name)
    {
        Forget(name);
        DeleteFile(PathOf(name));
    }

    public void Dispose() => _safe.Dispose();

    private void Drop(ChunkName name)
    {
        Interlocked.Increment(ref _dropped);
        Remove(name);
    }

    private static void DeleteFile(string path)
    {
        try { File.Delete(path); }
        catch (UnauthorizedAccessException) { } // a directory planted under the name: left, and never served
        catch (IOException) { }
    }

    /// <summary>Creates DIR/ab as a real directory: anything else planted under that name (a symlink would carry
    /// our writes and deletes out of the cache) is removed first, the link itself, never its target.</summary>
    private static void EnsureSubdirectory(string sub)
    {
        var kind = Files.FileKinds.Of(sub, followLinks: false);
        if (kind == Files.FileKind.Directory) return;
        if (kind != Files.FileKind.Missing) File.Delete(sub);
        Directory.CreateDirectory(sub);
    }

    private void Forget(ChunkName name)
    {
        lock (_lock)
        {
            if (_index.Remove(name, out var node))
            {
                _lru.Remove(node);
                _bytes -= node.Value.Size;
            }
        }
    }

    private void Touch(ChunkName name, int size, SafeFileHandle file)
    {
        List<ChunkName>? victims = null;
        lock (_lock)
        {
            if (_index.TryGetValue(name, out var node))
            {
                _lru.Remove(node);
                _lru.AddFirst(node);
            }
            else
            {
                // Written by another process sharing this directory: adopt it.
                _index[name] = _lru.AddFirst(new Entry(name, size));
                _bytes += size;
                victims = EvictAboveHighLocked();
            }
        }
        DeleteEntries(victims);
        // Recency survives a restart through the file's time; a failure here only ages the entry.
        try { File.SetLastWriteTimeUtc(file, DateTime.UtcNow); } catch (IOException) { }
    }
}
