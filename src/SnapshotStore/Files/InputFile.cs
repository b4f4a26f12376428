using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Snapshots.Store.Origin;

namespace Snapshots.Store.Files;

/// <summary>
/// Reads a file a user named on the command line (an access log, a plan): symlinks are followed (the user chose
/// the path), but the open never blocks (O_NONBLOCK: a FIFO is refused, not waited on), and only a regular file
/// of at most the format's limit is read, both checked on the open descriptor before a byte is read. Anything
/// else is an <see cref="InvalidInputException"/> naming the path and the input.
/// </summary>
public static class InputFile
{
    public static unsafe byte[] ReadAll(string path, string parameter, int maxBytes)
    {
        ArgumentNullException.ThrowIfNull(path);
        int fd = Native.open(path, Native.O_RDONLY | Native.O_NONBLOCK | Native.O_CLOEXEC);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new InvalidInputException(errno == Native.ENOENT ? $"{path} does not exist"
                : errno == Native.ENXIO ? $"{path} is a socket or a device without a driver, not a regular file"
                : $"{path} cannot be opened (errno {errno})", parameter);
        }
        using var handle = new SafeFileHandle(fd, ownsHandle: true);
        Stat st;
        // SAFETY: st lives on this frame; fstat writes at most sizeof(struct stat) into it.
        if (Native.fstat(fd, &st) != 0)
            throw new InvalidInputException($"{path} cannot be examined (errno {Marshal.GetLastPInvokeError()})",
                parameter);
        var kind = FileKinds.FromMode(st.Mode);
        if (kind != FileKind.Regular)
            throw new InvalidInputException($"{path} is {FileKinds.Describe(kind)}, not a regular file", parameter);
        if (st.Size > maxBytes)
            throw new InvalidInputException($"{path} is {st.Size} bytes, over the {maxBytes}-byte limit", parameter);
        return FileKinds.ReadWhole(handle, st.Size);
    }
}
