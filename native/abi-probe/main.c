/* abi-probe: prints the kernel and libc ABI facts that the C# interop declares by hand
 * (src/ChunkFs/Native/UffdAbi.cs, LibC.cs; src/SnapshotStore/Origin/Native.cs), as compiled here, so a test
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
#include <linux/openat2.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>

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
    CONST(SYNC_FILE_RANGE_WRITE);
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
    SIZE(open_how);
    FIELD(open_how, flags);
    FIELD(open_how, mode);
    FIELD(open_how, resolve);
}

int main(void)
{
    uffd();
    errnos();
    events();
    sockets();
    files();
    return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
}
