/* libsnap-uffd-preload.so: makes qemu-system-x86_64 (memory-backend-file, share=off) behave as Firecracker does
 * with a `Uffd` memory backend, so our handler (`snapctl restore --uffd-socket`) serves a real guest unchanged.
 *
 *   open(SNAP_UFFD_MEM_PATH)  -> a memfd of the file's size (QEMU fstat/lseek/fstatfs/ftruncate/fallocate-punches
 *                                it; all harmless on a memfd); the real file is never read.
 *   mmap(that memfd)          -> private anonymous memory at the same address, registered (MISSING) with a uffd
 *                                made as Firecracker makes it, handed to SNAP_UFFD_SOCKET in Firecracker's one
 *                                JSON message with the uffd as SCM_RIGHTS. Uffd and socket stay open for good.
 *
 * Any failure prints "snap-uffd-preload: ..." on stderr and fails QEMU's open/mmap, so QEMU stops its start
 * ("unable to map backing store for guest RAM"); nothing ever falls back to zeros. Used through qemu-uffd,
 * which sets LD_PRELOAD for QEMU alone; the constructor also drops it from QEMU's environment so that the
 * commands QEMU runs (migration's `exec:cat ...`) never inherit it. See docs/loader.md. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/sockios.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define LIBNAME "libsnap-uffd-preload.so"
#define PAGE 4096UL

static struct {
    pthread_mutex_t lock;
    char mem_path[PATH_MAX];      /* SNAP_UFFD_MEM_PATH, canonical */
    const char *socket_path;      /* SNAP_UFFD_SOCKET */
    long size_env;                /* SNAP_UFFD_MEM_SIZE, -1 when unset */
    int connect_wait_ms, handshake_ms, verdict_ms, verbose;
    int memfd;                    /* -1 until QEMU opens the memory file */
    dev_t memfd_dev;              /* the memfd's identity: QEMU may dup or close it and reuse its number */
    ino_t memfd_ino;
    int uffd, sock;               /* kept open for QEMU's lifetime, as Firecracker keeps them */
} st = { .lock = PTHREAD_MUTEX_INITIALIZER, .memfd = -1, .uffd = -1, .sock = -1 };

#define say(...) do { fprintf(stderr, "snap-uffd-preload[%d]: ", (int)getpid()); fprintf(stderr, __VA_ARGS__); \
                      fputc('\n', stderr); } while (0)

static void *real(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);
    if (!f) { say("dlsym(%s) failed: %s", name, dlerror()); abort(); }
    return f;
}

static long env_num(const char *name, long dflt)
{
    const char *v = getenv(name);
    if (!v || !*v) return dflt;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    long mult = 1;
    switch (*end) { /* K/M/G suffixes (binary), as QEMU's size= takes them */
    case 'K': case 'k': mult = 1L << 10; end++; break;
    case 'M': case 'm': mult = 1L << 20; end++; break;
    case 'G': case 'g': mult = 1L << 30; end++; break;
    }
    if (errno || *end || n < 0 || n > LONG_MAX / mult) {
        say("%s=%s is not a non-negative number (K/M/G suffix allowed)", name, v);
        _exit(2);
    }
    return n * mult;
}

/* The canonical form of a path that may not exist yet: realpath of its directory plus its name. */
static int canonical(const char *path, char out[PATH_MAX])
{
    if (realpath(path, out)) return 0;
    char a[PATH_MAX], b[PATH_MAX], dir[PATH_MAX];
    if (snprintf(a, sizeof a, "%s", path) >= (int)sizeof a) return -1;
    snprintf(b, sizeof b, "%s", path);
    if (!realpath(dirname(a), dir)) return -1;
    return snprintf(out, PATH_MAX, "%s/%s", dir, basename(b)) >= PATH_MAX ? -1 : 0;
}

/* Removes this library from LD_PRELOAD: QEMU alone is served; the commands it runs read real files. */
static void drop_from_ld_preload(void)
{
    const char *v = getenv("LD_PRELOAD");
    if (!v) return;
    char *copy = strdup(v), *kept = calloc(1, strlen(v) + 1), *save = NULL;
    if (!copy || !kept) abort();
    for (char *tok = strtok_r(copy, ": ", &save); tok; tok = strtok_r(NULL, ": ", &save)) {
        const char *slash = strrchr(tok, '/');
        if (strcmp(slash ? slash + 1 : tok, LIBNAME) == 0) continue;
        if (*kept) strcat(kept, ":");
        strcat(kept, tok);
    }
    if (*kept) setenv("LD_PRELOAD", kept, 1); else unsetenv("LD_PRELOAD");
    free(copy);
    free(kept);
}

__attribute__((constructor)) static void init(void)
{
    drop_from_ld_preload();
    const char *mem = getenv("SNAP_UFFD_MEM_PATH");
    st.socket_path = getenv("SNAP_UFFD_SOCKET");
    if (!mem || !*mem || !st.socket_path || !*st.socket_path) {
        say("SNAP_UFFD_MEM_PATH and SNAP_UFFD_SOCKET must both be set (use qemu-uffd)");
        _exit(2);
    }
    if (canonical(mem, st.mem_path) < 0) {
        say("SNAP_UFFD_MEM_PATH=%s: its directory cannot be resolved: %s", mem, strerror(errno));
        _exit(2);
    }
    if (strlen(st.socket_path) >= sizeof ((struct sockaddr_un *)0)->sun_path) {
        say("SNAP_UFFD_SOCKET=%s is too long for a Unix socket", st.socket_path);
        _exit(2);
    }
    st.size_env = getenv("SNAP_UFFD_MEM_SIZE") ? env_num("SNAP_UFFD_MEM_SIZE", -1) : -1;
    st.connect_wait_ms = (int)env_num("SNAP_UFFD_CONNECT_WAIT_MS", 0);
    st.handshake_ms = (int)env_num("SNAP_UFFD_HANDSHAKE_MS", 5000);
    st.verdict_ms = (int)env_num("SNAP_UFFD_VERDICT_MS", 200);
    st.verbose = (int)env_num("SNAP_UFFD_VERBOSE", 0);
}

/* ---- open: the memory file becomes a memfd ---- */

static int is_mem_path(int dirfd, const char *path)
{
    if (!path || !st.mem_path[0]) return 0; /* another library's constructor, before ours */
    const char *slash = strrchr(path, '/'), *want = strrchr(st.mem_path, '/');
    if (strcmp(slash ? slash + 1 : path, want + 1) != 0) return 0; /* cheap filter: the names differ */
    char full[PATH_MAX], canon[PATH_MAX];
    if (path[0] != '/' && dirfd != AT_FDCWD) { /* relative to a directory fd: resolve it through /proc */
        char link[64], dir[PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
        ssize_t n = readlink(link, dir, sizeof dir - 1);
        if (n < 0) return 0;
        dir[n] = 0;
        if (snprintf(full, sizeof full, "%s/%s", dir, path) >= (int)sizeof full) return 0;
        path = full;
    }
    return canonical(path, canon) == 0 && strcmp(canon, st.mem_path) == 0;
}

/* Returns the memfd standing for the memory file (>= 0), or -1 with errno set after saying why. */
static int open_mem(int flags)
{
    pthread_mutex_lock(&st.lock);
    int fd = -1, err = 0;
    if (st.memfd >= 0) {
        /* One backend, one region, one message: a second open would be a second region we cannot announce. */
        say("%s opened a second time: only one memory backend per QEMU is supported", st.mem_path);
        err = EBUSY;
        goto out;
    }
    struct stat sb;
    long size;
    if (stat(st.mem_path, &sb) == 0) {
        size = sb.st_size;
        if (st.size_env >= 0 && st.size_env != size) {
            say("SNAP_UFFD_MEM_SIZE=%ld but %s has %ld bytes", st.size_env, st.mem_path, size);
            err = EINVAL;
            goto out;
        }
    } else if (errno == ENOENT && st.size_env >= 0) {
        size = st.size_env;
    } else {
        err = errno == ENOENT ? EINVAL : errno;
        say("%s: %s, and SNAP_UFFD_MEM_SIZE is not set: the memory size is unknown", st.mem_path,
            errno == ENOENT ? "no such file" : strerror(errno));
        goto out;
    }
    fd = memfd_create("snap-uffd-mem", (flags & O_CLOEXEC) ? MFD_CLOEXEC : 0);
    if (fd < 0 || ftruncate(fd, size) < 0 || fstat(fd, &sb) < 0) {
        err = errno;
        say("memfd of %ld bytes for %s: %s", size, st.mem_path, strerror(err));
        if (fd >= 0) close(fd);
        fd = -1;
        goto out;
    }
    st.memfd = fd;
    st.memfd_dev = sb.st_dev;
    st.memfd_ino = sb.st_ino;
    if (st.verbose) say("open(%s) -> memfd %d of %ld bytes", st.mem_path, fd, size);
out:
    pthread_mutex_unlock(&st.lock);
    if (fd < 0) errno = err;
    return fd;
}

static mode_t mode_arg(int flags, va_list ap)
{
    /* O_TMPFILE includes O_DIRECTORY's bit: test all of it. */
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

/* Each name QEMU may import (64-bit offsets and fortify make it open64/__open64_2/openat64/mmap64) forwards to
 * the same name in libc, so the fortify checks and flag handling stay libc's. */
#define OPEN_LIKE(NAME)                                                                                    \
    int NAME(const char *path, int flags, ...)                                                             \
    {                                                                                                      \
        static int (*next)(const char *, int, ...);                                                        \
        va_list ap;                                                                                        \
        va_start(ap, flags);                                                                               \
        mode_t mode = mode_arg(flags, ap);                                                                 \
        va_end(ap);                                                                                        \
        if (is_mem_path(AT_FDCWD, path)) return open_mem(flags);                                           \
        if (!next) next = real(#NAME);                                                                     \
        return next(path, flags, mode);                                                                    \
    }
#define OPEN2_LIKE(NAME)                                                                                   \
    int NAME(const char *path, int flags)                                                                  \
    {                                                                                                      \
        static int (*next)(const char *, int);                                                             \
        if (is_mem_path(AT_FDCWD, path)) return open_mem(flags);                                           \
        if (!next) next = real(#NAME);                                                                     \
        return next(path, flags);                                                                          \
    }
#define OPENAT_LIKE(NAME)                                                                                  \
    int NAME(int dirfd, const char *path, int flags, ...)                                                  \
    {                                                                                                      \
        static int (*next)(int, const char *, int, ...);                                                   \
        va_list ap;                                                                                        \
        va_start(ap, flags);                                                                               \
        mode_t mode = mode_arg(flags, ap);                                                                 \
        va_end(ap);                                                                                        \
        if (is_mem_path(dirfd, path)) return open_mem(flags);                                              \
        if (!next) next = real(#NAME);                                                                     \
        return next(dirfd, path, flags, mode);                                                             \
    }
#define OPENAT2_LIKE(NAME)                                                                                 \
    int NAME(int dirfd, const char *path, int flags)                                                       \
    {                                                                                                      \
        static int (*next)(int, const char *, int);                                                        \
        if (is_mem_path(dirfd, path)) return open_mem(flags);                                              \
        if (!next) next = real(#NAME);                                                                     \
        return next(dirfd, path, flags);                                                                   \
    }
OPEN_LIKE(open)
OPEN_LIKE(open64)
OPEN2_LIKE(__open_2)
OPEN2_LIKE(__open64_2)
OPENAT_LIKE(openat)
OPENAT_LIKE(openat64)
OPENAT2_LIKE(__openat_2)
OPENAT2_LIKE(__openat64_2)

/* ---- mmap: the memfd's mapping becomes uffd-served anonymous memory ---- */

static long ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static int connect_handler(void)
{
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) { say("socket: %s", strerror(errno)); return -1; }
    /* connect and sendmsg block at most this long on a handler whose backlog is full. */
    struct timeval tv = { .tv_sec = st.handshake_ms / 1000, .tv_usec = st.handshake_ms % 1000 * 1000 };
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    strcpy(addr.sun_path, st.socket_path);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* By default no waiting: the handler must be listening before QEMU starts (snapctl restore prints its
     * ready line first). SNAP_UFFD_CONNECT_WAIT_MS allows for a handler still starting. */
    while (connect(s, (struct sockaddr *)&addr, sizeof addr) < 0) {
        if ((errno == ENOENT || errno == ECONNREFUSED) && ms_since(&t0) < st.connect_wait_ms) {
            usleep(10000);
            continue;
        }
        say("no uffd handler at SNAP_UFFD_SOCKET=%s: connect: %s", st.socket_path, strerror(errno));
        close(s);
        return -1;
    }
    return s;
}

/* Waits for the handler's verdict, as far as Firecracker's protocol lets one see it (it has no reply):
 * a handler that closes without reading the message refused it (ECONNRESET); one that never reads it within
 * SNAP_UFFD_HANDSHAKE_MS is not serving. Once it has read it (SIOCOUTQ 0), up to SNAP_UFFD_VERDICT_MS for it to
 * close: ours closes at once when it accepts, and SIGKILLs the VMM before closing when it refuses, so a
 * refusal stops QEMU's start here; a handler that keeps the socket open (Firecracker's example) costs the wait. */
static int await_verdict(int s)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long read_at = -1;
    for (;;) {
        int queued = 1;
        if (read_at < 0 && ioctl(s, SIOCOUTQ, &queued) == 0 && queued == 0) read_at = ms_since(&t0);
        struct pollfd p = { .fd = s, .events = POLLIN };
        if (poll(&p, 1, 5) > 0) {
            char c;
            ssize_t n = recv(s, &c, 1, MSG_PEEK | MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (n < 0) {
                say("the handler at %s %s: %s", st.socket_path,
                    errno == ECONNRESET ? "closed the connection without reading the handshake (refused)"
                                        : "failed the connection", strerror(errno));
                return -1;
            }
            return 0; /* EOF after reading (accepted), or the handler wrote something: it has the uffd */
        }
        long now = ms_since(&t0);
        if (read_at >= 0 && now - read_at >= st.verdict_ms) return 0;
        if (read_at < 0 && now >= st.handshake_ms) {
            say("the handler at %s did not read the handshake within %d ms", st.socket_path, st.handshake_ms);
            return -1;
        }
    }
}

/* Firecracker's way (and replay-vmm's): userfaultfd(O_CLOEXEC|O_NONBLOCK), UFFDIO_API with EVENT_REMOVE,
 * MISSING mode; no UFFD_USER_MODE_ONLY, so faults that KVM takes through get_user_pages reach the handler. */
static int arm(void *base, size_t len, off_t offset)
{
    int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (uffd < 0) {
        say("userfaultfd: %s%s", strerror(errno),
            errno == EPERM ? " (needs root or CAP_SYS_PTRACE, or vm.unprivileged_userfaultfd=1)" : "");
        return -1;
    }
    struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_EVENT_REMOVE };
    struct uffdio_register reg = {
        .range = { .start = (uint64_t)(uintptr_t)base, .len = len },
        .mode = UFFDIO_REGISTER_MODE_MISSING,
    };
    if (ioctl(uffd, UFFDIO_API, &api) < 0) { say("UFFDIO_API: %s", strerror(errno)); goto fail; }
    if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0) { say("UFFDIO_REGISTER: %s", strerror(errno)); goto fail; }

    int s = connect_handler();
    if (s < 0) goto fail;
    char json[256];
    int n = snprintf(json, sizeof json,
                     "[{\"base_host_virt_addr\":%lu,\"size\":%zu,\"offset\":%lld,\"page_size\":%lu,"
                     "\"page_size_kib\":%lu}]",
                     (unsigned long)(uintptr_t)base, len, (long long)offset, PAGE, PAGE / 1024);
    struct iovec iov = { .iov_base = json, .iov_len = (size_t)n };
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                          .msg_controllen = sizeof control.buf };
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &uffd, sizeof(int));
    if (sendmsg(s, &msg, MSG_NOSIGNAL) != n) {
        say("sendmsg to the handler at %s: %s", st.socket_path, strerror(errno));
        close(s);
        goto fail;
    }
    if (await_verdict(s) < 0) { close(s); goto fail; }
    st.uffd = uffd;
    st.sock = s;
    if (st.verbose) say("handed %s (%zu bytes at %p) to the handler at %s", st.mem_path, len, base, st.socket_path);
    return 0;
fail:
    close(uffd);
    return -1;
}

static void *map_mem(void *(*next)(void *, size_t, int, int, int, off_t), void *addr, size_t len, int prot,
                     int flags, off_t offset)
{
    pthread_mutex_lock(&st.lock);
    void *p = MAP_FAILED;
    int err = EINVAL;
    struct stat sb;
    if (st.uffd >= 0) {
        say("a second mapping of %s (%zu bytes at offset %lld): only one region per QEMU is supported",
            st.mem_path, len, (long long)offset);
        err = EBUSY;
    } else if (len == 0 || len % PAGE || offset % (off_t)PAGE || fstat(st.memfd, &sb) < 0
               || offset + (off_t)len > sb.st_size) {
        say("mapping of %s (%zu bytes at offset %lld) is not page-aligned or beyond the file", st.mem_path, len,
            (long long)offset);
    } else {
        /* Private and anonymous, as Firecracker maps guest memory for a Uffd backend: MAP_SHARED(_VALIDATE) and
         * MAP_SYNC would need the file; MAP_POPULATE/MAP_LOCKED would fill it with zeros before the uffd is armed. */
        int anon = (flags & ~(MAP_TYPE | MAP_SYNC | MAP_POPULATE | MAP_LOCKED)) | MAP_PRIVATE | MAP_ANONYMOUS;
        p = next(addr, len, prot, anon, -1, 0);
        if (p == MAP_FAILED) {
            err = errno;
            say("mmap of %zu anonymous bytes at %p: %s", len, addr, strerror(err));
        } else if (arm(p, len, offset) < 0) {
            err = EIO;
            /* Give QEMU back what it had there (its PROT_NONE reservation) or nothing, then fail its mmap. */
            if (flags & MAP_FIXED)
                next(p, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
            else
                munmap(p, len);
            p = MAP_FAILED;
        }
    }
    pthread_mutex_unlock(&st.lock);
    if (p == MAP_FAILED) errno = err;
    return p;
}

static int is_memfd(int fd)
{
    struct stat sb;
    return st.memfd >= 0 && fd >= 0 && fstat(fd, &sb) == 0 && sb.st_dev == st.memfd_dev
           && sb.st_ino == st.memfd_ino;
}

#define MMAP_LIKE(NAME)                                                                                    \
    void *NAME(void *addr, size_t len, int prot, int flags, int fd, off_t offset)                          \
    {                                                                                                      \
        static void *(*next)(void *, size_t, int, int, int, off_t);                                        \
        if (!next) next = real(#NAME);                                                                     \
        if (!(flags & MAP_ANONYMOUS) && is_memfd(fd)) return map_mem(next, addr, len, prot, flags, offset); \
        return next(addr, len, prot, flags, fd, offset);                                                   \
    }
MMAP_LIKE(mmap)
MMAP_LIKE(mmap64)
