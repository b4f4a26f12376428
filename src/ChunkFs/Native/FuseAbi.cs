using System.Runtime.InteropServices;

namespace Snapshots.ChunkFs.Native;

/// <summary>
/// linux/fuse.h (protocol 7.38, x86_64), typed by hand: the requests ChunkFs answers, the INIT and open flags it
/// sets, and the store notification it pushes. native/abi-probe prints each value and struct layout; UffdAbiTests
/// compares them.
/// </summary>
internal static class FuseAbi
{
    public const uint FUSE_KERNEL_VERSION = 7;
    public const uint FUSE_KERNEL_MINOR_VERSION = 38;
    public const ulong FUSE_ROOT_ID = 1;

    public const uint FUSE_LOOKUP = 1, FUSE_FORGET = 2, FUSE_GETATTR = 3, FUSE_SETATTR = 4, FUSE_OPEN = 14,
        FUSE_READ = 15, FUSE_WRITE = 16, FUSE_STATFS = 17, FUSE_RELEASE = 18, FUSE_FSYNC = 20, FUSE_FLUSH = 25,
        FUSE_INIT = 26, FUSE_OPENDIR = 27, FUSE_READDIR = 28, FUSE_RELEASEDIR = 29, FUSE_CREATE = 35,
        FUSE_INTERRUPT = 36, FUSE_DESTROY = 38, FUSE_BATCH_FORGET = 42, FUSE_FALLOCATE = 43;

    public const uint FUSE_ASYNC_READ = 1u << 0, FUSE_PARALLEL_DIROPS = 1u << 18, FUSE_MAX_PAGES = 1u << 22;
    public const uint FOPEN_KEEP_CACHE = 1u << 1, FOPEN_CACHE_DIR = 1u << 3;
    public const uint FATTR_MODE = 1u << 0, FATTR_UID = 1u << 1, FATTR_GID = 1u << 2, FATTR_SIZE = 1u << 3,
        FATTR_ATIME = 1u << 4, FATTR_MTIME = 1u << 5;
    public const int FUSE_NOTIFY_INVAL_INODE = 2, FUSE_NOTIFY_STORE = 4;
    public const int FUSE_MIN_READ_BUFFER = 8192;
    public const int FALLOC_FL_KEEP_SIZE = 1, FALLOC_FL_PUNCH_HOLE = 2;
}

[StructLayout(LayoutKind.Sequential)]
internal struct FuseInHeader
{
    public uint Len, Opcode;
    public ulong Unique, NodeId;
    public uint Uid, Gid, Pid;
    public ushort TotalExtLen, Padding;
}

[StructLayout(LayoutKind.Sequential)]
internal struct FuseOutHeader
{
    public uint Len;
    public int Error;
    public ulong Unique;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct FuseInitIn
{
    public uint Major, Minor, MaxReadahead, Flags, Flags2;
    public fixed uint Unused[11];
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct FuseInitOut
{
    public uint Major, Minor, MaxReadahead, Flags;
    public ushort MaxBackground, CongestionThreshold;
    public uint MaxWrite, TimeGran;
    public ushort MaxPages, MapAlignment;
    public uint Flags2;
    public fixed uint Unused[7];
}

[StructLayout(LayoutKind.Sequential)]
internal struct FuseAttr
{
    public ulong Ino, Size, Blocks, Atime, Mtime, Ctime;
    public uint AtimeNsec, MtimeNsec, CtimeNsec, Mode, Nlink, Uid, Gid, Rdev, Blksize, Flags;
}

[StructLayout(LayoutKind.Sequential)]
internal struct FuseEntryOut
{
    public ulong NodeId, Generation, EntryValid, AttrValid;
    public uint EntryValidNsec, AttrValidNsec;
    public FuseAttr Attr;
}

[StructLayout(LayoutKind.Sequential)]
internal struct FuseAttrOut
{
    public ulong AttrValid;
    public uint AttrValidNsec, Dummy;
    public FuseAttr Attr;
}

[StructLayout(LayoutKind.Sequential)]
internal struct FuseSetattrIn
{
    public uint Valid, Padding;
    public ulong Fh, Size, LockOwner, Atime, Mtime, Ctime;
    public uint AtimeNsec, MtimeNsec, CtimeNsec, Mode, Unused4, Uid, Gid, Unused5;
}

[StructLayout(LayoutKind.Sequential)]
internal struct FuseOpenIn
{
    public uint Flags, OpenFlags;
}

[StructLayout(LayoutKind.Sequential)]
internal struct FuseOpenOut
{
    public ulong Fh;
    public uint OpenFlags, Padding;
}

[StructLayout(LayoutKind.Sequential)]
internal struct FuseReadIn
{
    public ulong Fh, Offset;
    public uint Size, ReadFlags;
    public ulong LockOwner;
    public uint Flags, Padding;
}

[StructLayout(LayoutKind.Sequential)]
internal struct FuseWriteIn
{
    public ulong Fh, Offset;
    public uint Size, WriteFlags;
    public ulong LockOwner;
    public uint Flags, Padding;
}

[StructLayout(LayoutKind.Sequential)]
internal struct FuseFallocateIn
{
    public ulong Fh, Offset, Length;
    public uint Mode, Padding;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct FuseKstatfs
{
    public ulong Blocks, Bfree, Bavail, Files, Ffree;
    public uint Bsize, Namelen, Frsize, Padding;
    public fixed uint Spare[6];
}

/// <summary>struct fuse_dirent without its name, which follows it, padded to 8 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct FuseDirent
{
    public ulong Ino, Off;
    public uint NameLen, Type;
}

[StructLayout(LayoutKind.Sequential)]
internal struct FuseNotifyStoreOut
{
    public ulong NodeId, Offset;
    public uint Size, Padding;
}

[StructLayout(LayoutKind.Sequential)]
internal struct FuseNotifyInvalInodeOut
{
    public ulong Ino;
    public long Off, Len;
}
