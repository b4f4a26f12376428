#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vmm.h"

/* Text traces: one access per line, "OFFSET GAP_US" (offset in bytes, decimal or 0x hex, page-aligned;
 * gap optional, default 0); '#' starts a comment. `snapctl log to-trace` and `snapctl gen-trace` write them. */
struct access *trace_load(const char *path, size_t *count, const struct guest *g)
{
    FILE *f = fopen(path, "r");
    if (!f) { perror(path); return NULL; }
    size_t cap = 1024, n = 0;
    struct access *a = malloc(cap * sizeof *a);
    char line[256];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '#' || *p == '\n' || *p == 0) continue;
        char *end;
        unsigned long long off = strtoull(p, &end, 0);
        if (end == p) { fprintf(stderr, "%s:%d: not an offset\n", path, lineno); free(a); fclose(f); return NULL; }
        unsigned long gap = strtoul(end, NULL, 10);
        if (off % PAGE || off + PAGE > g->total) {
            fprintf(stderr, "%s:%d: offset %llu is unaligned or outside guest memory (%zu bytes)\n", path, lineno, off, g->total);
            free(a); fclose(f); return NULL;
        }
        if (n == cap) a = realloc(a, (cap *= 2) * sizeof *a);
        a[n++] = (struct access){ .offset = off, .gap_us = (uint32_t)gap };
    }
    fclose(f);
    *count = n;
    return a;
}

struct access *trace_all(const struct guest *g, size_t *count)
{
    *count = g->total / PAGE;
    struct access *a = malloc(*count * sizeof *a);
    for (size_t i = 0; i < *count; i++) a[i] = (struct access){ .offset = i * PAGE, .gap_us = 0 };
    return a;
}

uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* COUNT distinct pages in random order (Fisher-Yates over all pages, first COUNT taken). */
struct access *trace_random(const struct guest *g, size_t count, uint64_t seed)
{
    size_t pages = g->total / PAGE;
    if (count > pages) count = pages;
    uint32_t *perm = malloc(pages * sizeof *perm);
    for (size_t i = 0; i < pages; i++) perm[i] = (uint32_t)i;
    uint64_t s = seed;
    for (size_t i = 0; i < count; i++) {
        size_t j = i + splitmix(&s) % (pages - i);
        uint32_t t = perm[i]; perm[i] = perm[j]; perm[j] = t;
    }
    struct access *a = malloc(count * sizeof *a);
    for (size_t i = 0; i < count; i++) a[i] = (struct access){ .offset = (uint64_t)perm[i] * PAGE, .gap_us = 0 };
    free(perm);
    return a;
}
