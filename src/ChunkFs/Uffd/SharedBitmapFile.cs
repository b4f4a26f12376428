using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Snapshots.Store;
using static Snapshots.ChunkFs.Native.LibC;

namespace Snapshots.ChunkFs.Uffd;

/// <summary>
/// A small file mapped MAP_SHARED, read and written as plain memory: stores go straight to the page cache, so
/// they survive the process's SIGKILL with no syscall per write (not a host crash: nothing is fsynced, and the VMs
/// it describes would not survive that either). Created and sized on first use; reused as it is when it exists
/// with the expected size; refused otherwise. Open by one mapping at a time: the descriptor stays open, exclusively
/// locked (flock, by .NET's FileShare.None), until the mapping is released, so a second live handler of the same
/// VM is refused while a dead one's lock is gone with it.
/// </summary>
internal sealed unsafe class SharedBitmapFile : SafeHandleZeroOrMinusOneIsInvalid
{
    private readonly long _length;
    private readonly SafeFileHandle _file;

    private SharedBitmapFile(nint address, long length, SafeFileHandle file) : base(ownsHandle: true)
    {
        _length = length;
        _file = file;
        SetHandle(address);
    }

    public nint Address => handle;

    /// <summary>Maps <paramref name="path"/>, <paramref name="length"/> bytes. A missing or empty file is created
    /// and sized (all zeros); a file of another size, or one that is not a regular file, is refused with
    /// <see cref="InvalidInputException"/> naming the path and what is wrong, and left alone.</summary>
    public static SharedBitmapFile Open(string path, long length)
    {
        // Checked before opening: opening a FIFO would block.
        var kind = Store.Files.FileKinds.Of(path, followLinks: true);
        if (kind is not (Store.Files.FileKind.Missing or Store.Files.FileKind.Regular))
            throw Refused(path, $"is {Store.Files.FileKinds.Describe(kind)}, not a regular file");
        SafeFileHandle file;
        try
        {
            file = File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw Refused(path, $"cannot be opened for reading and writing, nor locked: another live handler may "
                + $"hold it, and one VM has one handler ({ex.Message})");
        }
        try
        {
            long size = RandomAccess.GetLength(file);
            // Empty: created just now, or by a handler that died before sizing it (it had recorded nothing).
            if (size == 0) RandomAccess.SetLength(file, length);
            else if (size != length)
            {
                throw Refused(path, $"is {size} bytes, not the {length} this memory's removed-page bitmap takes "
                    + "(another VM's, or another snapshot's); it is left alone");
            }
            // SAFETY: a fresh mapping of length bytes; the kernel picks the address.
            void* at = mmap(null, (nuint)length, PROT_READ | PROT_WRITE, MAP_SHARED,
                (int)file.DangerousGetHandle(), 0);
            if (at == (void*)-1)
                throw Refused(path, $"cannot be mapped: {StrError(Marshal.GetLastPInvokeError())}");
            return new SharedBitmapFile((nint)at, length, file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static InvalidInputException Refused(string path, string why) =>
        new($"removed-pages file {path} {why}", "removed-pages");

    protected override bool ReleaseHandle()
    {
        bool unmapped = munmap((void*)handle, (nuint)_length) == 0;
        _file.Dispose(); // and with it the lock
        return unmapped;
    }
}
