/* abi-probe: prints the kernel and libc ABI facts that the C# interop declares by hand
 * (src/ChunkFs/Native/UffdAbi.cs, FuseAbi.cs, LibC.cs; src/SnapshotStore/Origin/Native.cs), as compiled here, so a test
 * (tests/Snapshots.Tests/UffdAbiTests.cs) can compare them value by value. One fact per line, all values in
 * decimal:
 *   NAME VALUE                  a constant (ioctl number, flag, errno, syscall number)
 *   sizeof:STRUCT N             sizeof(struct STRUCT)
 *   offsetof:STRUCT.FIELD N     offsetof(struct STRUCT, FIELD), FIELD as spelled in the header
 *   sizeof:STRUCT.FIELD N       the field's own size (padding after a last field would hide a wrong width)
 * Add a line here when the C# side gains a constant or a struct; the test fails on a line it cannot map and
 * on a C# constant or field no line covers. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fuse.h>
#include <linux/kcmp.h>
#include <linux/openat2.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

/* #name is the name as written, not its expansion; the value is widened, never truncated (all are >= 0). */
#define CONST(name) printf("%s %llu\n", #name, (unsigned long long)(name))
#define SIZE(s) printf("sizeof:%s %zu\n", #s, sizeof(struct s))
#define FIELD(s, f) (printf("offsetof:%s.%s %zu\n", #s, #f, offsetof(struct s, f)), \
                     printf("sizeof:%s.%s %zu\n", #s, #f, sizeof(((struct s *)0)->f)))

static void uffd(void)
{
    CONST(UFFDIO_API);
    CONST(UFFDIO_REGISTER);
    CONST(UFFDIO_UNREGISTER);
    CONST(UFFDIO_WAKE);
    CONST(UFFDIO_COPY);
    CONST(UFFDIO_ZEROPAGE);
    CONST(UFFD_API);
    CONST(UFFD_FEATURE_EVENT_REMOVE);
    CONST(UFFDIO_REGISTER_MODE_MISSING);
    CONST(UFFDIO_COPY_MODE_DONTWAKE);
    CONST(UFFD_EVENT_PAGEFAULT);
    CONST(UFFD_EVENT_REMOVE);
    CONST(SYS_userfaultfd);

    SIZE(uffd_msg);
    FIELD(uffd_msg, event);
    FIELD(uffd_msg, arg.pagefault.flags);
    FIELD(uffd_msg, arg.pagefault.address);
    FIELD(uffd_msg, arg.remove.start);
    FIELD(uffd_msg, arg.remove.end);
    SIZE(uffdio_range);
    FIELD(uffdio_range, start);
    FIELD(uffdio_range, len);
    SIZE(uffdio_api);
    FIELD(uffdio_api, api);
    FIELD(uffdio_api, features);
    FIELD(uffdio_api, ioctls);
    SIZE(uffdio_register);
    FIELD(uffdio_register, range);
    FIELD(uffdio_register, mode);
    FIELD(uffdio_register, ioctls);
    SIZE(uffdio_copy);
    FIELD(uffdio_copy, dst);
    FIELD(uffdio_copy, src);
    FIELD(uffdio_copy, len);
    FIELD(uffdio_copy, mode);
    FIELD(uffdio_copy, copy);
    SIZE(uffdio_zeropage);
    FIELD(uffdio_zeropage, range);
    FIELD(uffdio_zeropage, mode);
    FIELD(uffdio_zeropage, zeropage);
}

static void errnos(void)
{
    CONST(ENOENT);
    CONST(ESRCH);
    CONST(EINTR);
    CONST(EAGAIN);
    CONST(EEXIST);
    CONST(EINVAL);
    CONST(ENOMEM);
    CONST(ENOTDIR);
    CONST(ELOOP);
    CONST(EXDEV);
    CONST(ENOSYS);
    CONST(ENXIO);
    CONST(ENOTCONN);
    CONST(ENODEV);
    CONST(EIO);
    CONST(EROFS);
    CONST(EOPNOTSUPP);
    CONST(EBUSY);
    CONST(EPERM);
    CONST(EACCES);
    CONST(EISDIR);
    CONST(EBADF);
}

static void events(void)
{
    CONST(POLLIN);
    CONST(POLLERR);
    CONST(POLLHUP);
    SIZE(pollfd);
    FIELD(pollfd, fd);
    FIELD(pollfd, events);
    FIELD(pollfd, revents);

    CONST(EPOLL_CLOEXEC);
    CONST(EPOLL_CTL_ADD);
    CONST(EPOLLIN);
    CONST(EPOLLERR);
    CONST(EPOLLHUP);
    SIZE(epoll_event);
    FIELD(epoll_event, events);
    FIELD(epoll_event, data);

    CONST(EFD_CLOEXEC);
    CONST(EFD_NONBLOCK);
    CONST(SIGKILL);
    CONST(SYS_pidfd_open);
    CONST(SYS_pidfd_getfd);
    CONST(SYS_kcmp);
    CONST(KCMP_FILE);
    CONST(MAP_SHARED);
    CONST(PROT_READ);
    CONST(PROT_WRITE);
    CONST(MAP_PRIVATE);
    CONST(MAP_ANONYMOUS);
    CONST(MADV_POPULATE_WRITE);
    CONST(PRIO_PROCESS);
}

static void sockets(void)
{
    CONST(SOL_SOCKET);
    CONST(SCM_RIGHTS);
    CONST(SO_PEERCRED);
    CONST(MSG_CMSG_CLOEXEC);
    CONST(MSG_DONTWAIT);
    /* One descriptor's control message: its cmsg_len, and the control buffer it needs. */
    CONST(CMSG_LEN(sizeof(int)));
    CONST(CMSG_SPACE(sizeof(int)));
    /* Where the descriptor starts after the header: the C# side reads it at sizeof(CmsgHdr). */
    struct cmsghdr h;
    printf("CMSG_DATA(cmsg)-cmsg %zu\n", (size_t)((unsigned char *)CMSG_DATA(&h) - (unsigned char *)&h));

    SIZE(iovec);
    FIELD(iovec, iov_base);
    FIELD(iovec, iov_len);
    SIZE(msghdr);
    FIELD(msghdr, msg_name);
    FIELD(msghdr, msg_namelen);
    FIELD(msghdr, msg_iov);
    FIELD(msghdr, msg_iovlen);
    FIELD(msghdr, msg_control);
    FIELD(msghdr, msg_controllen);
    FIELD(msghdr, msg_flags);
    SIZE(cmsghdr);
    FIELD(cmsghdr, cmsg_len);
    FIELD(cmsghdr, cmsg_level);
    FIELD(cmsghdr, cmsg_type);
    SIZE(ucred);
    FIELD(ucred, pid);
    FIELD(ucred, uid);
    FIELD(ucred, gid);
}

static void files(void)
{
    CONST(O_RDONLY);
    CONST(O_DIRECTORY);
    CONST(O_CLOEXEC);
    CONST(O_NONBLOCK);
    CONST(O_RDWR);
    CONST(MS_NOSUID);
    CONST(MS_NODEV);
    CONST(MNT_DETACH);
    CONST(SYNC_FILE_RANGE_WRITE);
    CONST(SEEK_DATA);
    CONST(SEEK_HOLE);
    CONST(S_IFMT);
    CONST(S_IFSOCK);
    CONST(S_IFREG);
    CONST(S_IFLNK);
    CONST(S_IFDIR);
    CONST(S_IFIFO);
    SIZE(stat);
    FIELD(stat, st_mode);
    FIELD(stat, st_uid);
    FIELD(stat, st_size);
    CONST(O_NOFOLLOW);
    CONST(O_PATH);
    CONST(RESOLVE_NO_MAGICLINKS);
    CONST(RESOLVE_NO_SYMLINKS);
    CONST(RESOLVE_BENEATH);
    CONST(SYS_openat2);
    CONST(AT_FDCWD + 1000); /* negative: printed offset by 1000 (values are printed unsigned) */
    SIZE(open_how);
    FIELD(open_how, flags);
    FIELD(open_how, mode);
    FIELD(open_how, resolve);
}

/* The FUSE protocol ChunkFs speaks over /dev/fuse (src/ChunkFs/Native/FuseAbi.cs). */
static void fuse(void)
{
    CONST(FUSE_KERNEL_VERSION);
    CONST(FUSE_KERNEL_MINOR_VERSION);
    CONST(FUSE_ROOT_ID);
    CONST(FUSE_LOOKUP);
    CONST(FUSE_FORGET);
    CONST(FUSE_GETATTR);
    CONST(FUSE_SETATTR);
    CONST(FUSE_OPEN);
    CONST(FUSE_READ);
    CONST(FUSE_WRITE);
    CONST(FUSE_STATFS);
    CONST(FUSE_RELEASE);
    CONST(FUSE_FSYNC);
    CONST(FUSE_FLUSH);
    CONST(FUSE_INIT);
    CONST(FUSE_OPENDIR);
    CONST(FUSE_READDIR);
    CONST(FUSE_RELEASEDIR);
    CONST(FUSE_CREATE);
    CONST(FUSE_INTERRUPT);
    CONST(FUSE_DESTROY);
    CONST(FUSE_BATCH_FORGET);
    CONST(FUSE_FALLOCATE);
    CONST(FUSE_ASYNC_READ);
    CONST(FUSE_PARALLEL_DIROPS);
    CONST(FUSE_MAX_PAGES);
    CONST(FOPEN_KEEP_CACHE);
    CONST(FOPEN_CACHE_DIR);
    CONST(FATTR_MODE);
    CONST(FATTR_UID);
    CONST(FATTR_GID);
    CONST(FATTR_SIZE);
    CONST(FATTR_ATIME);
    CONST(FATTR_MTIME);
    CONST(FUSE_NOTIFY_INVAL_INODE);
    CONST(FUSE_NOTIFY_STORE);
    CONST(FUSE_MIN_READ_BUFFER);
    CONST(FALLOC_FL_KEEP_SIZE);
    CONST(FALLOC_FL_PUNCH_HOLE);
    SIZE(fuse_in_header);
    FIELD(fuse_in_header, len);
    FIELD(fuse_in_header, opcode);
    FIELD(fuse_in_header, unique);
    FIELD(fuse_in_header, nodeid);
    FIELD(fuse_in_header, uid);
    FIELD(fuse_in_header, gid);
    FIELD(fuse_in_header, pid);
    FIELD(fuse_in_header, total_extlen);
    FIELD(fuse_in_header, padding);
    SIZE(fuse_out_header);
    FIELD(fuse_out_header, len);
    FIELD(fuse_out_header, error);
    FIELD(fuse_out_header, unique);
    SIZE(fuse_init_in);
    FIELD(fuse_init_in, major);
    FIELD(fuse_init_in, minor);
    FIELD(fuse_init_in, max_readahead);
    FIELD(fuse_init_in, flags);
    FIELD(fuse_init_in, flags2);
    FIELD(fuse_init_in, unused);
    SIZE(fuse_init_out);
    FIELD(fuse_init_out, major);
    FIELD(fuse_init_out, minor);
    FIELD(fuse_init_out, max_readahead);
    FIELD(fuse_init_out, flags);
    FIELD(fuse_init_out, max_background);
    FIELD(fuse_init_out, congestion_threshold);
    FIELD(fuse_init_out, max_write);
    FIELD(fuse_init_out, time_gran);
    FIELD(fuse_init_out, max_pages);
    FIELD(fuse_init_out, map_alignment);
    FIELD(fuse_init_out, flags2);
    FIELD(fuse_init_out, unused);
    SIZE(fuse_attr);
    FIELD(fuse_attr, ino);
    FIELD(fuse_attr, size);
    FIELD(fuse_attr, blocks);
    FIELD(fuse_attr, atime);
    FIELD(fuse_attr, mtime);
    FIELD(fuse_attr, ctime);
    FIELD(fuse_attr, atimensec);
    FIELD(fuse_attr, mtimensec);
    FIELD(fuse_attr, ctimensec);
    FIELD(fuse_attr, mode);
    FIELD(fuse_attr, nlink);
    FIELD(fuse_attr, uid);
    FIELD(fuse_attr, gid);
    FIELD(fuse_attr, rdev);
    FIELD(fuse_attr, blksize);
    FIELD(fuse_attr, flags);
    SIZE(fuse_entry_out);
    FIELD(fuse_entry_out, nodeid);
    FIELD(fuse_entry_out, generation);
    FIELD(fuse_entry_out, entry_valid);
    FIELD(fuse_entry_out, attr_valid);
    FIELD(fuse_entry_out, entry_valid_nsec);
    FIELD(fuse_entry_out, attr_valid_nsec);
    FIELD(fuse_entry_out, attr);
    SIZE(fuse_attr_out);
    FIELD(fuse_attr_out, attr_valid);
    FIELD(fuse_attr_out, attr_valid_nsec);
    FIELD(fuse_attr_out, dummy);
    FIELD(fuse_attr_out, attr);
    SIZE(fuse_setattr_in);
    FIELD(fuse_setattr_in, valid);
    FIELD(fuse_setattr_in, padding);
    FIELD(fuse_setattr_in, fh);
    FIELD(fuse_setattr_in, size);
    FIELD(fuse_setattr_in, lock_owner);
    FIELD(fuse_setattr_in, atime);
    FIELD(fuse_setattr_in, mtime);
    FIELD(fuse_setattr_in, ctime);
    FIELD(fuse_setattr_in, atimensec);
    FIELD(fuse_setattr_in, mtimensec);
    FIELD(fuse_setattr_in, ctimensec);
    FIELD(fuse_setattr_in, mode);
    FIELD(fuse_setattr_in, unused4);
    FIELD(fuse_setattr_in, uid);
    FIELD(fuse_setattr_in, gid);
    FIELD(fuse_setattr_in, unused5);
    SIZE(fuse_open_in);
    FIELD(fuse_open_in, flags);
    FIELD(fuse_open_in, open_flags);
    SIZE(fuse_open_out);
    FIELD(fuse_open_out, fh);
    FIELD(fuse_open_out, open_flags);
    FIELD(fuse_open_out, padding);
    SIZE(fuse_read_in);
    FIELD(fuse_read_in, fh);
    FIELD(fuse_read_in, offset);
    FIELD(fuse_read_in, size);
    FIELD(fuse_read_in, read_flags);
    FIELD(fuse_read_in, lock_owner);
    FIELD(fuse_read_in, flags);
    FIELD(fuse_read_in, padding);
    SIZE(fuse_write_in);
    FIELD(fuse_write_in, fh);
    FIELD(fuse_write_in, offset);
    FIELD(fuse_write_in, size);
    FIELD(fuse_write_in, write_flags);
    FIELD(fuse_write_in, lock_owner);
    FIELD(fuse_write_in, flags);
    FIELD(fuse_write_in, padding);
    SIZE(fuse_notify_inval_inode_out);
    FIELD(fuse_notify_inval_inode_out, ino);
    FIELD(fuse_notify_inval_inode_out, off);
    FIELD(fuse_notify_inval_inode_out, len);
    SIZE(fuse_fallocate_in);
    FIELD(fuse_fallocate_in, fh);
    FIELD(fuse_fallocate_in, offset);
    FIELD(fuse_fallocate_in, length);
    FIELD(fuse_fallocate_in, mode);
    FIELD(fuse_fallocate_in, padding);
    SIZE(fuse_kstatfs);
    FIELD(fuse_kstatfs, blocks);
    FIELD(fuse_kstatfs, bfree);
    FIELD(fuse_kstatfs, bavail);
    FIELD(fuse_kstatfs, files);
    FIELD(fuse_kstatfs, ffree);
    FIELD(fuse_kstatfs, bsize);
    FIELD(fuse_kstatfs, namelen);
    FIELD(fuse_kstatfs, frsize);
    FIELD(fuse_kstatfs, padding);
    FIELD(fuse_kstatfs, spare);
    SIZE(fuse_dirent);
    FIELD(fuse_dirent, ino);
    FIELD(fuse_dirent, off);
    FIELD(fuse_dirent, namelen);
    FIELD(fuse_dirent, type);
    SIZE(fuse_notify_store_out);
    FIELD(fuse_notify_store_out, nodeid);
    FIELD(fuse_notify_store_out, offset);
    FIELD(fuse_notify_store_out, size);
    FIELD(fuse_notify_store_out, padding);
}

int main(void)
{
    uffd();
    errnos();
    events();
    sockets();
    files();
    fuse();
    return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
}
