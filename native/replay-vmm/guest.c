#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "vmm.h"

/* Maps guest memory as Firecracker does: anonymous, private. With a gap, the regions sit apart in the host
 * address space too (a PROT_NONE hole between them), so a handler that ignores region bases gets it wrong. */
int guest_map(struct guest *g, const size_t *sizes, const size_t *gaps, int n)
{
    size_t span = 0;
    for (int i = 0; i < n; i++) span += sizes[i] + (i + 1 < n ? gaps[i] : 0);
    uint8_t *base = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) { perror("mmap reserve"); return -1; }
    g->span = base;
    g->span_size = span;
    uint8_t *at = base;
    uint64_t offset = 0;
    g->nregions = n;
    g->total = 0;
    for (int i = 0; i < n; i++) {
        void *r = mmap(at, sizes[i], PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
        if (r == MAP_FAILED) { perror("mmap region"); return -1; }
        g->regions[i] = (struct region){ .base = r, .size = sizes[i], .offset = offset };
        offset += sizes[i];
        g->total += sizes[i];
        at += sizes[i] + (i + 1 < n ? gaps[i] : 0);
    }
    return 0;
}

/* --mode file: guest memory is the restore's memory file, as QEMU's memory-backend-file with share=off and
 * Firecracker's File backend map it: MAP_PRIVATE, so a guest write stays in the VM's own copy-on-write page and
 * never reaches the snapshot; every first read faults through the page cache into the file system serving it
 * (ChunkFs). Each region maps its own range of the file (region offsets are file offsets). */
int guest_map_file(struct guest *g, const size_t *sizes, const size_t *gaps, int n, const char *path)
{
    if (guest_map(g, sizes, gaps, n) < 0) return -1;
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) { perror(path); return -1; }
    if ((uint64_t)st.st_size < g->total) {
        fprintf(stderr, "%s: %lld bytes, guest memory is %zu\n", path, (long long)st.st_size, g->total);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        void *r = mmap(g->regions[i].base, g->regions[i].size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd,
                       (off_t)g->regions[i].offset);
        if (r == MAP_FAILED) { perror("mmap memory file"); return -1; }
    }
    close(fd); /* the mappings hold the file open */
    return 0;
}

uint8_t *guest_addr(const struct guest *g, uint64_t offset)
{
    for (int i = 0; i < g->nregions; i++)
        if (offset >= g->regions[i].offset && offset < g->regions[i].offset + g->regions[i].size)
            return g->regions[i].base + (offset - g->regions[i].offset);
    return NULL;
}

void guest_unmap(struct guest *g)
{
    if (g->span) munmap(g->span, g->span_size);
    g->span = NULL;
    g->nregions = 0;
    g->total = 0;
}
