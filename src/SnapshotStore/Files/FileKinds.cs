using Snapshots.Store.Origin;

namespace Snapshots.Store.Files;

/// <summary>What a path names, told without opening it: opening a FIFO blocks until a writer comes, and writing
/// "over" a device or through a planted symlink damages something else.</summary>
public enum FileKind
{
    Missing,
    Regular,
    Directory,
    Symlink,
    Socket,
    Fifo,
    /// <summary>A device node or anything else that is not one of the above.</summary>
    Other,
}

public static class FileKinds
{
    /// <summary>The kind of <paramref name="path"/>; with <paramref name="followLinks"/> false a symlink is
    /// <see cref="FileKind.Symlink"/>, with true it is what it points at (Missing when dangling).</summary>
    public static unsafe FileKind Of(string path, bool followLinks)
    {
        ArgumentNullException.ThrowIfNull(path);
        Stat st;
        // SAFETY: st lives on this frame for the call; (l)stat writes at most sizeof(struct stat) into it.
        int rc = followLinks ? Native.stat(path, &st) : Native.lstat(path, &st);
        if (rc != 0) return FileKind.Missing;
        return FromMode(st.Mode);
    }

    /// <summary>The kind a struct stat's st_mode says.</summary>
    internal static FileKind FromMode(uint mode) => (mode & Native.S_IFMT) switch
    {
        Native.S_IFREG => FileKind.Regular,
        Native.S_IFDIR => FileKind.Directory,
        Native.S_IFLNK => FileKind.Symlink,
        Native.S_IFSOCK => FileKind.Socket,
        Native.S_IFIFO => FileKind.Fifo,
        _ => FileKind.Other,
    };

    /// <summary>Reads an open regular file of <paramref name="length"/> bytes (its size when opened): a file that
    /// shrank meanwhile yields what it has, one that grew is cut at that size.</summary>
    internal static byte[] ReadWhole(Microsoft.Win32.SafeHandles.SafeFileHandle handle, long length)
    {
        var bytes = new byte[length];
        int total = 0;
        while (total < bytes.Length)
        {
            int n = RandomAccess.Read(handle, bytes.AsSpan(total), total);
            if (n == 0) return bytes[..total];
            total += n;
        }
        return bytes;
    }

    /// <summary>The kind with its article, for messages: "a FIFO", "a device or other special file".</summary>
    /// <summary>The uid owning <paramref name="path"/> itself (a symlink is not followed); null when it cannot be
    /// stat'ed.</summary>
    public static unsafe uint? OwnerOf(string path)
    {
        Stat st;
        // SAFETY: st lives on this frame; lstat writes at most sizeof(struct stat) into it.
        return Native.lstat(path, &st) == 0 ? st.Uid : null;
    }

    /// <summary>This process's effective uid.</summary>
    public static uint EffectiveUid => Native.geteuid();

    public static string Describe(FileKind kind) => kind switch
    {
        FileKind.Missing => "missing",
        FileKind.Regular => "a regular file",
        FileKind.Directory => "a directory",
        FileKind.Symlink => "a symlink",
        FileKind.Socket => "a socket",
        FileKind.Fifo => "a FIFO",
        _ => "a device or other special file",
    };

    /// <summary>Checks that an input file is a regular file (after symlinks) before it is opened; otherwise an
    /// <see cref="InvalidInputException"/> naming it and <paramref name="parameter"/>.</summary>
    public static string RequireRegular(string path, string parameter)
    {
        var kind = Of(path, followLinks: true);
        return kind switch
        {
            FileKind.Regular => path,
            FileKind.Missing => throw new InvalidInputException($"{path} does not exist", parameter),
            FileKind.Directory => throw new InvalidInputException($"{path} is a directory, not a file", parameter),
            _ => throw new InvalidInputException($"{path} is {Describe(kind)}, not a regular file", parameter),
        };
    }
}
