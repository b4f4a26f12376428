using System.Buffers;
using Snapshots.Store.Chunks;
using Snapshots.Store.Origin;

namespace Snapshots.Store.Cache;

/// <summary>The index, rebuilt from the directory: at open, and by <see cref="Reconcile"/> for a shared one.</summary>
public sealed partial class DiskChunkCache
{
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
            // Only the cache's own DIR/ab: a directory set by mistake (a parent, /) keeps its other entries, and
            // its symlinks (/bin -> usr/bin) are never removed.
            if (!IsSubdirectoryName(Path.GetFileName(sub))) continue;
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

    private static bool IsSubdirectoryName(string name) =>
        name.Length == 2 && char.IsAsciiHexDigitLower(name[0]) && char.IsAsciiHexDigitLower(name[1]);

    /// <summary>Rebuilds the index from the directory: oldest first, so the newest end up most recent, then evicts
    /// down to the low watermark if over the high one. Temp files are leftovers of a crash (or of a writer still
    /// running: their rename then simply fails over to a fresh put) and are removed. Entries of an impossible size
    /// (no longer than a GCM tag, or longer than any chunk) are deleted as corrupt; with <paramref name="verify"/>
    /// every other entry is hashed against its name too, and a mismatch deleted as corrupt.</summary>
    private void Load(bool verify)
    {
        var found = new List<(ChunkName Name, long Size, DateTime Time)>();
        byte[]? buffer = verify ? ArrayPool<byte>.Shared.Rent((int)ConvergentCipherSize) : null;
        try
        {
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
                    // Torn (empty, or cut short of its tag), or planted: a sparse giant would push every good entry
                    // out of the budget.
                    long length = file.Length;
                    bool intact = length > Crypto.ConvergentCipher.TagSize && length <= ConvergentCipherSize;
                    if (intact && buffer is not null)
                    {
                        if (Verify(name, file, buffer) is not { } hashed) continue; // gone meanwhile
                        intact = hashed;
                    }
                    if (!intact)
                    {
                        Interlocked.Increment(ref _dropped);
                        DeleteFile(file.FullName);
                        continue;
                    }
                    found.Add((name, length, file.LastWriteTimeUtc));
                }
                catch (FileNotFoundException) { } // evicted by another process sharing the directory meanwhile
            }
        }
        finally
        {
            if (buffer is not null) ArrayPool<byte>.Shared.Return(buffer);
        }
        found.Sort((a, b) => a.Time.CompareTo(b.Time));
        List<ChunkName>? victims;
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
            _retryAbove = 0;
            victims = EvictAboveHighLocked();
        }
        DeleteEntries(victims);
    }

    /// <summary>True when the entry's bytes hash to its name, false when they do not or it is not a regular file
    /// (opened as reads open it: no symlink followed, no FIFO blocked on), null when it is gone.</summary>
    private bool? Verify(ChunkName name, FileInfo file, byte[] buffer)
    {
        try
        {
            using var handle = _safe.OpenRegular(
                $"{Path.GetFileName(file.DirectoryName)}/{file.Name}", ConvergentCipherSize, out long length);
            if (handle is null) return null;
            int n = RandomAccess.Read(handle, buffer.AsSpan(0, (int)length), 0);
            return name.Matches(buffer.AsSpan(0, n));
        }
        catch (HostileFileException) { return false; }
    }

    /// <summary>Several processes may share the directory; each knows only what it wrote and read. After every
    /// <see cref="_scanEvery"/> bytes it writes, a process takes the directory's lock (DIR/.lock, an exclusive
    /// flock) and rebuilds its index from the directory itself, all processes' entries with their recency (file
    /// times), evicting the least recently used down to the low watermark once past the high one: so the budget
    /// holds across them, overshot by about that much per process. A busy lock is waited for (another's rebuild
    /// takes milliseconds): skipping it let every writer go on with a stale view, each evicting files another had
    /// already removed, and a shared 32 MiB budget ended at 52 MiB under load. A holder that never lets go
    /// (stopped) costs a put <see cref="ReconcileWait"/>, then the put goes on and the next try comes after another
    /// interval. A rebuild never hashes entries (that is the open's job, once): it checks their sizes only.
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
            using (gate) Load(verify: false);
            return;
        }
    }

    /// <summary>How long a put waits for another user's rebuild of the index before going on without its own.</summary>
    public static readonly TimeSpan ReconcileWait = TimeSpan.FromSeconds(2);
}
