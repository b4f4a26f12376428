using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Snapshots.Store.Origin;

namespace Snapshots.Store.Files;

/// <summary>Opening a directory by a path no component of which is a symbolic link (openat2 RESOLVE_NO_SYMLINKS):
/// what the caller then does through the descriptor (mount on it, lock it) happens to that very directory, even
/// if the path is changed meanwhile.</summary>
public static class NoSymlinks
{
    private const int AT_FDCWD = -100;

    /// <summary>The directory at <paramref name="absolutePath"/>, opened read-only; null with the errno when it
    /// cannot be (ELOOP: a component is a link; ENOENT; ENOTDIR; ENOSYS before Linux 5.6).</summary>
    public static unsafe SafeFileHandle? OpenDirectory(string absolutePath, out int errno)
    {
        ArgumentNullException.ThrowIfNull(absolutePath);
        var how = new OpenHow
        {
            Flags = (ulong)(Native.O_RDONLY | Native.O_DIRECTORY | Native.O_CLOEXEC),
            Resolve = Native.RESOLVE_NO_SYMLINKS | Native.RESOLVE_NO_MAGICLINKS,
        };
        var path = Encoding.UTF8.GetBytes(absolutePath + "\0");
        fixed (byte* p = path)
        {
            // SAFETY: p is NUL-terminated and pinned; how lives on this frame; the kernel copies both.
            long fd = Native.syscall(Native.SYS_openat2, AT_FDCWD, p, &how, (nuint)sizeof(OpenHow));
            errno = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
            return fd < 0 ? null : new SafeFileHandle((nint)fd, ownsHandle: true);
        }
    }
}
