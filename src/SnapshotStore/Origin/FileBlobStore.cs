using System.Runtime.CompilerServices;

namespace Snapshots.Store.Origin;

/// <summary>
/// The embedded origin: a directory. Objects are written to a temp file in the same directory and moved into
/// place, so readers never see a partial object. Put-if-absent uses a hard link (File.Move without overwrite),
/// which fails atomically when the name exists, so concurrent builders are safe. Chunk writes are made durable
/// in one batch by <see cref="FlushAsync"/> (syncfs) before a manifest is published; manifests are fsynced
/// with their directory.
/// </summary>
public sealed partial class FileBlobStore : IBlobStore, IDisposable
{
    public const string TempSuffix = ".tmp";
    private readonly string _root;
    private readonly Files.SafeDirectory _safe;

    public FileBlobStore(string root, bool create)
    {
        _root = Path.GetFullPath(root);
        if (File.Exists(_root)) throw new InvalidInputException($"store {_root} is a file, not a directory", "store");
        if (!Directory.Exists(_root))
        {
            if (!create)
                throw new NotAStoreException($"file://{_root}", "the directory does not exist") { Parameter = "store" };
            Directory.CreateDirectory(_root);
        }
        // One store, one name: a trailing slash or a symlinked path must not make another identity (readers key
        // their accepted publications by it).
        _root = Native.RealPath(_root) ?? _root;
        _safe = new Files.SafeDirectory(_root);
    }

    public string Root => _root;
    public string Describe => $"file://{_root}";

    private string PathOf(string key)
    {
        if (key.Length == 0 || key.Contains("..", StringComparison.Ordinal) || key.StartsWith('/'))
            throw new ArgumentException($"invalid object key '{key}'");
        return Path.Combine(_root, key);
    }

    /// <summary>Reads an object: only a regular file beneath the store, reached without symlinks, of at most the
    /// destination's size (a planted FIFO, link or oversized file is a <see cref="HostileFileException"/>, and
    /// nothing blocks or reads past the limit).</summary>
    public ValueTask<int?> ReadAsync(string key, Memory<byte> destination, CancellationToken ct = default)
    {
        PathOf(key);
        using var handle = _safe.OpenRegular(key, destination.Length, out long length);
        if (handle is null) return ValueTask.FromResult<int?>(null);
        int total = 0;
        while (total < length)
        {
            int n = RandomAccess.Read(handle, destination.Span[total..(int)length], total);
            if (n == 0) break;
            total += n;
        }
        return ValueTask.FromResult<int?>(total);
    }

    public ValueTask<byte[]?> ReadAllAsync(string key, int maxBytes, CancellationToken ct = default)
    {
        PathOf(key);
        return ValueTask.FromResult(_safe.ReadAll(key, maxBytes));
    }

    public ValueTask<bool> ExistsAsync(string key, CancellationToken ct = default) =>
        ValueTask.FromResult(File.Exists(PathOf(key)));

    public ValueTask<bool> PutIfAbsentAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct = default)
    {
        var path = WritablePathOf(key);
        var existing = new FileInfo(path);
        var kind = Files.FileKinds.Of(path, followLinks: false);
        // Same name, same bytes, by construction; the size check catches the one way a stored object can be
        // wrong without anyone writing it wrong: a power loss before the flush, which leaves files short or empty.
        // Anything but a regular file under the name (a planted link) is replaced, never taken for the object.
        if (kind == Files.FileKind.Regular && existing.Length == data.Length) return ValueTask.FromResult(false);
        bool replace = kind != Files.FileKind.Missing;
        var tmp = WriteTemp(path, data.Span, durable: false);
        try
        {
            File.Move(tmp, path, overwrite: replace);
            return ValueTask.FromResult(true);
        }
        catch (IOException) when (File.Exists(path))
        {
            return ValueTask.FromResult(false); // another writer stored the same name first
        }
        finally
        {
            File.Delete(tmp);
        }
    }

    public ValueTask PutAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct = default)
    {
        var path = WritablePathOf(key);
        var tmp = WriteTemp(path, data.Span, durable: true);
        try
        {
            File.Move(tmp, path, overwrite: true);
            Native.FsyncDirectory(Path.GetDirectoryName(path)!);
        }
        finally
        {
            File.Delete(tmp);
        }
        return ValueTask.CompletedTask;
    }

    public ValueTask<bool> PutNewAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct = default)
    {
        var path = WritablePathOf(key);
        var tmp = WriteTemp(path, data.Span, durable: true);
        try
        {
            if (!Native.LinkNew(tmp, path)) return ValueTask.FromResult(false); // the name exists: atomic
            Native.FsyncDirectory(Path.GetDirectoryName(path)!);
            return ValueTask.FromResult(true);
        }
        finally
        {
            File.Delete(tmp);
        }
    }

    public async ValueTask AppendAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct = default)
    {
        var path = WritablePathOf(key);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        if (Files.FileKinds.Of(path, followLinks: false) is var kind && kind is not (Files.FileKind.Regular
            or Files.FileKind.Missing))
        {
            throw new HostileFileException(path, Files.FileKinds.Describe(kind));
        }
        await using var fs = new FileStream(
            path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
        await fs.WriteAsync(data, ct);
    }

    /// <summary>Lists the objects below a directory prefix ("chunks/", "manifests/"), recursively. Never enters a
    /// symlinked directory; a symlink, FIFO or device is listed (size 0) but never followed or read: reading it is
    /// a <see cref="HostileFileException"/>, so gc stops on a planted manifest rather than delete its chunks.
    /// </summary>
    public async IAsyncEnumerable<BlobInfo> ListAsync(
        string prefix, [EnumeratorCancellation] CancellationToken ct = default)
    {
        await Task.CompletedTask;
        var top = prefix.TrimEnd('/');
        if (!IsRealDirectory(top)) yield break;
        var pending = new Stack<string>();
        pending.Push(Path.Combine(_root, top));
        while (pending.TryPop(out var dir))
        {
            IEnumerable<string> entries;
            try { entries = Directory.EnumerateFileSystemEntries(dir).ToList(); }
            catch (DirectoryNotFoundException) { continue; }
            catch (UnauthorizedAccessException) { continue; }
            foreach (var entry in entries)
            {
                ct.ThrowIfCancellationRequested();
                var kind = Files.FileKinds.Of(entry, followLinks: false);
                if (kind == Files.FileKind.Directory) { pending.Push(entry); continue; }
                if (kind != Files.FileKind.Regular)
                {
                    // Listed (never entered or read): whoever reads it gets a named refusal, and gc stops rather
                    // than take a planted manifest for an absent one and delete its chunks.
                    if (kind != Files.FileKind.Missing)
                        yield return new BlobInfo(Path.GetRelativePath(_root, entry), 0, DateTimeOffset.UtcNow);
                    continue;
                }
                var f = new FileInfo(entry);
                long size;
                DateTimeOffset modified;
                try { size = f.Length; modified = f.LastWriteTimeUtc; }
                catch (FileNotFoundException) { continue; }
                var rel = Path.GetRelativePath(_root, f.FullName).Replace('\\', '/');
                yield return new BlobInfo(rel, size, modified);
            }
        }
    }

    /// <summary>True when every component of <paramref name="relativeDir"/> beneath the root exists and is a real
    /// directory; false when one is missing; a symlink or other file in its place is a
    /// <see cref="HostileFileException"/>.</summary>
    private bool IsRealDirectory(string relativeDir)
    {
        var path = _root;
        foreach (var part in relativeDir.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            path = Path.Combine(path, part);
            var kind = Files.FileKinds.Of(path, followLinks: false);
            if (kind == Files.FileKind.Missing) return false;
            if (kind != Files.FileKind.Directory) throw new HostileFileException(path, Files.FileKinds.Describe(kind));
        }
        return true;
    }

    /// <summary>The object's path, once every directory on the way to it is known to be a real directory of the
    /// store (or missing, to be created by us): a write, move or delete never goes through a planted symlink.
    /// </summary>
    private string WritablePathOf(string key)
    {
        var path = PathOf(key);
        var dir = Path.GetDirectoryName(key.Replace('\\', '/'));
        if (!string.IsNullOrEmpty(dir)) IsRealDirectory(dir.Replace('\\', '/'));
        return path;
    }

    public ValueTask DeleteAsync(string key, CancellationToken ct = default)
    {
        try { File.Delete(WritablePathOf(key)); }
        catch (DirectoryNotFoundException) { } // absent, with its directory: not an error
        return ValueTask.CompletedTask;
    }

    public ValueTask<bool> MoveAsync(string fromKey, string toKey, CancellationToken ct = default)
    {
        var to = WritablePathOf(toKey);
        var from = WritablePathOf(fromKey);
        Directory.CreateDirectory(Path.GetDirectoryName(to)!);
        if (Files.FileKinds.Of(from, followLinks: false) is var kind && kind is not (Files.FileKind.Regular
            or Files.FileKind.Missing))
        {
            throw new HostileFileException(from, Files.FileKinds.Describe(kind));
        }
        try
        {
            File.Move(from, to, overwrite: true);
            return ValueTask.FromResult(true);
        }
        catch (FileNotFoundException) { return ValueTask.FromResult(false); }
        catch (DirectoryNotFoundException) { return ValueTask.FromResult(false); }
    }

    public void Dispose() => _safe.Dispose();

    public ValueTask FlushAsync(CancellationToken ct = default)
    {
        Native.SyncFileSystem(_root);
        return ValueTask.CompletedTask;
    }

    /// <summary>A temp file's name carries the writer's pid, so gc can tell a dead writer's leftovers.</summary>
    public static string TempPathFor(string path) =>
        $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}{TempSuffix}";

    private static string WriteTemp(string path, ReadOnlySpan<byte> data, bool durable)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var tmp = TempPathFor(path);
        using var handle = File.OpenHandle(
            tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, FileOptions.None, data.Length);
        RandomAccess.Write(handle, data, 0);
        if (durable) RandomAccess.FlushToDisk(handle);
        else Native.StartWriteback(handle);
        return tmp;
    }
}
