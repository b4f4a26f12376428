/* minimal-handler: the smallest external page-fault handler for Firecracker's protocol, in C, for benchmarks.
 * Same job as replay-vmm's in-process minimal mode, but in its own process, as Firecracker requires a handler
 * to be: accept one VMM on a Unix socket, take the uffd (SCM_RIGHTS), serve every fault with one 4 KiB
 * UFFDIO_COPY from the memory file held in memory, exit when the VMM does. No JSON parsing: it assumes one
 * region at offset 0, which is what the benchmark's replay-vmm sends. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
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
#include <unistd.h>

#define PAGE 4096UL

int main(int argc, char **argv)
{
    if (argc != 3) { fprintf(stderr, "usage: minimal-handler IMAGE SOCKET\n"); return 2; }
    int fd = open(argv[1], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) { perror(argv[1]); return 2; }
    const uint8_t *image = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (image == MAP_FAILED) { perror("mmap"); return 2; }

    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    strncpy(addr.sun_path, argv[2], sizeof addr.sun_path - 1);
    unlink(argv[2]);
    if (bind(s, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(s, 1) < 0) { perror("bind"); return 2; }
    int c = accept(s, NULL, NULL);
    if (c < 0) { perror("accept"); return 2; }

    char json[4096];
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
    struct iovec iov = { .iov_base = json, .iov_len = sizeof json - 1 };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf };
    ssize_t n = recvmsg(c, &msg, 0);
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    if (n <= 0 || !cm || cm->cmsg_type != SCM_RIGHTS) { fprintf(stderr, "no uffd received\n"); return 2; }
    int uffd;
    memcpy(&uffd, CMSG_DATA(cm), sizeof uffd);
    json[n] = 0;
    char *b = strstr(json, "\"base_host_virt_addr\":");
    if (!b) { fprintf(stderr, "no region\n"); return 2; }
    uint64_t base = strtoull(b + 22, NULL, 10);

    struct uffd_msg msgs[16];
    for (;;) {
        /* replay-vmm keeps its socket open while it runs: end of file on it means the VMM exited. */
        struct pollfd p[2] = { { .fd = uffd, .events = POLLIN }, { .fd = c, .events = POLLIN } };
        if (poll(p, 2, 1000) < 0) return 1;
        if (p[1].revents) return 0;
        if (!(p[0].revents & POLLIN)) continue;
        ssize_t r = read(uffd, msgs, sizeof msgs);
        if (r < 0) { if (errno == EAGAIN) continue; return 1; }
        for (ssize_t i = 0; i < r / (ssize_t)sizeof msgs[0]; i++) {
            if (msgs[i].event != UFFD_EVENT_PAGEFAULT) continue;
            uint64_t a = msgs[i].arg.pagefault.address & ~(PAGE - 1);
            struct uffdio_copy copy = { .dst = a, .src = (uint64_t)(uintptr_t)(image + (a - base)), .len = PAGE };
            if (ioctl(uffd, UFFDIO_COPY, &copy) < 0) {
                if (errno == ESRCH || errno == ENOENT) return 0; /* the VMM is gone */
                if (errno != EEXIST) perror("UFFDIO_COPY");
            }
        }
    }
}
