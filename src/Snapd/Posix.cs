using System.Runtime.InteropServices;

namespace Snapshots.Snapd;

/// <summary>The two calls snapd makes outside .NET: the file mode creation mask and a socket's owner.</summary>
internal static partial class Posix
{
    [LibraryImport("libc")]
    private static partial uint umask(uint mask);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int chown(string path, uint owner, uint group);

    /// <summary>umask 077: files and sockets snapd creates are owner-only from their first moment (Kestrel binds
    /// the API socket with the process's mask). Returns the mask before.</summary>
    public static uint OwnerOnlyMask() => umask(0x3F);

    /// <summary>Gives <paramref name="path"/> to <paramref name="uid"/> (its group unchanged); the errno, or 0.
    /// </summary>
    public static int GiveTo(string path, uint uid) =>
        chown(path, uid, uint.MaxValue) == 0 ? 0 : Marshal.GetLastPInvokeError();
}
