#define _GNU_SOURCE
#include <errno.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "vmm.h"

/* The naive peer and the machine's floor: one thread, one 4 KiB UFFDIO_COPY per fault, from the image held
 * in memory, like Firecracker's example handler. */
static const struct guest *hg;
static int huffd = -1;
static volatile int stopping;
static pthread_t thread;

static uint64_t file_offset(uint64_t addr)
{
    for (int i = 0; i < hg->nregions; i++) {
        uint64_t b = (uint64_t)(uintptr_t)hg->regions[i].base;
        if (addr >= b && addr < b + hg->regions[i].size) return hg->regions[i].offset + (addr - b);
    }
    return UINT64_MAX;
}

static void copy_page(uint64_t addr, uint64_t *again, size_t *nagain)
{
    uint64_t off = file_offset(addr);
    if (off == UINT64_MAX || off + PAGE > hg->image_size) { fprintf(stderr, "fault outside guest memory\n"); return; }
    struct uffdio_copy copy = { .dst = addr, .src = (uint64_t)(uintptr_t)(hg->image + off), .len = PAGE };
    if (ioctl(huffd, UFFDIO_COPY, &copy) == 0 || errno == EEXIST) return;
    if (errno == EAGAIN && *nagain < 64) again[(*nagain)++] = addr;
    else perror("UFFDIO_COPY");
}

static void *serve(void *arg)
{
    (void)arg;
    struct uffd_msg msgs[16];
    /* A copy refused with EAGAIN (a REMOVE is queued: the memory map is changing) is retried after the next read. */
    uint64_t again[64];
    size_t nagain = 0;
    while (!stopping) {
        struct pollfd p = { .fd = huffd, .events = POLLIN };
        if (poll(&p, 1, nagain ? 1 : 50) < 0) continue;
        ssize_t n = read(huffd, msgs, sizeof msgs);
        if (n < 0 && errno != EAGAIN) { perror("read uffd"); return NULL; }
        size_t retry = nagain;
        uint64_t pending[64];
        memcpy(pending, again, retry * sizeof *pending);
        nagain = 0;
        for (size_t i = 0; i < retry; i++) copy_page(pending[i], again, &nagain);
        for (ssize_t i = 0; i < n / (ssize_t)sizeof msgs[0]; i++)
            if (msgs[i].event == UFFD_EVENT_PAGEFAULT) copy_page(msgs[i].arg.pagefault.address & ~(PAGE - 1), again, &nagain);
    }
    return NULL;
}

int minimal_handler_start(const struct guest *g, int uffd)
{
    hg = g;
    huffd = uffd;
    stopping = 0;
    return pthread_create(&thread, NULL, serve, NULL);
}

void minimal_handler_stop(void)
{
    stopping = 1;
    pthread_join(thread, NULL);
    close(huffd);
    huffd = -1;
}
