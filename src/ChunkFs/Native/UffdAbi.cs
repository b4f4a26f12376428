using System.Runtime.InteropServices;

namespace Snapshots.ChunkFs.Native;

/// <summary>
/// linux/userfaultfd.h (x86_64), typed by hand. native/abi-probe prints every constant here and the size and
/// field offsets of every struct in this file as the kernel headers define them; UffdAbiTests fails on any
/// value that differs, and on a constant or field added here that the probe does not print.
/// </summary>
internal static class UffdAbi
{
    public const ulong UFFDIO_API = 0xC018AA3F;
    public const ulong UFFDIO_REGISTER = 0xC020AA00;
    public const ulong UFFDIO_UNREGISTER = 0x8010AA01;
    public const ulong UFFDIO_WAKE = 0x8010AA02;
    public const ulong UFFDIO_COPY = 0xC028AA03;
    public const ulong UFFDIO_ZEROPAGE = 0xC020AA04;

    public const ulong UFFD_API = 0xAA;
    public const ulong UFFD_FEATURE_EVENT_REMOVE = 0x8;
    public const ulong UFFDIO_REGISTER_MODE_MISSING = 1;
    public const ulong UFFDIO_COPY_MODE_DONTWAKE = 1;

    public const byte UFFD_EVENT_PAGEFAULT = 0x12;
    public const byte UFFD_EVENT_REMOVE = 0x15;
}

/// <summary>struct uffd_msg: the event, then a union (arg) whose member depends on it.</summary>
[StructLayout(LayoutKind.Explicit, Size = 32)]
internal struct UffdMsg
{
    [FieldOffset(0)] public byte Event;
    [FieldOffset(8)] public ulong PagefaultFlags;   // arg.pagefault
    [FieldOffset(16)] public ulong PagefaultAddress;
    [FieldOffset(8)] public ulong RemoveStart;      // arg.remove, same bytes
    [FieldOffset(16)] public ulong RemoveEnd;
}

[StructLayout(LayoutKind.Sequential)]
internal struct UffdioRange { public ulong Start, Len; }

[StructLayout(LayoutKind.Sequential)]
internal struct UffdioApi { public ulong Api, Features, Ioctls; }

[StructLayout(LayoutKind.Sequential)]
internal struct UffdioRegister { public UffdioRange Range; public ulong Mode, Ioctls; }

[StructLayout(LayoutKind.Sequential)]
internal struct UffdioCopy { public ulong Dst, Src, Len, Mode; public long Copy; }

[StructLayout(LayoutKind.Sequential)]
internal struct UffdioZeropage { public UffdioRange Range; public ulong Mode; public long Zeropage; }

[StructLayout(LayoutKind.Sequential)]
internal struct PollFd { public int Fd; public short Events, REvents; }

/// <summary>struct epoll_event: packed on x86_64 (12 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 4)]
internal struct EpollEvent { public uint Events; public ulong Data; }

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct IoVec { public void* Base; public nuint Len; }

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct MsgHdr
{
    public void* Name;
    public uint NameLen;
    public IoVec* Iov;
    public nuint IovLen;
    public void* Control;
    public nuint ControlLen;
    public int Flags;
}

[StructLayout(LayoutKind.Sequential)]
internal struct CmsgHdr { public nuint Len; public int Level, Type; }

[StructLayout(LayoutKind.Sequential)]
internal struct UCred { public int Pid, Uid, Gid; }
