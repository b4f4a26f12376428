/* readlat: the latency of single reads of a file, for comparing file systems (ChunkFs, a libfuse3 server,
 * tmpfs). N preads of SIZE bytes at random SIZE-aligned offsets (seeded, so every file system gets the same
 * offsets), one at a time, each timed with CLOCK_MONOTONIC; W untimed warm-up reads first, from the same stream.
 * --direct opens with O_DIRECT, so every read bypasses the page cache and reaches the file system (a FUSE server
 * sees one request per read up to its max_read); without it, reads of a cached file measure the page cache.
 * --avoid-zero REF draws offsets only from reads that overlap no all-zero GRAIN-aligned block of REF (a copy of
 * the file's bytes, read once): ChunkFs answers reads of zero chunks from one shared zero mapping, which is not
 * what a read of data costs.
 * Several files are measured interleaved, so that they share whatever else the machine is doing: BLOCK reads of
 * one, then BLOCK of the next, the first file of each round rotating; each gets the same offsets. A file may be
 * given as direct:PATH or buffered:PATH to override --direct for it. One JSON line per file, in argument order:
 * {"p50Us", "p99Us", "meanUs", "n", ...}. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void usage(void)
{
    fprintf(stderr, "usage: readlat [--direct] [--size BYTES] [-n N] [--warmup W] [--seed S] [--block B]\n"
                    "               [--avoid-zero REF [--grain BYTES]] [direct:|buffered:]FILE...\n");
    exit(2);
}

static uint64_t rng_state;

/* splitmix64: small, seeded, the same sequence everywhere. */
static uint64_t next_random(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static long long parse_size(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    }
    if (*end || v <= 0) { fprintf(stderr, "readlat: bad size '%s'\n", s); exit(2); }
    return v;
}

/* The SIZE-aligned offsets of the file that overlap no all-zero GRAIN block of REF (a copy of the file). */
static uint64_t *data_offsets(const char *ref, long long file_size, long long size, long long grain,
                              uint64_t *count)
{
    int fd = open(ref, O_RDONLY);
    if (fd < 0) { perror(ref); exit(1); }
    long long blocks = (file_size + grain - 1) / grain;
    char *zero = calloc(blocks, 1);
    char *buf = malloc(grain);
    if (!zero || !buf) { perror("malloc"); exit(1); }
    for (long long b = 0; b < blocks; b++) {
        ssize_t n = pread(fd, buf, grain, b * grain);
        if (n < 0) { perror(ref); exit(1); }
        int all = 1;
        for (ssize_t i = 0; i < n && all; i++) all = buf[i] == 0;
        zero[b] = (char)all;
    }
    close(fd);
    free(buf);
    long long slots = file_size / size;
    uint64_t *offs = malloc(sizeof(uint64_t) * (slots ? slots : 1));
    uint64_t k = 0;
    for (long long s = 0; s < slots; s++) {
        long long first = s * size / grain, last = (s * size + size - 1) / grain;
        int ok = 1;
        for (long long b = first; b <= last && ok; b++) ok = !zero[b];
        if (ok) offs[k++] = (uint64_t)(s * size);
    }
    free(zero);
    *count = k;
    return offs;
}

struct target {
    const char *arg, *path;
    int fd, direct;
    double *lat, sum;
};

int main(int argc, char **argv)
{
    long long size = 4096, grain = 512 << 10;
    long n = 10000, warmup = 1000, block = 50;
    uint64_t seed = 1;
    int direct = 0;
    const char *ref = NULL;
    static const struct option opts[] = {
        { "direct", no_argument, 0, 'd' }, { "size", required_argument, 0, 's' },
        { "warmup", required_argument, 0, 'w' }, { "seed", required_argument, 0, 'S' },
        { "avoid-zero", required_argument, 0, 'z' }, { "grain", required_argument, 0, 'g' },
        { "block", required_argument, 0, 'b' }, { 0, 0, 0, 0 },
    };
    for (int c; (c = getopt_long(argc, argv, "n:", opts, NULL)) != -1;) {
        switch (c) {
        case 'd': direct = 1; break;
        case 's': size = parse_size(optarg); break;
        case 'n': n = atol(optarg); break;
        case 'w': warmup = atol(optarg); break;
        case 'S': seed = strtoull(optarg, NULL, 10); break;
        case 'z': ref = optarg; break;
        case 'g': grain = parse_size(optarg); break;
        case 'b': block = atol(optarg); break;
        default: usage();
        }
    }
    int k = argc - optind;
    if (k < 1 || n <= 0 || warmup < 0 || block <= 0) usage();
    struct target *t = calloc(k, sizeof(*t));
    off_t file_size = -1;
    for (int i = 0; i < k; i++) {
        t[i].arg = t[i].path = argv[optind + i];
        t[i].direct = direct;
        if (!strncmp(t[i].path, "direct:", 7)) { t[i].direct = 1; t[i].path += 7; }
        else if (!strncmp(t[i].path, "buffered:", 9)) { t[i].direct = 0; t[i].path += 9; }
        t[i].fd = open(t[i].path, O_RDONLY | (t[i].direct ? O_DIRECT : 0));
        if (t[i].fd < 0) {
            fprintf(stderr, "readlat: open %s%s: %s\n", t[i].path, t[i].direct ? " (O_DIRECT)" : "", strerror(errno));
            return 1;
        }
        struct stat st;
        if (fstat(t[i].fd, &st) < 0) { perror("fstat"); return 1; }
        if (file_size >= 0 && st.st_size != file_size) {
            fprintf(stderr, "readlat: the files differ in size\n");
            return 1;
        }
        file_size = st.st_size;
        t[i].lat = malloc(sizeof(double) * n);
        if (!t[i].lat) { perror("malloc"); return 1; }
    }
    if (file_size < size) { fprintf(stderr, "readlat: the file is smaller than one read\n"); return 1; }

    uint64_t slots;
    uint64_t *offs = NULL;
    if (ref) {
        offs = data_offsets(ref, file_size, size, grain, &slots);
        if (slots == 0) { fprintf(stderr, "readlat: no read of %lld bytes avoids the zero blocks\n", size); return 1; }
    } else {
        slots = (uint64_t)(file_size / size);
    }
    /* The offsets, drawn once: every file reads the same ones in the same order. */
    off_t *at = malloc(sizeof(off_t) * (warmup + n));
    if (!at) { perror("malloc"); return 1; }
    rng_state = seed;
    for (long i = 0; i < warmup + n; i++) {
        uint64_t slot = next_random() % slots;
        at[i] = offs ? (off_t)offs[slot] : (off_t)(slot * size);
    }

    void *buf;
    if (posix_memalign(&buf, 4096, size) != 0) { perror("posix_memalign"); return 1; }
    memset(buf, 1, size); /* fault the buffer in before timing */

    /* Warm-up reads [-W, 0), then measured ones [0, N): rounds of BLOCK reads per file, the first file rotating. */
    long phases[2][2] = { { -warmup, 0 }, { 0, n } };
    long round = 0;
    for (int p = 0; p < 2; p++) {
        for (long first = phases[p][0]; first < phases[p][1]; first += block, round++) {
            long end = first + block < phases[p][1] ? first + block : phases[p][1];
            for (int j = 0; j < k; j++) {
                struct target *x = &t[(round + j) % k];
                for (long i = first; i < end; i++) {
                    off_t off = at[i + warmup];
                    double t0 = now_us();
                    ssize_t got = pread(x->fd, buf, size, off);
                    double t1 = now_us();
                    if (got != size) {
                        fprintf(stderr, "readlat: %s: pread of %lld at %lld returned %zd%s%s\n", x->path, size,
                                (long long)off, got, got < 0 ? ": " : "", got < 0 ? strerror(errno) : "");
                        return 1;
                    }
                    if (i >= 0) { x->lat[i] = t1 - t0; x->sum += t1 - t0; }
                }
            }
        }
    }
    long p99 = (long)(n * 0.99);
    if (p99 >= n) p99 = n - 1;
    for (int i = 0; i < k; i++) {
        close(t[i].fd);
        qsort(t[i].lat, n, sizeof(double), cmp_double);
        printf("{\"file\": \"%s\", \"size\": %lld, \"direct\": %s, \"n\": %ld, \"warmup\": %ld, \"seed\": %llu, "
               "\"offsets\": %llu, \"files\": %d, \"block\": %ld, \"p50Us\": %.2f, \"p99Us\": %.2f, \"meanUs\": %.2f, "
               "\"minUs\": %.2f, \"maxUs\": %.2f}\n",
               t[i].path, size, t[i].direct ? "true" : "false", n, warmup, (unsigned long long)seed,
               (unsigned long long)slots, k, block, t[i].lat[n / 2], t[i].lat[p99], t[i].sum / n, t[i].lat[0],
               t[i].lat[n - 1]);
    }
    return 0;
}
