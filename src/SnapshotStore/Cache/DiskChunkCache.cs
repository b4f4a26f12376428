using Microsoft.Win32.SafeHandles;
using Snapshots.Store.Chunks;
using Snapshots.Store.Origin;

namespace Snapshots.Store.Cache;

/// <summary>
/// The worker's local disk tier: ciphertext chunk files under DIR/ab/NAME, bounded to a byte budget, least
/// recently used evicted first. Crash-safe without a journal: each entry is written to a temp file and renamed,
/// the index is rebuilt from the directory at open (recency from file times, refreshed on every hit), and every
/// entry is hashed against its name before it is returned, so a torn or tampered file is dropped, never served.
/// Entries are opened as <see cref="Files.SafeDirectory"/> does: a symlink, FIFO or oversized file planted in the
/// directory is dropped as a miss (never followed, never blocking), and the next tier asked.
/// </summary>
public sealed class DiskChunkCache : IChunkCache, IDisposable
{
    private readonly string _dir;
    private readonly Files.SafeDirectory _safe;
    private readonly long _maxBytes;
    private readonly Lock _lock = new();
    private readonly Dictionary<ChunkName, LinkedListNode<Entry>> _index = [];
    private readonly LinkedList<Entry> _lru = new(); // first = most recent
    private long _bytes;
    private long _evictions, _dropped;
    private readonly long _scanEvery;
    private long _written;

    private readonly record struct Entry(ChunkName Name, long Size);

    public DiskChunkCache(string dir, long maxBytes)
    {
        if (maxBytes < ConvergentCipherSize)
            throw new InvalidInputException($"cache size {maxBytes} is smaller than one chunk", "cache-size");
        _dir = Path.GetFullPath(dir);
        _maxBytes = maxBytes;
        _scanEvery = Math.Max(ConvergentCipherSize, maxBytes / 16);
        if (File.Exists(_dir)) throw new InvalidInputException($"cache {_dir} is a file, not a directory", "cache-dir");
        Directory.CreateDirectory(_dir);
        _safe = new Files.SafeDirectory(_dir);
        Load();
    }

    private const long ConvergentCipherSize = Crypto.ConvergentCipher.MaxCiphertextSize;

    public string Describe => $"disk cache {_dir}";
    public bool VerifiesOnRead => true;
    public long Bytes { get { lock (_lock) return _bytes; } }
    public int Count { get { lock (_lock) return _index.Count; } }
    public long Evictions => Interlocked.Read(ref _evictions);
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
                Drop(name);
                return ValueTask.FromResult(-1);
            }
            Touch(name, n, handle);
            return ValueTask.FromResult(n);
        }
    }

    public ValueTask PutAsync(ChunkName name, ReadOnlyMemory<byte> ciphertext, CancellationToken ct = default)
    {
        lock (_lock)
        {
            if (_index.ContainsKey(name)) return ValueTask.CompletedTask;
        }
        var path = PathOf(name);
        EnsureSubdirectory(Path.GetDirectoryName(path)!);
        var tmp = FileBlobStore.TempPathFor(path);
        try
        {
            using (var h = File.OpenHandle(
                tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, FileOptions.None, ciphertext.Length))
            {
                RandomAccess.Write(h, ciphertext.Span, 0);
            }
            File.Move(tmp, path, overwrite: true);
        }
        finally
        {
            File.Delete(tmp);
        }
        bool reconcile;
        lock (_lock)
        {
            if (!_index.ContainsKey(name))
            {
                _index[name] = _lru.AddFirst(new Entry(name, ciphertext.Length));
                _bytes += ciphertext.Length;
            }
            EvictLocked();
            _written += ciphertext.Length;
            reconcile = _written >= _scanEvery;
        }
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
        try { File.Delete(PathOf(name)); }
        catch (UnauthorizedAccessException) { } // a directory planted under the name: left, and never served
        catch (IOException) { }
    }

    public void Dispose() => _safe.Dispose();

    /// <summary>The chunk files under <paramref name="dir"/> and their bytes, read without opening the cache
    /// (opening one evicts down to its budget, and an observer has no budget to impose). (0, 0) when the
    /// directory does not exist.</summary>
    public static (int Chunks, long Bytes) Occupancy(string dir)
    {
        int count = 0;
        long bytes = 0;
        if (!Directory.Exists(dir)) return (0, 0);
        foreach (var file in EntryFiles(dir, removeLinks: false))
        {
            if (!ChunkName.TryParse(file.Name, out _)) continue;
            try
            {
                bytes += file.Length;
                count++;
            }
            catch (FileNotFoundException) { } // evicted by a user of the cache meanwhile
        }
        return (count, bytes);
    }

    /// <summary>The files in the cache's real subdirectories (DIR/ab/*), listed a subdirectory at a time. A
    /// symlink posing as a subdirectory is not part of the cache: never entered, and with
    /// <paramref name="removeLinks"/> removed (the link). A subdirectory gone meanwhile (emptied by another user)
    /// is skipped.</summary>
    private static IEnumerable<FileInfo> EntryFiles(string dir, bool removeLinks)
    {
        foreach (var sub in Directory.EnumerateDirectories(dir))
        {
            if (Files.FileKinds.Of(sub, followLinks: false) != Files.FileKind.Directory)
            {
                if (removeLinks) File.Delete(sub);
                continue;
            }
            List<FileInfo> files;
            try { files = new DirectoryInfo(sub).EnumerateFiles().ToList(); }
            catch (DirectoryNotFoundException) { continue; }
            foreach (var file in files) yield return file;
        }
    }

    private void Drop(ChunkName name)
    {
        Interlocked.Increment(ref _dropped);
        Remove(name);
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
                EvictLocked();
            }
        }
        // Recency survives a restart through the file's time; a failure here only ages the entry.
        try { File.SetLastWriteTimeUtc(file, DateTime.UtcNow); } catch (IOException) { }
    }

    private void EvictLocked()
    {
        while (_bytes > _maxBytes && _lru.Last is { } last)
        {
            _lru.RemoveLast();
            _index.Remove(last.Value.Name);
            _bytes -= last.Value.Size;
            _evictions++;
            File.Delete(PathOf(last.Value.Name));
        }
    }

    /// <summary>Rebuilds the index from the directory: oldest first, so the newest end up most recent.
    /// Temp files are leftovers of a crash (or of a writer still running: their rename then simply fails
    /// over to a fresh put) and are removed.</summary>
    private void Load()
    {
        var found = new List<(ChunkName Name, long Size, DateTime Time)>();
        foreach (var file in EntryFiles(_dir, removeLinks: true))
        {
            if (file.Name.EndsWith(FileBlobStore.TempSuffix, StringComparison.Ordinal))
            {
                try { if (DateTime.UtcNow - file.LastWriteTimeUtc > TimeSpan.FromMinutes(10)) file.Delete(); }
                catch (IOException) { } // gone already: another process cleaned it
                continue;
            }
            if (!ChunkName.TryParse(file.Name, out var name)) continue;
            try
            {
                // Larger than any chunk: planted (a sparse giant would push every good entry out of the budget).
                if (file.Length > ConvergentCipherSize) { file.Delete(); continue; }
                found.Add((name, file.Length, file.LastWriteTimeUtc));
            }
            catch (FileNotFoundException) { } // evicted by another process sharing the directory meanwhile
        }
        found.Sort((a, b) => a.Time.CompareTo(b.Time));
        lock (_lock)
        {
            _index.Clear();
            _lru.Clear();
            _bytes = 0;
            foreach (var (name, size, _) in found)
            {
                _index[name] = _lru.AddFirst(new Entry(name, size));
                _bytes += size;
            }
            EvictLocked();
        }
    }

    /// <summary>Several processes may share the directory; each knows only what it wrote and read. After every
    /// <see cref="_scanEvery"/> bytes it writes, a process takes the directory's lock (DIR/.lock, an exclusive
    /// flock) and rebuilds its index from the directory itself, all processes' entries with their recency (file
    /// times), evicting the least recently used down to the budget: so the budget holds across them, overshot by
    /// about that much per process. A busy lock is waited for (another's rebuild takes milliseconds): skipping it
    /// let every writer go on with a stale view, each evicting files another had already removed, and a shared
    /// 32 MiB budget ended at 52 MiB under load. A holder that never lets go (stopped) costs a put
    /// <see cref="ReconcileWait"/>, then the put goes on and the next try comes after another interval.
    /// </summary>
    private void Reconcile()
    {
        var deadline = Environment.TickCount64 + (long)ReconcileWait.TotalMilliseconds;
        while (true)
        {
            FileStream gate;
            try
            {
                gate = new FileStream(Path.Combine(_dir, ".lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite,
                    FileShare.None);
            }
            catch (IOException) // another process (or instance) reconciles right now
            {
                if (Environment.TickCount64 >= deadline) return;
                Thread.Sleep(2);
                continue;
            }
            using (gate) Load();
            return;
        }
    }

    /// <summary>How long a put waits for another user's rebuild of the index before going on without its own.</summary>
    public static readonly TimeSpan ReconcileWait = TimeSpan.FromSeconds(2);
}
