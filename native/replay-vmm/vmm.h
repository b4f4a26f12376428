/* replay-vmm: plays Firecracker's side of the userfaultfd restore protocol for tests and benchmarks. */
#ifndef REPLAY_VMM_H
#define REPLAY_VMM_H

#include <stddef.h>
#include <stdint.h>

#define PAGE 4096UL
#define MAX_REGIONS 2

struct region {
    uint8_t *base;   /* host virtual address of the region */
    size_t size;     /* bytes */
    uint64_t offset; /* offset in the memory file: running sum of region sizes */
};

struct guest {
    struct region regions[MAX_REGIONS];
    int nregions;
    size_t total;           /* sum of region sizes */
    const uint8_t *image;   /* --image, mapped read-only: for verification and resident/minimal modes */
    size_t image_size;
    uint8_t *span;          /* the whole reservation guest_map made (regions and gaps) */
    size_t span_size;
};

struct access {
    uint64_t offset;  /* page-aligned offset in the memory file */
    uint32_t gap_us;  /* busy time before this access, as recorded */
};

/* guest.c */
int guest_map(struct guest *g, const size_t *sizes, const size_t *gaps, int n);
int guest_map_file(struct guest *g, const size_t *sizes, const size_t *gaps, int n, const char *path);
uint8_t *guest_addr(const struct guest *g, uint64_t offset);
void guest_unmap(struct guest *g);

/* uffd.c: Firecracker's way: a non-blocking uffd with EVENT_REMOVE, MISSING mode on every region. */
int uffd_create_and_register(const struct guest *g);
int uffd_send_to_handler(const struct guest *g, int uffd, const char *socket_path);

/* minimal_handler.c: the machine's floor, like Firecracker's example handler: 4 KiB UFFDIO_COPY per fault. */
int minimal_handler_start(const struct guest *g, int uffd);
void minimal_handler_stop(void);

/* trace.c */
uint64_t splitmix(uint64_t *s);
struct access *trace_load(const char *path, size_t *count, const struct guest *g);
struct access *trace_all(const struct guest *g, size_t *count);
struct access *trace_random(const struct guest *g, size_t count, uint64_t seed);

/* script.c: --script FILE, page-level model of guest memory (see script.c for the format). */
enum vmm_mode { MODE_HANDLER, MODE_RESIDENT, MODE_MINIMAL };

struct script_config {
    const char *image_path;
    const char *socket_path;
    enum vmm_mode mode;
    const size_t *sizes, *gaps;   /* guest regions, as for guest_map */
    int nregions;
    int vcpus;                    /* at least this many vCPU threads (more if a line has more ops) */
    double timeout;               /* seconds per script; 0: none */
    int fork;                     /* each script in its own process, as each Firecracker restore is */
    int max_failures;             /* stop after this many scripts that are not right; 0: run them all */
};

int script_main(const struct script_config *cfg, const struct guest *image, const char *path);

#endif
