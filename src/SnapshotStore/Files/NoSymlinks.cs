using System.Text;
using Microsoft.Win32.SafeHandles;
using Snapshots.Store.Origin;

namespace Snapshots.Store.Files;

/// <summary>Opening a directory by a path no component of which is a symbolic link (openat2 RESOLVE_NO_SYMLINKS):
/// what the caller then does through the descriptor (mount on it, lock it) happens to that very directory, even
/// if the path is changed meanwhile.</summary>
public static class NoSymlinks
{
    /// <summary>The directory at <paramref name="absolutePath"/>, opened read-only; null with the errno when it
    /// cannot be (ELOOP: a component is a link; ENOENT; ENOTDIR; ENOSYS before Linux 5.6).</summary>
    public static SafeFileHandle? OpenDirectory(string absolutePath, out int errno)
    {
        ArgumentNullException.ThrowIfNull(absolutePath);
        int fd = Native.OpenAt2(Native.AT_FDCWD, Encoding.UTF8.GetBytes(absolutePath + "\0"),
            Native.O_RDONLY | Native.O_DIRECTORY | Native.O_CLOEXEC,
            Native.RESOLVE_NO_SYMLINKS | Native.RESOLVE_NO_MAGICLINKS, out errno);
        return fd < 0 ? null : new SafeFileHandle(fd, ownsHandle: true);
    }
}
