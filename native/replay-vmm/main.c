/* replay-vmm: maps guest memory, hands it to a page-fault handler exactly as Firecracker does (or fills it
 * itself, or maps a restore's memory file as a file-backed VMM does), replays a page-access trace, and verifies every page it touched against the memory file.
 * Prints one JSON object; exit 0 only when every page was right. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include "vmm.h"

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

static size_t parse_size(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    switch (*end) { case 'K': case 'k': v *= 1024; break; case 'M': case 'm': v *= 1 << 20; break; case 'G': case 'g': v *= 1 << 30; break; }
    return (size_t)v;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "{\"error\":\"timed out: guest memory was not served before --timeout\"}\n";
    (void)!write(1, msg, sizeof msg - 1);
    _exit(3);
}

/* The balloon: a second vCPU-like thread that frees and re-touches the last pages of guest memory while the
 * main thread replays, so REMOVE events race with page faults in the handler. */
struct balloon { struct guest *g; size_t pages, iterations, bad; };

static void *balloon_run(void *arg)
{
    struct balloon *b = arg;
    static const uint8_t zero[PAGE];
    uint64_t first = b->g->total - b->pages * PAGE;
    for (size_t i = 0; i < b->pages; i++) {
        uint8_t *p = guest_addr(b->g, first + i * PAGE);
        volatile uint8_t x = *(volatile uint8_t *)p; (void)x;
        if (first + (i + 1) * PAGE <= b->g->image_size && memcmp(p, b->g->image + first + i * PAGE, PAGE)) b->bad++;
    }
    for (size_t it = 0; it < b->iterations; it++)
        for (size_t i = 0; i < b->pages; i++) {
            uint8_t *p = guest_addr(b->g, first + i * PAGE);
            if (madvise(p, PAGE, MADV_DONTNEED) != 0) { b->bad++; continue; }
            volatile uint8_t x = *(volatile uint8_t *)p; (void)x;
            if (memcmp(p, zero, PAGE)) b->bad++;
        }
    return NULL;
}

/* The replay, dealt round-robin to --vcpus threads that fault at once: thread i takes accesses i, i+N, ...; each
 * keeps the recorded gaps between its own accesses. */
struct replayer {
    struct guest *g;
    const struct access *trace;
    size_t count, stride;
    uint64_t *lat;
    int no_gaps, sleep_gaps;
    pthread_barrier_t go;
};
struct replay_thread { struct replayer *rp; size_t first; };

static void *replay_run(void *arg)
{
    struct replay_thread *t = arg;
    struct replayer *rp = t->rp;
    volatile uint8_t sink = 0;
    pthread_barrier_wait(&rp->go);
    uint64_t last = now_ns();
    for (size_t i = t->first; i < rp->count; i += rp->stride) {
        if (!rp->no_gaps && rp->trace[i].gap_us) {
            uint64_t until = last + (uint64_t)rp->trace[i].gap_us * 1000;
            if (rp->sleep_gaps) {
                struct timespec ts = { (time_t)(until / 1000000000ULL), (long)(until % 1000000000ULL) };
                while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) { }
            }
            while (now_ns() < until) { }
        }
        uint8_t *p = guest_addr(rp->g, rp->trace[i].offset);
        uint64_t t0 = now_ns();
        sink ^= *(volatile uint8_t *)p;
        last = now_ns();
        rp->lat[i] = last - t0;
    }
    (void)sink;
    return NULL;
}

static void usage(void)
{
    fprintf(stderr,
        "usage: replay-vmm --image FILE [--socket PATH] [--trace LOG | --touch all | --touch random:COUNT:SEED]\n"
        "                  [--mode handler|resident|minimal|file] [--memory PATH] [--regions SIZE[,GAP,SIZE]]\n"
        "                  [--remove COUNT]\n"
        "                  [--no-gaps | --sleep-gaps] [--timeout SEC] [--balloon PAGES:ITERATIONS] [--vcpus N]\n"
        "                  [--latencies FILE]\n"
        "       replay-vmm --image FILE --script FILE [--socket PATH] [--mode handler|resident|minimal]\n"
        "                  [--regions ...] [--vcpus N] [--timeout SEC] [--no-fork] [--fail-fast | --max-failures N]\n"
        "  --mode file   guest memory is --memory PATH (a restore's memory file) mapped MAP_PRIVATE, as QEMU's\n"
        "                memory-backend-file share=off and Firecracker's File backend do; no uffd, no --socket\n"
        "  --sleep-gaps  sleep through a trace's gaps instead of spinning (idle vCPUs leave the CPUs free)\n"
        "  --vcpus N     trace/touch: the accesses dealt round-robin to N threads faulting at once;\n"
        "                script: at least N vCPU threads (a line of K ops needs K)\n"
        "  --timeout SEC fractions allowed; a whole run, or each script with --script (exit 3 when hit)\n"
        "  --no-fork     run every script in this process (default: one child process per script, like\n"
        "                one Firecracker process per restore)\n"
        "  --fail-fast   stop after the first script that is not right (--max-failures 1)\n"
        "  --latencies FILE  trace/touch: every access's latency (ns, one uint64 little-endian each, in trace\n"
        "                order) written to FILE (snapbench's fault-latency histograms)\n"
        "  See script.c for the script format.\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *image_path = NULL, *socket_path = NULL, *trace_path = NULL, *touch = "all", *mode = "handler", *regions_arg = NULL;
    size_t remove_count = 0;
    const char *script_path = NULL, *latencies_path = NULL, *memory_path = NULL;
    int no_gaps = 0, sleep_gaps = 0, vcpus = 1, no_fork = 0, max_failures = 0;
    double timeout = 0;
    struct balloon balloon = { 0 };
    static struct option opts[] = {
        { "image", 1, 0, 'i' }, { "socket", 1, 0, 's' }, { "trace", 1, 0, 't' }, { "touch", 1, 0, 'T' },
        { "mode", 1, 0, 'm' }, { "regions", 1, 0, 'r' }, { "remove", 1, 0, 'R' }, { "no-gaps", 0, 0, 'g' },
        { "sleep-gaps", 0, 0, 'G' },
        { "timeout", 1, 0, 'o' }, { "balloon", 1, 0, 'b' }, { "script", 1, 0, 'S' }, { "vcpus", 1, 0, 'v' },
        { "no-fork", 0, 0, 'F' }, { "fail-fast", 0, 0, 'f' }, { "max-failures", 1, 0, 'M' },
        { "latencies", 1, 0, 'L' }, { "memory", 1, 0, 'y' }, { 0, 0, 0, 0 },
    };
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (c) {
        case 'i': image_path = optarg; break;
        case 's': socket_path = optarg; break;
        case 't': trace_path = optarg; break;
        case 'T': touch = optarg; break;
        case 'm': mode = optarg; break;
        case 'r': regions_arg = optarg; break;
        case 'R': remove_count = strtoul(optarg, NULL, 10); break;
        case 'g': no_gaps = 1; break;
        case 'G': sleep_gaps = 1; break; /* checked against --no-gaps below */
        case 'o': timeout = atof(optarg); break;
        case 'S': script_path = optarg; break;
        case 'v': vcpus = atoi(optarg); if (vcpus < 1) usage(); break;
        case 'F': no_fork = 1; break;
        case 'f': max_failures = 1; break;
        case 'M': max_failures = atoi(optarg); break;
        case 'L': latencies_path = optarg; break;
        case 'y': memory_path = optarg; break;
        case 'b': balloon.pages = strtoul(optarg, NULL, 10);
                  balloon.iterations = strchr(optarg, ':') ? strtoul(strchr(optarg, ':') + 1, NULL, 10) : 1; break;
        default: usage();
        }
    }
    if (!image_path) usage();
    if (no_gaps && sleep_gaps) { fprintf(stderr, "--no-gaps and --sleep-gaps exclude each other\n"); return 2; }
    int handler = !strcmp(mode, "handler"), resident = !strcmp(mode, "resident"), minimal = !strcmp(mode, "minimal");
    int file = !strcmp(mode, "file");
    if (!handler && !resident && !minimal && !file) usage();
    if (handler && !socket_path) { fprintf(stderr, "--mode handler needs --socket\n"); return 2; }
    if (file != !!memory_path) { fprintf(stderr, "--memory goes with --mode file, and it needs one\n"); return 2; }
    /* A page freed from a private file mapping comes back as the file's page, not zeros: the zero checks of
     * --remove and --balloon, and the script model, are a uffd VM's. */
    if (file && (script_path || remove_count || balloon.pages)) {
        fprintf(stderr, "--mode file takes --touch or --trace only (no --script, --remove, --balloon)\n");
        return 2;
    }
    if (timeout > 0 && !script_path) {
        signal(SIGALRM, on_alarm);
        struct itimerval t = { .it_value = { .tv_sec = (time_t)timeout,
                                             .tv_usec = (suseconds_t)((timeout - (double)(time_t)timeout) * 1e6) } };
        setitimer(ITIMER_REAL, &t, NULL);
    }

    struct guest g = { 0 };
    int fd = open(image_path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) { perror(image_path); return 2; }
    g.image_size = (size_t)st.st_size;
    g.image = mmap(NULL, g.image_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (g.image == MAP_FAILED) { perror("mmap image"); return 2; }

    size_t sizes[MAX_REGIONS] = { g.image_size }, gaps[MAX_REGIONS] = { 0 };
    int nregions = 1;
    if (regions_arg) {
        char *copy = strdup(regions_arg), *a = strtok(copy, ","), *b = strtok(NULL, ","), *c = strtok(NULL, ",");
        sizes[0] = parse_size(a);
        if (b && c) { gaps[0] = parse_size(b); sizes[1] = parse_size(c); nregions = 2; }
        else if (b) usage();
    }
    if (script_path) {
        struct script_config cfg = {
            .image_path = image_path, .socket_path = socket_path,
            .mode = handler ? MODE_HANDLER : resident ? MODE_RESIDENT : MODE_MINIMAL,
            .sizes = sizes, .gaps = gaps, .nregions = nregions, .vcpus = vcpus, .timeout = timeout,
            .fork = !no_fork, .max_failures = max_failures,
        };
        return script_main(&cfg, &g, script_path);
    }
    if ((file ? guest_map_file(&g, sizes, gaps, nregions, memory_path) : guest_map(&g, sizes, gaps, nregions)) < 0)
        return 2;

    size_t count = 0;
    struct access *trace;
    if (trace_path) trace = trace_load(trace_path, &count, &g);
    else if (!strcmp(touch, "all")) trace = trace_all(&g, &count);
    else if (!strncmp(touch, "random:", 7)) {
        char *end;
        size_t n = strtoul(touch + 7, &end, 10);
        uint64_t seed = *end == ':' ? strtoull(end + 1, NULL, 10) : 1;
        trace = trace_random(&g, n, seed);
        count = n < g.total / PAGE ? n : g.total / PAGE;
    } else usage();
    if (!trace) return 2;

    int uffd = -1;
    if (resident) {
        for (int i = 0; i < g.nregions; i++) {
            size_t n = g.regions[i].size;
            if (g.regions[i].offset + n > g.image_size) n = g.regions[i].offset < g.image_size ? g.image_size - g.regions[i].offset : 0;
            memcpy(g.regions[i].base, g.image + g.regions[i].offset, n);
        }
    } else if (!file) {
        uffd = uffd_create_and_register(&g);
        if (uffd < 0) return 2;
        if (minimal && minimal_handler_start(&g, uffd) != 0) return 2;
        if (handler && uffd_send_to_handler(&g, uffd, socket_path) < 0) return 2;
    }

    /* The balloon's pages are its own: the replay skips them. */
    uint64_t balloon_first = g.total - balloon.pages * PAGE;
    if (balloon.pages) {
        size_t kept = 0;
        for (size_t i = 0; i < count; i++) if (trace[i].offset < balloon_first) trace[kept++] = trace[i];
        count = kept;
    }
    pthread_t balloon_thread;
    balloon.g = &g;
    if (balloon.pages && pthread_create(&balloon_thread, NULL, balloon_run, &balloon) != 0) { perror("pthread_create"); return 2; }

    uint64_t *lat = malloc((count ? count : 1) * sizeof *lat);
    volatile uint8_t sink = 0;
    struct replayer rp = { .g = &g, .trace = trace, .count = count, .lat = lat, .stride = (size_t)vcpus,
                           .no_gaps = no_gaps, .sleep_gaps = sleep_gaps };
    pthread_t *threads = calloc((size_t)vcpus, sizeof *threads);
    struct replay_thread *rts = calloc((size_t)vcpus, sizeof *rts);
    pthread_barrier_init(&rp.go, NULL, (unsigned)vcpus);
    uint64_t start = now_ns();
    for (int i = 1; i < vcpus; i++) {
        rts[i] = (struct replay_thread){ .rp = &rp, .first = (size_t)i };
        if (pthread_create(&threads[i], NULL, replay_run, &rts[i]) != 0) { perror("pthread_create"); return 2; }
    }
    rts[0] = (struct replay_thread){ .rp = &rp, .first = 0 };
    replay_run(&rts[0]);
    for (int i = 1; i < vcpus; i++) pthread_join(threads[i], NULL);
    uint64_t elapsed = now_ns() - start;
    free(threads);
    free(rts);
    if (balloon.pages) pthread_join(balloon_thread, NULL);

    size_t bad = 0;
    for (size_t i = 0; i < count; i++) {
        const uint8_t *p = guest_addr(&g, trace[i].offset);
        int ok = trace[i].offset + PAGE <= g.image_size ? !memcmp(p, g.image + trace[i].offset, PAGE) : 0;
        if (!ok) {
            if (bad < 5) fprintf(stderr, "bad page at offset %lu\n", (unsigned long)trace[i].offset);
            bad++;
        }
    }

    /* Balloon-style removal: Firecracker's guest frees pages; the handler sees UFFD_EVENT_REMOVE and must
     * serve zeros on the next touch. */
    size_t removed = 0, removed_bad = 0;
    static const uint8_t zero[PAGE];
    for (size_t i = 0; i < remove_count && i < count; i++) {
        uint8_t *p = guest_addr(&g, trace[i].offset);
        if (madvise(p, PAGE, MADV_DONTNEED) != 0) { perror("madvise"); break; }
        removed++;
    }
    for (size_t i = 0; i < removed; i++) {
        uint8_t *p = guest_addr(&g, trace[i].offset);
        sink ^= *(volatile uint8_t *)p;
        if (memcmp(p, zero, PAGE)) removed_bad++;
    }

    /* Per vCPU (thread i took accesses i, i+N, ...): p50 and p99 of its own accesses, so that one vCPU's slow
     * faults show apart from the others' (head-of-line blocking). */
    size_t per_cap = (size_t)vcpus * 24 + 16; /* "%.2f," of a latency under 10^12 us fits 24 bytes */
    char *per_vcpu[3];
    size_t lens[3] = { 0 };
    for (int k = 0; k < 3; k++) { per_vcpu[k] = malloc(per_cap); per_vcpu[k][0] = 0; }
    uint64_t *mine = malloc((count / (size_t)vcpus + 1) * sizeof *mine);
    for (int v = 0; v < vcpus; v++) {
        size_t n = 0;
        for (size_t i = (size_t)v; i < count; i += (size_t)vcpus) mine[n++] = lat[i];
        qsort(mine, n, sizeof *mine, cmp_u64);
        double q[3] = { n ? mine[n / 2] / 1000.0 : 0, n ? mine[(size_t)(n * 0.99)] / 1000.0 : 0,
                        n ? mine[n - 1] / 1000.0 : 0 };
        for (int k = 0; k < 3; k++)
            lens[k] += (size_t)snprintf(per_vcpu[k] + lens[k], per_cap - lens[k], "%s%.2f", v ? "," : "", q[k]);
    }
    free(mine);

    if (latencies_path) {
        FILE *lf = fopen(latencies_path, "wb");
        if (!lf || fwrite(lat, sizeof *lat, count, lf) != count || fclose(lf) != 0) { perror(latencies_path); return 2; }
    }
    qsort(lat, count, sizeof *lat, cmp_u64);
    double p50 = count ? lat[count / 2] / 1000.0 : 0, p99 = count ? lat[(size_t)(count * 0.99)] / 1000.0 : 0;
    double max = count ? lat[count - 1] / 1000.0 : 0;
    printf("{\"mode\":\"%s\",\"vcpus\":%d,\"pages\":%zu,\"bad\":%zu,\"elapsedUs\":%.1f,\"p50Us\":%.2f,\"p99Us\":%.2f,\"maxUs\":%.2f,"
           "\"vcpuP50Us\":[%s],\"vcpuP99Us\":[%s],\"vcpuMaxUs\":[%s],"
           "\"removedPages\":%zu,\"removedBad\":%zu,\"balloonBad\":%zu}\n",
           mode, vcpus, count, bad, elapsed / 1000.0, p50, p99, max, per_vcpu[0], per_vcpu[1], per_vcpu[2],
           removed, removed_bad, balloon.bad);
    for (int k = 0; k < 3; k++) free(per_vcpu[k]);
    fflush(stdout);
    if (minimal) minimal_handler_stop();
    return bad || removed_bad || balloon.bad ? 1 : 0;
}
