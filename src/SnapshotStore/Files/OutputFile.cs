using Microsoft.Win32.SafeHandles;
using Snapshots.Store.Origin;

namespace Snapshots.Store.Files;

/// <summary>
/// An output file (an export, an access log, a plan, a generated image) written whole or not at all: the data
/// goes to a fresh temp file beside the target, created exclusively and owner-only (O_EXCL: a file or symlink
/// planted at that name fails the create), then <see cref="Commit"/> renames it over the target. A target that is
/// a symlink, a directory, a device, a FIFO or a socket is refused and left alone: the rename would replace a
/// symlink itself (never follow it), so `--out /dev/stdout` would silently swap the system's link for a regular
/// file. Dispose without Commit removes the temp file.
/// </summary>
public sealed class OutputFile : IDisposable
{
    private readonly FileStream _stream;
    private readonly string _temp;
    private readonly string _parameter;
    private bool _committed;

    private OutputFile(string target, string temp, FileStream stream, string parameter)
    {
        Path = target;
        _temp = temp;
        _stream = stream;
        _parameter = parameter;
    }

    /// <summary>The target's full path.</summary>
    public string Path { get; }

    /// <summary>The temp file's handle, for RandomAccess writes.</summary>
    public SafeFileHandle Handle => _stream.SafeFileHandle;

    /// <summary>Opens the temp file for <paramref name="path"/>; <see cref="InvalidInputException"/>s name
    /// <paramref name="parameter"/> when the directory is missing or the target is not a regular file.</summary>
    public static OutputFile Create(string path, string parameter)
    {
        var target = Check(path, parameter);
        RemoveStaleTemps(target);
        var temp = FileBlobStore.TempPathFor(target);
        var stream = new FileStream(temp, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.ReadWrite,
            Share = FileShare.None,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        return new OutputFile(target, temp, stream, parameter);
    }

    /// <summary>Checks, without writing anything, that <paramref name="path"/> can be written as an output file
    /// (its directory exists; nothing or a regular file is there, told by lstat: a symlink is refused, not
    /// followed); returns its full path. Lets a long operation refuse a bad output path before it starts rather than
    /// after.</summary>
    public static string Check(string path, string parameter)
    {
        ArgumentNullException.ThrowIfNull(path);
        var target = System.IO.Path.GetFullPath(path);
        var dir = System.IO.Path.GetDirectoryName(target)!;
        if (FileKinds.Of(dir, followLinks: true) != FileKind.Directory)
            throw new InvalidInputException($"output directory {dir} does not exist", parameter);
        RequireReplaceable(target, parameter);
        return target;
    }

    /// <summary>Refuses a target that is anything but missing or a regular file, without following a symlink.</summary>
    private static void RequireReplaceable(string target, string parameter)
    {
        var kind = FileKinds.Of(target, followLinks: false);
        if (kind is FileKind.Missing or FileKind.Regular) return;
        var what = kind == FileKind.Symlink
            ? $"{target} is a symlink; the output is not written through it and the link is left alone"
            : $"{target} exists and is {FileKinds.Describe(kind)}, not a regular file; it is left alone";
        throw new InvalidInputException(what, parameter);
    }

    /// <summary>How old a temp file of a live writer may look (its writer has not written for this long) before the
    /// next writer of the same target removes it anyway: a pid may be reused, or live in another namespace.</summary>
    public static readonly TimeSpan StaleAfter = TimeSpan.FromHours(1);

    /// <summary>Removes the temp files earlier writers of <paramref name="target"/> left when they were killed
    /// (TARGET.PID.GUID.tmp, ours, regular): those whose writer is gone, or that nobody has written for
    /// <see cref="StaleAfter"/>. A killed export would otherwise leave partial plaintext behind for good.</summary>
    private static void RemoveStaleTemps(string target)
    {
        var dir = System.IO.Path.GetDirectoryName(target)!;
        var prefix = System.IO.Path.GetFileName(target) + ".";
        IEnumerable<string> temps;
        try { temps = Directory.EnumerateFiles(dir, prefix + "*" + FileBlobStore.TempSuffix); }
        catch (IOException) { return; }
        catch (UnauthorizedAccessException) { return; }
        foreach (var temp in temps)
        {
            var middle = System.IO.Path.GetFileName(temp)[prefix.Length..^FileBlobStore.TempSuffix.Length];
            int dot = middle.IndexOf('.', StringComparison.Ordinal);
            if (dot <= 0 || !int.TryParse(middle.AsSpan(0, dot), out int pid) || pid == Environment.ProcessId)
                continue;
            if (FileKinds.Of(temp, followLinks: false) != FileKind.Regular) continue;
            if (!Native.TryOwnerAndMode(temp, out uint uid, out _) || uid != Native.geteuid()) continue;
            bool writerGone = Native.kill(pid, 0) != 0 && System.Runtime.InteropServices.Marshal.GetLastPInvokeError()
                == Native.ESRCH;
            try
            {
                if (writerGone || DateTime.UtcNow - File.GetLastWriteTimeUtc(temp) > StaleAfter) File.Delete(temp);
            }
            catch (IOException) { } // gone already, or busy: the next writer tries again
        }
    }

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/> whole or not at all.</summary>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes, string parameter)
    {
        using var file = Create(path, parameter);
        file._stream.Write(bytes);
        file.Commit();
    }

    /// <summary>Flushes the data to disk and renames the temp file over the target, checked again first (lstat):
    /// a symlink or special file that appeared there while the output was written is refused too.</summary>
    public void Commit()
    {
        _stream.Flush(flushToDisk: true);
        _stream.Dispose();
        // The check at Create is the one that matters: rename(2) never follows a link at the target, it replaces
        // the link itself, so nothing the link points at can be written through it. This second check narrows the
        // window in which a link planted during a long write would be replaced; it cannot close it (no rename
        // refuses a symlink target), and the worst a race can do is replace that planted link with our file.
        RequireReplaceable(Path, _parameter);
        File.Move(_temp, Path, overwrite: true);
        _committed = true;
    }

    public void Dispose()
    {
        _stream.Dispose();
        if (!_committed) File.Delete(_temp);
    }
}
