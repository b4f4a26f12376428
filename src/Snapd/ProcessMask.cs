using System.Runtime.InteropServices;

namespace Snapshots.Snapd;

/// <summary>The process's file mode creation mask.</summary>
internal static partial class ProcessMask
{
    [LibraryImport("libc")]
    private static partial uint umask(uint mask);

    /// <summary>umask 077: files and sockets snapd creates are owner-only from their first moment (Kestrel binds
    /// the API socket with the process's mask). Returns the mask before.</summary>
    public static uint OwnerOnly() => umask(0x3F);
}
