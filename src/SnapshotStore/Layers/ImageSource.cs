using Microsoft.Win32.SafeHandles;
using Snapshots.Store.Chunks;

namespace Snapshots.Store.Layers;

/// <summary>
/// The bytes a layer is built from: a raw memory file, or an image assembled in memory (a working-set pack).
/// </summary>
public interface IImageSource : IDisposable
{
    string Describe { get; }
    long Size { get; }

    /// <summary>
    /// Fills <paramref name="destination"/> from <paramref name="offset"/>, or throws naming the source.
    /// </summary>
    void Read(long offset, Span<byte> destination);

    /// <summary>The first byte offset at or after <paramref name="offset"/> that holds data, or
    /// <see cref="Size"/> when only holes follow (lseek SEEK_DATA). A source without holes returns
    /// <paramref name="offset"/>: every byte is data.</summary>
    long NextData(long offset) => offset;

    /// <summary>The first byte offset at or after <paramref name="offset"/> that is in a hole, or
    /// <see cref="Size"/> when data runs to the end (lseek SEEK_HOLE; the end of the file counts as a hole).
    /// </summary>
    long NextHole(long offset) => Size;

    /// <summary>Throws <see cref="InvalidInputException"/> naming the source when it changed since it was opened:
    /// a memory file written to during the build would be published torn. Called before the manifest is.</summary>
    void CheckUnchanged();
}

/// <summary>A raw guest memory file (no header), checked before the build starts: it exists, is not empty, and
/// is a whole number of 4 KiB pages (anything else is a truncated file).</summary>
public sealed class FileImageSource : IImageSource
{
    private readonly SafeFileHandle _file;

    public FileImageSource(string path)
    {
        if (Files.FileKinds.Of(path, followLinks: true) == Files.FileKind.Missing)
            throw new InvalidInputException($"memory file {path} does not exist", "memory");
        Files.FileKinds.RequireRegular(path, "memory"); // a directory or a FIFO is named, not opened
        Describe = $"memory file {path}";
        // Opened first, then measured from the open file, never from the path: the size and last write of exactly
        // what is read. An input is only read, so a symlink is followed like any reader follows it (log merge and
        // attach do too); the path's own size would be the link's (lstat: "8 bytes, not a whole number of pages").
        _file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, FileOptions.SequentialScan);
        try
        {
            long size = RandomAccess.GetLength(_file);
            if (size == 0) throw new InvalidInputException($"memory file {path} is empty", "memory");
            if (size % ChunkGeometry.PageSize != 0)
            {
                throw new InvalidInputException(
                    $"memory file {path} is {size} bytes, not a whole number of 4 KiB pages (truncated?)", "memory");
            }
            if (size > ChunkGeometry.MaxImageSize)
                throw new InvalidInputException($"memory file {path} is over the 1 TiB limit", "memory");
            Size = size;
            _written = File.GetLastWriteTimeUtc(_file);
        }
        catch
        {
            _file.Dispose();
            throw;
        }
    }

    private readonly DateTime _written;

    public void CheckUnchanged()
    {
        if (RandomAccess.GetLength(_file) != Size || File.GetLastWriteTimeUtc(_file) != _written)
        {
            throw new InvalidInputException(
                $"{Describe} was written to during the build (its size or modification time changed): nothing was "
                    + "published; build again from a memory file nobody is writing", "memory");
        }
    }

    public string Describe { get; }
    public long Size { get; }

    public long NextData(long offset) => Seek(offset, Origin.Native.SEEK_DATA);

    public long NextHole(long offset) => Seek(offset, Origin.Native.SEEK_HOLE);

    /// <summary>lseek SEEK_DATA/SEEK_HOLE, clamped to <see cref="Size"/>. ENXIO (no data at or after the offset)
    /// is the end; a file system that cannot say (EINVAL, old kernels) is all data, so it is read whole.</summary>
    private long Seek(long offset, int whence)
    {
        if (offset >= Size) return Size;
        long at = Origin.Native.lseek(_file, offset, whence);
        if (at < 0)
        {
            int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            if (errno == Origin.Native.ENXIO) return Size;
            return whence == Origin.Native.SEEK_DATA ? offset : Size;
        }
        return Math.Min(at, Size);
    }

    public void Read(long offset, Span<byte> destination)
    {
        int total = 0;
        while (total < destination.Length)
        {
            int n = RandomAccess.Read(_file, destination[total..], offset + total);
            if (n == 0)
                throw new InvalidInputException(
                    $"{Describe} ended at byte {offset + total}: it was truncated during the build");
            total += n;
        }
    }

    public void Dispose() => _file.Dispose();
}

/// <summary>An image held in memory.</summary>
public sealed class MemoryImageSource(byte[] bytes, string describe) : IImageSource
{
    public string Describe { get; } = describe;
    public long Size => bytes.LongLength;
    public void Read(long offset, Span<byte> destination) =>
        bytes.AsSpan((int)offset, destination.Length).CopyTo(destination);
    public void CheckUnchanged() { } // nobody else holds the array
    public void Dispose() { }
}
