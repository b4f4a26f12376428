#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>
#include "vmm.h"

int uffd_create_and_register(const struct guest *g)
{
    int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (uffd < 0) { perror("userfaultfd"); return -1; }
    struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_EVENT_REMOVE };
    if (ioctl(uffd, UFFDIO_API, &api) < 0) { perror("UFFDIO_API"); return -1; }
    for (int i = 0; i < g->nregions; i++) {
        struct uffdio_register reg = {
            .range = { .start = (uint64_t)(uintptr_t)g->regions[i].base, .len = g->regions[i].size },
            .mode = UFFDIO_REGISTER_MODE_MISSING,
        };
        if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0) { perror("UFFDIO_REGISTER"); return -1; }
    }
    return uffd;
}

/* Exactly Firecracker's one message: a JSON array of regions, the uffd as SCM_RIGHTS. */
int uffd_send_to_handler(const struct guest *g, int uffd, const char *socket_path)
{
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) { perror("socket"); return -1; }
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    if (strlen(socket_path) >= sizeof addr.sun_path) { fprintf(stderr, "socket path too long\n"); return -1; }
    strcpy(addr.sun_path, socket_path);
    int tries = 0;
    while (connect(s, (struct sockaddr *)&addr, sizeof addr) < 0) {
        if ((errno != ENOENT && errno != ECONNREFUSED) || ++tries > 200) { perror("connect"); return -1; }
        usleep(25000); /* the handler may still be starting */
    }
    char json[1024];
    int n = snprintf(json, sizeof json, "[");
    for (int i = 0; i < g->nregions; i++)
        n += snprintf(json + n, sizeof json - n, "%s{\"base_host_virt_addr\":%lu,\"size\":%zu,\"offset\":%lu,\"page_size\":%lu}",
                      i ? "," : "", (unsigned long)(uintptr_t)g->regions[i].base, g->regions[i].size,
                      (unsigned long)g->regions[i].offset, PAGE);
    n += snprintf(json + n, sizeof json - n, "]");

    struct iovec iov = { .iov_base = json, .iov_len = (size_t)n };
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf };
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &uffd, sizeof(int));
    if (sendmsg(s, &msg, 0) != n) { perror("sendmsg"); return -1; }
    return s; /* kept open: closing it is fine for the protocol, keeping it costs nothing */
}
