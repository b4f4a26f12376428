using System.Diagnostics;
using System.Globalization;
using System.Numerics;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Snapshots.ChunkFs.Native;
using Snapshots.Store.Origin;

namespace Snapshots.Tests;

/// <summary>
/// The interop's hand-typed ABI (UffdAbi and the structs beside it, LibC, the store's Native) against the kernel
/// and libc headers as native/abi-probe compiles them on this machine. <see cref="Facts"/> is the explicit
/// table: the probe's name for a fact, the C# member that states it, and the C# value. A fact on one side only,
/// a value that differs, or a constant, struct or field the table forgot, fails.
/// </summary>
[Trait("Category", Category.Process)]
public sealed class UffdAbiTests
{
    /// <summary>One fact both sides state: the probe's line name, the C# member, the C# value.</summary>
    private sealed record Fact(string Probe, string Member, ulong Value);

    private static readonly Fact[] Facts =
    [
        Const("UFFDIO_API", UffdAbi.UFFDIO_API),
        Const("UFFDIO_REGISTER", UffdAbi.UFFDIO_REGISTER),
        Const("UFFDIO_UNREGISTER", UffdAbi.UFFDIO_UNREGISTER),
        Const("UFFDIO_WAKE", UffdAbi.UFFDIO_WAKE),
        Const("UFFDIO_COPY", UffdAbi.UFFDIO_COPY),
        Const("UFFDIO_ZEROPAGE", UffdAbi.UFFDIO_ZEROPAGE),
        Const("UFFD_API", UffdAbi.UFFD_API),
        Const("UFFD_FEATURE_EVENT_REMOVE", UffdAbi.UFFD_FEATURE_EVENT_REMOVE),
        Const("UFFDIO_REGISTER_MODE_MISSING", UffdAbi.UFFDIO_REGISTER_MODE_MISSING),
        Const("UFFDIO_COPY_MODE_DONTWAKE", UffdAbi.UFFDIO_COPY_MODE_DONTWAKE),
        Const("UFFD_EVENT_PAGEFAULT", UffdAbi.UFFD_EVENT_PAGEFAULT),
        Const("UFFD_EVENT_REMOVE", UffdAbi.UFFD_EVENT_REMOVE),
        Const("SYS_userfaultfd", LibC.SYS_userfaultfd),

        Size<UffdMsg>("uffd_msg"),
        .. Field<UffdMsg>("uffd_msg.event", nameof(UffdMsg.Event)),
        .. Field<UffdMsg>("uffd_msg.arg.pagefault.flags", nameof(UffdMsg.PagefaultFlags)),
        .. Field<UffdMsg>("uffd_msg.arg.pagefault.address", nameof(UffdMsg.PagefaultAddress)),
        .. Field<UffdMsg>("uffd_msg.arg.remove.start", nameof(UffdMsg.RemoveStart)),
        .. Field<UffdMsg>("uffd_msg.arg.remove.end", nameof(UffdMsg.RemoveEnd)),
        Size<UffdioRange>("uffdio_range"),
        .. Field<UffdioRange>("uffdio_range.start", nameof(UffdioRange.Start)),
        .. Field<UffdioRange>("uffdio_range.len", nameof(UffdioRange.Len)),
        Size<UffdioApi>("uffdio_api"),
        .. Field<UffdioApi>("uffdio_api.api", nameof(UffdioApi.Api)),
        .. Field<UffdioApi>("uffdio_api.features", nameof(UffdioApi.Features)),
        .. Field<UffdioApi>("uffdio_api.ioctls", nameof(UffdioApi.Ioctls)),
        Size<UffdioRegister>("uffdio_register"),
        .. Field<UffdioRegister>("uffdio_register.range", nameof(UffdioRegister.Range)),
        .. Field<UffdioRegister>("uffdio_register.mode", nameof(UffdioRegister.Mode)),
        .. Field<UffdioRegister>("uffdio_register.ioctls", nameof(UffdioRegister.Ioctls)),
        Size<UffdioCopy>("uffdio_copy"),
        .. Field<UffdioCopy>("uffdio_copy.dst", nameof(UffdioCopy.Dst)),
        .. Field<UffdioCopy>("uffdio_copy.src", nameof(UffdioCopy.Src)),
        .. Field<UffdioCopy>("uffdio_copy.len", nameof(UffdioCopy.Len)),
        .. Field<UffdioCopy>("uffdio_copy.mode", nameof(UffdioCopy.Mode)),
        .. Field<UffdioCopy>("uffdio_copy.copy", nameof(UffdioCopy.Copy)),
        Size<UffdioZeropage>("uffdio_zeropage"),
        .. Field<UffdioZeropage>("uffdio_zeropage.range", nameof(UffdioZeropage.Range)),
        .. Field<UffdioZeropage>("uffdio_zeropage.mode", nameof(UffdioZeropage.Mode)),
        .. Field<UffdioZeropage>("uffdio_zeropage.zeropage", nameof(UffdioZeropage.Zeropage)),

        Const("ENOENT", LibC.ENOENT),
        Const("ESRCH", LibC.ESRCH),
        Const("EINTR", LibC.EINTR),
        Const("EAGAIN", LibC.EAGAIN),
        Const("EEXIST", LibC.EEXIST),
        Const("EINVAL", LibC.EINVAL),
        Const("ENOMEM", LibC.ENOMEM),

        Const("POLLIN", LibC.POLLIN),
        Const("POLLERR", LibC.POLLERR),
        Const("POLLHUP", LibC.POLLHUP),
        Size<PollFd>("pollfd"),
        .. Field<PollFd>("pollfd.fd", nameof(PollFd.Fd)),
        .. Field<PollFd>("pollfd.events", nameof(PollFd.Events)),
        .. Field<PollFd>("pollfd.revents", nameof(PollFd.REvents)),
        Const("EPOLL_CLOEXEC", LibC.EPOLL_CLOEXEC),
        Const("EPOLL_CTL_ADD", LibC.EPOLL_CTL_ADD),
        Const("EPOLLIN", LibC.EPOLLIN),
        Const("EPOLLERR", LibC.EPOLLERR),
        Const("EPOLLHUP", LibC.EPOLLHUP),
        Size<EpollEvent>("epoll_event"),
        .. Field<EpollEvent>("epoll_event.events", nameof(EpollEvent.Events)),
        .. Field<EpollEvent>("epoll_event.data", nameof(EpollEvent.Data)),
        Const("EFD_CLOEXEC", LibC.EFD_CLOEXEC),
        Const("EFD_NONBLOCK", LibC.EFD_NONBLOCK),
        Const("SIGKILL", LibC.SIGKILL),
        Const("SYS_pidfd_open", LibC.SYS_pidfd_open),
        Const("SYS_pidfd_getfd", LibC.SYS_pidfd_getfd),
        Const("SYS_kcmp", LibC.SYS_kcmp),
        Const("KCMP_FILE", LibC.KCMP_FILE),
        Const("MAP_SHARED", LibC.MAP_SHARED),
        Const("EBADF", LibC.EBADF),
        Const("PROT_READ", LibC.PROT_READ),
        Const("PROT_WRITE", LibC.PROT_WRITE),
        Const("MAP_PRIVATE", LibC.MAP_PRIVATE),
        Const("MAP_ANONYMOUS", LibC.MAP_ANONYMOUS),
        Const("MADV_POPULATE_WRITE", LibC.MADV_POPULATE_WRITE),
        Const("PRIO_PROCESS", LibC.PRIO_PROCESS),

        Const("SOL_SOCKET", LibC.SOL_SOCKET),
        Const("SCM_RIGHTS", LibC.SCM_RIGHTS),
        Const("SO_PEERCRED", LibC.SO_PEERCRED),
        Const("MSG_CMSG_CLOEXEC", LibC.MSG_CMSG_CLOEXEC),
        Const("MSG_DONTWAIT", LibC.MSG_DONTWAIT),
        Const("CMSG_LEN(sizeof(int))", LibC.CMSG_LEN_FD),
        Const("CMSG_SPACE(sizeof(int))", LibC.CMSG_SPACE_FD),
        new("CMSG_DATA(cmsg)-cmsg", "sizeof(CmsgHdr)", (ulong)Unsafe.SizeOf<CmsgHdr>()),
        Size<IoVec>("iovec"),
        .. Field<IoVec>("iovec.iov_base", nameof(IoVec.Base)),
        .. Field<IoVec>("iovec.iov_len", nameof(IoVec.Len)),
        Size<MsgHdr>("msghdr"),
        .. Field<MsgHdr>("msghdr.msg_name", nameof(MsgHdr.Name)),
        .. Field<MsgHdr>("msghdr.msg_namelen", nameof(MsgHdr.NameLen)),
        .. Field<MsgHdr>("msghdr.msg_iov", nameof(MsgHdr.Iov)),
        .. Field<MsgHdr>("msghdr.msg_iovlen", nameof(MsgHdr.IovLen)),
        .. Field<MsgHdr>("msghdr.msg_control", nameof(MsgHdr.Control)),
        .. Field<MsgHdr>("msghdr.msg_controllen", nameof(MsgHdr.ControlLen)),
        .. Field<MsgHdr>("msghdr.msg_flags", nameof(MsgHdr.Flags)),
        Size<CmsgHdr>("cmsghdr"),
        .. Field<CmsgHdr>("cmsghdr.cmsg_len", nameof(CmsgHdr.Len)),
        .. Field<CmsgHdr>("cmsghdr.cmsg_level", nameof(CmsgHdr.Level)),
        .. Field<CmsgHdr>("cmsghdr.cmsg_type", nameof(CmsgHdr.Type)),
        Size<UCred>("ucred"),
        .. Field<UCred>("ucred.pid", nameof(UCred.Pid)),
        .. Field<UCred>("ucred.uid", nameof(UCred.Uid)),
        .. Field<UCred>("ucred.gid", nameof(UCred.Gid)),

        Const("O_RDONLY", Native.O_RDONLY),
        Const("O_DIRECTORY", Native.O_DIRECTORY),
        Const("O_CLOEXEC", Native.O_CLOEXEC),
        Const("O_CLOEXEC", LibC.O_CLOEXEC),
        Const("O_NONBLOCK", LibC.O_NONBLOCK),
        Const("SYNC_FILE_RANGE_WRITE", Native.SYNC_FILE_RANGE_WRITE),
        Const("SEEK_DATA", Native.SEEK_DATA),
        Const("SEEK_HOLE", Native.SEEK_HOLE),
        Const("S_IFMT", Native.S_IFMT),
        Const("S_IFSOCK", Native.S_IFSOCK),
        Const("S_IFREG", Native.S_IFREG),
        Const("S_IFLNK", Native.S_IFLNK),
        Const("S_IFDIR", Native.S_IFDIR),
        Const("S_IFIFO", Native.S_IFIFO),
        Size<Stat>("stat"),
        .. Field<Stat>("stat.st_mode", nameof(Stat.Mode)),
        .. Field<Stat>("stat.st_uid", nameof(Stat.Uid)),
        .. Field<Stat>("stat.st_size", nameof(Stat.Size)),
        Const("O_NOFOLLOW", Native.O_NOFOLLOW),
        Const("O_NONBLOCK", Native.O_NONBLOCK),
        Const("O_PATH", Native.O_PATH),
        Const("RESOLVE_NO_MAGICLINKS", Native.RESOLVE_NO_MAGICLINKS),
        Const("RESOLVE_NO_SYMLINKS", Native.RESOLVE_NO_SYMLINKS),
        Const("RESOLVE_BENEATH", Native.RESOLVE_BENEATH),
        Const("SYS_openat2", Native.SYS_openat2),
        new("AT_FDCWD + 1000", "Native.AT_FDCWD", (ulong)(Native.AT_FDCWD + 1000)),
        Size<OpenHow>("open_how"),
        .. Field<OpenHow>("open_how.flags", nameof(OpenHow.Flags)),
        .. Field<OpenHow>("open_how.mode", nameof(OpenHow.Mode)),
        .. Field<OpenHow>("open_how.resolve", nameof(OpenHow.Resolve)),
        Const("ENOENT", Native.ENOENT),
        Const("ENOTDIR", Native.ENOTDIR),
        Const("ELOOP", Native.ELOOP),
        Const("EXDEV", Native.EXDEV),
        Const("ENOSYS", Native.ENOSYS),
        Const("ENXIO", Native.ENXIO),
        Const("ESRCH", Native.ESRCH),
        Const("ENOTCONN", LibC.ENOTCONN),
        Const("ENODEV", LibC.ENODEV),
        Const("EIO", LibC.EIO),
        Const("EROFS", LibC.EROFS),
        Const("ENOSYS", LibC.ENOSYS),
        Const("EOPNOTSUPP", LibC.EOPNOTSUPP),
        Const("EBUSY", LibC.EBUSY),
        Const("EPERM", LibC.EPERM),
        Const("EACCES", LibC.EACCES),
        Const("EISDIR", LibC.EISDIR),
        Const("ENOTDIR", LibC.ENOTDIR),
        Const("O_RDWR", LibC.O_RDWR),
        Const("MS_NOSUID", LibC.MS_NOSUID),
        Const("MS_NODEV", LibC.MS_NODEV),
        Const("MNT_DETACH", LibC.MNT_DETACH),
        Const("EEXIST", Native.EEXIST),

        Const("FUSE_KERNEL_VERSION", FuseAbi.FUSE_KERNEL_VERSION),
        Const("FUSE_KERNEL_MINOR_VERSION", FuseAbi.FUSE_KERNEL_MINOR_VERSION),
        Const("FUSE_ROOT_ID", FuseAbi.FUSE_ROOT_ID),
        Const("FUSE_LOOKUP", FuseAbi.FUSE_LOOKUP),
        Const("FUSE_FORGET", FuseAbi.FUSE_FORGET),
        Const("FUSE_GETATTR", FuseAbi.FUSE_GETATTR),
        Const("FUSE_SETATTR", FuseAbi.FUSE_SETATTR),
        Const("FUSE_OPEN", FuseAbi.FUSE_OPEN),
        Const("FUSE_READ", FuseAbi.FUSE_READ),
        Const("FUSE_WRITE", FuseAbi.FUSE_WRITE),
        Const("FUSE_STATFS", FuseAbi.FUSE_STATFS),
        Const("FUSE_RELEASE", FuseAbi.FUSE_RELEASE),
        Const("FUSE_FSYNC", FuseAbi.FUSE_FSYNC),
        Const("FUSE_FLUSH", FuseAbi.FUSE_FLUSH),
        Const("FUSE_INIT", FuseAbi.FUSE_INIT),
        Const("FUSE_OPENDIR", FuseAbi.FUSE_OPENDIR),
        Const("FUSE_READDIR", FuseAbi.FUSE_READDIR),
        Const("FUSE_RELEASEDIR", FuseAbi.FUSE_RELEASEDIR),
        Const("FUSE_CREATE", FuseAbi.FUSE_CREATE),
        Const("FUSE_INTERRUPT", FuseAbi.FUSE_INTERRUPT),
        Const("FUSE_DESTROY", FuseAbi.FUSE_DESTROY),
        Const("FUSE_BATCH_FORGET", FuseAbi.FUSE_BATCH_FORGET),
        Const("FUSE_FALLOCATE", FuseAbi.FUSE_FALLOCATE),
        Const("FUSE_ASYNC_READ", FuseAbi.FUSE_ASYNC_READ),
        Const("FUSE_PARALLEL_DIROPS", FuseAbi.FUSE_PARALLEL_DIROPS),
        Const("FUSE_MAX_PAGES", FuseAbi.FUSE_MAX_PAGES),
        Const("FOPEN_KEEP_CACHE", FuseAbi.FOPEN_KEEP_CACHE),
        Const("FOPEN_CACHE_DIR", FuseAbi.FOPEN_CACHE_DIR),
        Const("FATTR_MODE", FuseAbi.FATTR_MODE),
        Const("FATTR_UID", FuseAbi.FATTR_UID),
        Const("FATTR_GID", FuseAbi.FATTR_GID),
        Const("FATTR_SIZE", FuseAbi.FATTR_SIZE),
        Const("FATTR_ATIME", FuseAbi.FATTR_ATIME),
        Const("FATTR_MTIME", FuseAbi.FATTR_MTIME),
        Const("FUSE_NOTIFY_INVAL_INODE", FuseAbi.FUSE_NOTIFY_INVAL_INODE),
        Const("FUSE_NOTIFY_STORE", FuseAbi.FUSE_NOTIFY_STORE),
        Const("FUSE_MIN_READ_BUFFER", FuseAbi.FUSE_MIN_READ_BUFFER),
        Const("FALLOC_FL_KEEP_SIZE", FuseAbi.FALLOC_FL_KEEP_SIZE),
        Const("FALLOC_FL_PUNCH_HOLE", FuseAbi.FALLOC_FL_PUNCH_HOLE),
        Size<FuseInHeader>("fuse_in_header"),
        .. Field<FuseInHeader>("fuse_in_header.len", nameof(FuseInHeader.Len)),
        .. Field<FuseInHeader>("fuse_in_header.opcode", nameof(FuseInHeader.Opcode)),
        .. Field<FuseInHeader>("fuse_in_header.unique", nameof(FuseInHeader.Unique)),
        .. Field<FuseInHeader>("fuse_in_header.nodeid", nameof(FuseInHeader.NodeId)),
        .. Field<FuseInHeader>("fuse_in_header.uid", nameof(FuseInHeader.Uid)),
        .. Field<FuseInHeader>("fuse_in_header.gid", nameof(FuseInHeader.Gid)),
        .. Field<FuseInHeader>("fuse_in_header.pid", nameof(FuseInHeader.Pid)),
        .. Field<FuseInHeader>("fuse_in_header.total_extlen", nameof(FuseInHeader.TotalExtLen)),
        .. Field<FuseInHeader>("fuse_in_header.padding", nameof(FuseInHeader.Padding)),
        Size<FuseOutHeader>("fuse_out_header"),
        .. Field<FuseOutHeader>("fuse_out_header.len", nameof(FuseOutHeader.Len)),
        .. Field<FuseOutHeader>("fuse_out_header.error", nameof(FuseOutHeader.Error)),
        .. Field<FuseOutHeader>("fuse_out_header.unique", nameof(FuseOutHeader.Unique)),
        Size<FuseInitIn>("fuse_init_in"),
        .. Field<FuseInitIn>("fuse_init_in.major", nameof(FuseInitIn.Major)),
        .. Field<FuseInitIn>("fuse_init_in.minor", nameof(FuseInitIn.Minor)),
        .. Field<FuseInitIn>("fuse_init_in.max_readahead", nameof(FuseInitIn.MaxReadahead)),
        .. Field<FuseInitIn>("fuse_init_in.flags", nameof(FuseInitIn.Flags)),
        .. Field<FuseInitIn>("fuse_init_in.flags2", nameof(FuseInitIn.Flags2)),
        .. Field<FuseInitIn>("fuse_init_in.unused", nameof(FuseInitIn.Unused)),
        Size<FuseInitOut>("fuse_init_out"),
        .. Field<FuseInitOut>("fuse_init_out.major", nameof(FuseInitOut.Major)),
        .. Field<FuseInitOut>("fuse_init_out.minor", nameof(FuseInitOut.Minor)),
        .. Field<FuseInitOut>("fuse_init_out.max_readahead", nameof(FuseInitOut.MaxReadahead)),
        .. Field<FuseInitOut>("fuse_init_out.flags", nameof(FuseInitOut.Flags)),
        .. Field<FuseInitOut>("fuse_init_out.max_background", nameof(FuseInitOut.MaxBackground)),
        .. Field<FuseInitOut>("fuse_init_out.congestion_threshold", nameof(FuseInitOut.CongestionThreshold)),
        .. Field<FuseInitOut>("fuse_init_out.max_write", nameof(FuseInitOut.MaxWrite)),
        .. Field<FuseInitOut>("fuse_init_out.time_gran", nameof(FuseInitOut.TimeGran)),
        .. Field<FuseInitOut>("fuse_init_out.max_pages", nameof(FuseInitOut.MaxPages)),
        .. Field<FuseInitOut>("fuse_init_out.map_alignment", nameof(FuseInitOut.MapAlignment)),
        .. Field<FuseInitOut>("fuse_init_out.flags2", nameof(FuseInitOut.Flags2)),
        .. Field<FuseInitOut>("fuse_init_out.unused", nameof(FuseInitOut.Unused)),
        Size<FuseAttr>("fuse_attr"),
        .. Field<FuseAttr>("fuse_attr.ino", nameof(FuseAttr.Ino)),
        .. Field<FuseAttr>("fuse_attr.size", nameof(FuseAttr.Size)),
        .. Field<FuseAttr>("fuse_attr.blocks", nameof(FuseAttr.Blocks)),
        .. Field<FuseAttr>("fuse_attr.atime", nameof(FuseAttr.Atime)),
        .. Field<FuseAttr>("fuse_attr.mtime", nameof(FuseAttr.Mtime)),
        .. Field<FuseAttr>("fuse_attr.ctime", nameof(FuseAttr.Ctime)),
        .. Field<FuseAttr>("fuse_attr.atimensec", nameof(FuseAttr.AtimeNsec)),
        .. Field<FuseAttr>("fuse_attr.mtimensec", nameof(FuseAttr.MtimeNsec)),
        .. Field<FuseAttr>("fuse_attr.ctimensec", nameof(FuseAttr.CtimeNsec)),
        .. Field<FuseAttr>("fuse_attr.mode", nameof(FuseAttr.Mode)),
        .. Field<FuseAttr>("fuse_attr.nlink", nameof(FuseAttr.Nlink)),
        .. Field<FuseAttr>("fuse_attr.uid", nameof(FuseAttr.Uid)),
        .. Field<FuseAttr>("fuse_attr.gid", nameof(FuseAttr.Gid)),
        .. Field<FuseAttr>("fuse_attr.rdev", nameof(FuseAttr.Rdev)),
        .. Field<FuseAttr>("fuse_attr.blksize", nameof(FuseAttr.Blksize)),
        .. Field<FuseAttr>("fuse_attr.flags", nameof(FuseAttr.Flags)),
        Size<FuseEntryOut>("fuse_entry_out"),
        .. Field<FuseEntryOut>("fuse_entry_out.nodeid", nameof(FuseEntryOut.NodeId)),
        .. Field<FuseEntryOut>("fuse_entry_out.generation", nameof(FuseEntryOut.Generation)),
        .. Field<FuseEntryOut>("fuse_entry_out.entry_valid", nameof(FuseEntryOut.EntryValid)),
        .. Field<FuseEntryOut>("fuse_entry_out.attr_valid", nameof(FuseEntryOut.AttrValid)),
        .. Field<FuseEntryOut>("fuse_entry_out.entry_valid_nsec", nameof(FuseEntryOut.EntryValidNsec)),
        .. Field<FuseEntryOut>("fuse_entry_out.attr_valid_nsec", nameof(FuseEntryOut.AttrValidNsec)),
        .. Field<FuseEntryOut>("fuse_entry_out.attr", nameof(FuseEntryOut.Attr)),
        Size<FuseAttrOut>("fuse_attr_out"),
        .. Field<FuseAttrOut>("fuse_attr_out.attr_valid", nameof(FuseAttrOut.AttrValid)),
        .. Field<FuseAttrOut>("fuse_attr_out.attr_valid_nsec", nameof(FuseAttrOut.AttrValidNsec)),
        .. Field<FuseAttrOut>("fuse_attr_out.dummy", nameof(FuseAttrOut.Dummy)),
        .. Field<FuseAttrOut>("fuse_attr_out.attr", nameof(FuseAttrOut.Attr)),
        Size<FuseSetattrIn>("fuse_setattr_in"),
        .. Field<FuseSetattrIn>("fuse_setattr_in.valid", nameof(FuseSetattrIn.Valid)),
        .. Field<FuseSetattrIn>("fuse_setattr_in.padding", nameof(FuseSetattrIn.Padding)),
        .. Field<FuseSetattrIn>("fuse_setattr_in.fh", nameof(FuseSetattrIn.Fh)),
        .. Field<FuseSetattrIn>("fuse_setattr_in.size", nameof(FuseSetattrIn.Size)),
        .. Field<FuseSetattrIn>("fuse_setattr_in.lock_owner", nameof(FuseSetattrIn.LockOwner)),
        .. Field<FuseSetattrIn>("fuse_setattr_in.atime", nameof(FuseSetattrIn.Atime)),
        .. Field<FuseSetattrIn>("fuse_setattr_in.mtime", nameof(FuseSetattrIn.Mtime)),
        .. Field<FuseSetattrIn>("fuse_setattr_in.ctime", nameof(FuseSetattrIn.Ctime)),
        .. Field<FuseSetattrIn>("fuse_setattr_in.atimensec", nameof(FuseSetattrIn.AtimeNsec)),
        .. Field<FuseSetattrIn>("fuse_setattr_in.mtimensec", nameof(FuseSetattrIn.MtimeNsec)),
        .. Field<FuseSetattrIn>("fuse_setattr_in.ctimensec", nameof(FuseSetattrIn.CtimeNsec)),
        .. Field<FuseSetattrIn>("fuse_setattr_in.mode", nameof(FuseSetattrIn.Mode)),
        .. Field<FuseSetattrIn>("fuse_setattr_in.unused4", nameof(FuseSetattrIn.Unused4)),
        .. Field<FuseSetattrIn>("fuse_setattr_in.uid", nameof(FuseSetattrIn.Uid)),
        .. Field<FuseSetattrIn>("fuse_setattr_in.gid", nameof(FuseSetattrIn.Gid)),
        .. Field<FuseSetattrIn>("fuse_setattr_in.unused5", nameof(FuseSetattrIn.Unused5)),
        Size<FuseOpenIn>("fuse_open_in"),
        .. Field<FuseOpenIn>("fuse_open_in.flags", nameof(FuseOpenIn.Flags)),
        .. Field<FuseOpenIn>("fuse_open_in.open_flags", nameof(FuseOpenIn.OpenFlags)),
        Size<FuseOpenOut>("fuse_open_out"),
        .. Field<FuseOpenOut>("fuse_open_out.fh", nameof(FuseOpenOut.Fh)),
        .. Field<FuseOpenOut>("fuse_open_out.open_flags", nameof(FuseOpenOut.OpenFlags)),
        .. Field<FuseOpenOut>("fuse_open_out.padding", nameof(FuseOpenOut.Padding)),
        Size<FuseReadIn>("fuse_read_in"),
        .. Field<FuseReadIn>("fuse_read_in.fh", nameof(FuseReadIn.Fh)),
        .. Field<FuseReadIn>("fuse_read_in.offset", nameof(FuseReadIn.Offset)),
        .. Field<FuseReadIn>("fuse_read_in.size", nameof(FuseReadIn.Size)),
        .. Field<FuseReadIn>("fuse_read_in.read_flags", nameof(FuseReadIn.ReadFlags)),
        .. Field<FuseReadIn>("fuse_read_in.lock_owner", nameof(FuseReadIn.LockOwner)),
        .. Field<FuseReadIn>("fuse_read_in.flags", nameof(FuseReadIn.Flags)),
        .. Field<FuseReadIn>("fuse_read_in.padding", nameof(FuseReadIn.Padding)),
        Size<FuseWriteIn>("fuse_write_in"),
        .. Field<FuseWriteIn>("fuse_write_in.fh", nameof(FuseWriteIn.Fh)),
        .. Field<FuseWriteIn>("fuse_write_in.offset", nameof(FuseWriteIn.Offset)),
        .. Field<FuseWriteIn>("fuse_write_in.size", nameof(FuseWriteIn.Size)),
        .. Field<FuseWriteIn>("fuse_write_in.write_flags", nameof(FuseWriteIn.WriteFlags)),
        .. Field<FuseWriteIn>("fuse_write_in.lock_owner", nameof(FuseWriteIn.LockOwner)),
        .. Field<FuseWriteIn>("fuse_write_in.flags", nameof(FuseWriteIn.Flags)),
        .. Field<FuseWriteIn>("fuse_write_in.padding", nameof(FuseWriteIn.Padding)),
        Size<FuseNotifyInvalInodeOut>("fuse_notify_inval_inode_out"),
        .. Field<FuseNotifyInvalInodeOut>("fuse_notify_inval_inode_out.ino", nameof(FuseNotifyInvalInodeOut.Ino)),
        .. Field<FuseNotifyInvalInodeOut>("fuse_notify_inval_inode_out.off", nameof(FuseNotifyInvalInodeOut.Off)),
        .. Field<FuseNotifyInvalInodeOut>("fuse_notify_inval_inode_out.len", nameof(FuseNotifyInvalInodeOut.Len)),
        Size<FuseFallocateIn>("fuse_fallocate_in"),
        .. Field<FuseFallocateIn>("fuse_fallocate_in.fh", nameof(FuseFallocateIn.Fh)),
        .. Field<FuseFallocateIn>("fuse_fallocate_in.offset", nameof(FuseFallocateIn.Offset)),
        .. Field<FuseFallocateIn>("fuse_fallocate_in.length", nameof(FuseFallocateIn.Length)),
        .. Field<FuseFallocateIn>("fuse_fallocate_in.mode", nameof(FuseFallocateIn.Mode)),
        .. Field<FuseFallocateIn>("fuse_fallocate_in.padding", nameof(FuseFallocateIn.Padding)),
        Size<FuseKstatfs>("fuse_kstatfs"),
        .. Field<FuseKstatfs>("fuse_kstatfs.blocks", nameof(FuseKstatfs.Blocks)),
        .. Field<FuseKstatfs>("fuse_kstatfs.bfree", nameof(FuseKstatfs.Bfree)),
        .. Field<FuseKstatfs>("fuse_kstatfs.bavail", nameof(FuseKstatfs.Bavail)),
        .. Field<FuseKstatfs>("fuse_kstatfs.files", nameof(FuseKstatfs.Files)),
        .. Field<FuseKstatfs>("fuse_kstatfs.ffree", nameof(FuseKstatfs.Ffree)),
        .. Field<FuseKstatfs>("fuse_kstatfs.bsize", nameof(FuseKstatfs.Bsize)),
        .. Field<FuseKstatfs>("fuse_kstatfs.namelen", nameof(FuseKstatfs.Namelen)),
        .. Field<FuseKstatfs>("fuse_kstatfs.frsize", nameof(FuseKstatfs.Frsize)),
        .. Field<FuseKstatfs>("fuse_kstatfs.padding", nameof(FuseKstatfs.Padding)),
        .. Field<FuseKstatfs>("fuse_kstatfs.spare", nameof(FuseKstatfs.Spare)),
        Size<FuseDirent>("fuse_dirent"),
        .. Field<FuseDirent>("fuse_dirent.ino", nameof(FuseDirent.Ino)),
        .. Field<FuseDirent>("fuse_dirent.off", nameof(FuseDirent.Off)),
        .. Field<FuseDirent>("fuse_dirent.namelen", nameof(FuseDirent.NameLen)),
        .. Field<FuseDirent>("fuse_dirent.type", nameof(FuseDirent.Type)),
        Size<FuseNotifyStoreOut>("fuse_notify_store_out"),
        .. Field<FuseNotifyStoreOut>("fuse_notify_store_out.nodeid", nameof(FuseNotifyStoreOut.NodeId)),
        .. Field<FuseNotifyStoreOut>("fuse_notify_store_out.offset", nameof(FuseNotifyStoreOut.Offset)),
        .. Field<FuseNotifyStoreOut>("fuse_notify_store_out.size", nameof(FuseNotifyStoreOut.Size)),
        .. Field<FuseNotifyStoreOut>("fuse_notify_store_out.padding", nameof(FuseNotifyStoreOut.Padding)),
    ];

    [Fact]
    public void The_probe_and_the_table_name_the_same_facts()
    {
        var probe = RunProbe();
        var table = Facts.Select(f => f.Probe).ToHashSet(StringComparer.Ordinal);
        var unmapped = probe.Keys.Where(name => !table.Contains(name)).ToList();
        var unprinted = table.Where(name => !probe.ContainsKey(name)).ToList();
        Assert.True(unmapped.Count == 0,
            $"abi-probe prints facts no C# member is mapped to (add them to Facts): {string.Join(", ", unmapped)}");
        Assert.True(unprinted.Count == 0,
            $"Facts checks names abi-probe does not print (add them to native/abi-probe/main.c): " +
            string.Join(", ", unprinted));
    }

    [Fact]
    public void Every_hand_typed_value_matches_the_kernel_headers()
    {
        var probe = RunProbe();
        Assert.True(Facts.Length > 100, "the table is the test: it should not be nearly empty");
        var wrong = Mismatches(Facts, probe);
        Assert.True(wrong.Count == 0, "hand-typed ABI differs from the headers:\n" + string.Join("\n", wrong));
    }

    [Fact]
    public void Every_hand_typed_constant_struct_and_field_is_in_the_table()
    {
        var members = Facts.Select(f => f.Member).ToHashSet(StringComparer.Ordinal);
        const BindingFlags Static = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static;
        const BindingFlags Instance = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance;
        var constants = new[] { typeof(UffdAbi), typeof(FuseAbi), typeof(LibC), typeof(Native) }
            .SelectMany(t => t.GetFields(Static).Where(f => f.IsLiteral).Select(f => $"{t.Name}.{f.Name}"));
        var structs = typeof(UffdAbi).Assembly.GetTypes()
            .Where(t => t.Namespace == typeof(UffdAbi).Namespace && t.IsValueType && !t.IsEnum)
            .Where(t => !t.IsDefined(typeof(CompilerGeneratedAttribute)))
            .ToList();
        var fields = structs.SelectMany(t => t.GetFields(Instance).Select(f => $"{t.Name}.{f.Name}"));
        Assert.True(structs.Count >= 12, $"found only {structs.Count} interop structs: is the namespace right?");
        var uncovered = constants.Concat(structs.Select(t => t.Name)).Concat(fields)
            .Where(m => !members.Contains(m)).ToList();
        Assert.True(uncovered.Count == 0,
            $"no abi-probe line checks these (add them to native/abi-probe/main.c and to Facts): " +
            string.Join(", ", uncovered));
    }

    [Fact]
    public void A_wrong_value_is_reported_with_both_numbers()
    {
        var probe = Parse("UFFDIO_COPY 3223890435\nsizeof:uffdio_copy 48\n");
        var facts = Facts.Where(f => f.Probe is "UFFDIO_COPY" or "sizeof:uffdio_copy").ToArray();
        var wrong = Assert.Single(Mismatches(facts, probe));
        Assert.Equal("UffdioCopy is 40 (0x28); the headers say 48 (0x30) [sizeof:uffdio_copy]", wrong);
    }

    [Theory]
    [InlineData("UFFD_API\n", "not 'NAME VALUE'")]
    [InlineData("UFFD_API 0xAA\n", "not 'NAME VALUE'")]
    [InlineData("UFFD_API 170\nUFFD_API 170\n", "twice")]
    public void A_malformed_probe_line_is_refused(string output, string expected)
    {
        Assert.Contains(expected, Assert.Throws<FormatException>(() => Parse(output)).Message);
    }

    private static Fact Const<T>(string probe, T value, [CallerArgumentExpression(nameof(value))] string member = "")
        where T : IBinaryInteger<T> => new(probe, member, ulong.CreateChecked(value));

    private static Fact Size<T>(string cStruct) => new($"sizeof:{cStruct}", typeof(T).Name, (ulong)Unsafe.SizeOf<T>());

    /// <summary>A field's offset and its own width (padding after a last field would hide a wrong width).</summary>
    private static Fact[] Field<T>(string cField, string field)
    {
        var info = typeof(T).GetField(field) ?? throw new ArgumentException($"{typeof(T).Name} has no field {field}");
        var member = $"{typeof(T).Name}.{field}";
        ulong width = (ulong)(info.FieldType.IsPointer ? IntPtr.Size : Marshal.SizeOf(info.FieldType));
        return
        [
            new($"offsetof:{cField}", member, (ulong)Marshal.OffsetOf<T>(field).ToInt64()),
            new($"sizeof:{cField}", member, width),
        ];
    }

    private static List<string> Mismatches(IEnumerable<Fact> facts, Dictionary<string, ulong> probe)
    {
        var wrong = new List<string>();
        foreach (var f in facts)
        {
            if (!probe.TryGetValue(f.Probe, out ulong c) || c == f.Value) continue;
            wrong.Add(string.Create(CultureInfo.InvariantCulture,
                $"{f.Member} is {f.Value} (0x{f.Value:X}); the headers say {c} (0x{c:X}) [{f.Probe}]"));
        }
        return wrong;
    }

    private static Dictionary<string, ulong> RunProbe()
    {
        var psi = new ProcessStartInfo(NativeBin.Find("abi-probe"))
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("abi-probe did not start");
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(10_000), "abi-probe did not exit within 10 s");
        Assert.True(p.ExitCode == 0, $"abi-probe exited {p.ExitCode}: {stderr.Result}");
        return Parse(stdout);
    }

    /// <summary>Lines of `NAME VALUE` (decimal; NAME may hold anything but a newline), each name once.</summary>
    private static Dictionary<string, ulong> Parse(string output)
    {
        var facts = new Dictionary<string, ulong>(StringComparer.Ordinal);
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            int space = line.LastIndexOf(' ');
            if (space <= 0 || !ulong.TryParse(line.AsSpan(space + 1), NumberStyles.None, CultureInfo.InvariantCulture,
                    out ulong value))
                throw new FormatException($"abi-probe printed a line that is not 'NAME VALUE': '{line}'");
            if (!facts.TryAdd(line[..space], value))
                throw new FormatException($"abi-probe printed '{line[..space]}' twice");
        }
        return facts;
    }
}
