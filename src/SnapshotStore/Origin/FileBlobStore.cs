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
            if (!create) throw new InvalidInputException($"store directory {_root} does not exist", "store");
            Directory.CreateDirectory(_root);
        }
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
        var path = PathOf(key);
        var existing = new FileInfo(path);
        // Same name, same bytes, by construction; the size check catches the one way a stored object can be
        // wrong without anyone writing it wrong: a power loss before the flush, which leaves files short or empty.
        if (existing.Exists && existing.Length == data.Length) return ValueTask.FromResult(false);
        bool replace = existing.Exists;
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
        var path = PathOf(key);
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

    public async ValueTask AppendAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct = default)
    {
        var path = PathOf(key);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        await using var fs = new FileStream(
            path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
        await fs.WriteAsync(data, ct);
    }

    public async IAsyncEnumerable<BlobInfo> ListAsync(
        string prefix, [EnumeratorCancellation] CancellationToken ct = default)
    {
        await Task.CompletedTask;
        // The prefix is a directory path ("chunks/", "manifests/"); list files below it, recursively.
        var dir = Path.Combine(_root, prefix.TrimEnd('/'));
        if (!Directory.Exists(dir)) yield break;
        var options = new EnumerationOptions
        {
            RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = 0,
        };
        foreach (var file in new DirectoryInfo(dir).EnumerateFiles("*", options))
        {
            ct.ThrowIfCancellationRequested();
            FileInfo f = file;
            long size;
            DateTimeOffset modified;
            try { size = f.Length; modified = f.LastWriteTimeUtc; }
            catch (FileNotFoundException) { continue; }
            var rel = Path.GetRelativePath(_root, f.FullName).Replace('\\', '/');
            yield return new BlobInfo(rel, size, modified);
        }
    }

    public ValueTask DeleteAsync(string key, CancellationToken ct = default)
    {
        try { File.Delete(PathOf(key)); }
        catch (DirectoryNotFoundException) { } // absent, with its directory: not an error
        return ValueTask.CompletedTask;
    }

    public ValueTask<bool> MoveAsync(string fromKey, string toKey, CancellationToken ct = default)
    {
        var to = PathOf(toKey);
        Directory.CreateDirectory(Path.GetDirectoryName(to)!);
        try
        {
            File.Move(PathOf(fromKey), to, overwrite: true);
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
