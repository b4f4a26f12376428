/* --script FILE: replays scripts of guest-memory operations on several vCPU threads and checks every page read
 * against a model of what the guest must see, the way Firecracker's (and QEMU's) guests use their memory.
 *
 * Format: one step a line, '#' starts a comment. A line is one or more ops separated by '|'; the ops of a line run
 * at once, op i on vCPU thread i, with a barrier after the line. Pages are pages of the memory file (offset/4096):
 *   read S N       touch and read pages S..S+N-1, each compared with the model
 *   write S N V    fill each page with a pattern seeded by (page, V)
 *   free S N       madvise(MADV_DONTNEED): the handler gets UFFD_EVENT_REMOVE; the guest then reads zeros
 *   remap S N      mmap(MAP_FIXED|MAP_PRIVATE|MAP_ANONYMOUS) over the range (Firecracker's balloon up to 1.10): no
 *                  longer registered with the uffd; zeros, served by the kernel
 *   drop-uffd      the VMM closes its copy of the uffd (Firecracker does after the handshake)
 *   pause MS       sleep
 * A line "---" separates scripts. Each script is a separate restore: fresh guest memory, a fresh uffd, a new
 * connection and handshake, then everything unmapped and closed. By default each runs in a child process, as each
 * Firecracker restore is its own process (a handler learns the VM is gone from its pidfd). The ops of one line
 * must touch disjoint pages: the model is then deterministic.
 *
 * Model per page: SNAPSHOT (the image's bytes) until written, freed or remapped; ZERO after free/remap; WRITTEN(V)
 * after a write. Prints one JSON line per script; exit 0 only when every script read every page right. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "vmm.h"

enum op_kind { OP_READ, OP_WRITE, OP_FREE, OP_REMAP, OP_DROP_UFFD, OP_PAUSE };
static const char *const op_names[] = { "read", "write", "free", "remap", "drop-uffd", "pause" };

struct op { enum op_kind kind; uint64_t start, count; uint32_t value; };
struct line { struct op *ops; int nops; };
struct script { struct line *lines; int nlines, nops, widest; };

enum page_kind { PK_SNAPSHOT, PK_ZERO, PK_WRITTEN };

#define MAX_REPORTS 5
#define FIRST_BAD_MAX 320

/* What a script did so far; in shared memory, so the parent can report a child that was killed or timed out. */
struct progress {
    int script, ops, step;
    size_t reads, bad;
    uint64_t elapsed_us;
    int has_first_bad;
    char first_bad[FIRST_BAD_MAX];
};

struct run {
    const struct script_config *cfg;
    struct guest g;
    const struct script *s;
    uint8_t *kind;          /* per page: enum page_kind */
    uint32_t *value;        /* per page: V of WRITTEN */
    int64_t *last_written;  /* per page: the last V written, even if freed since; -1: never */
    int uffd;               /* the VMM's copy; -1 once dropped */
    struct progress *prog;
    pthread_mutex_t lock;
    pthread_barrier_t start, done;
    const struct line *current;
    int quit;
};

static struct progress *g_progress;

/* --- async-signal-safe formatting (the timeout handler prints the result line) --- */

struct out { char *p; size_t left; };

static void put_s(struct out *o, const char *s)
{
    while (*s && o->left > 1) { *o->p++ = *s++; o->left--; }
    *o->p = 0;
}

static void put_u(struct out *o, uint64_t v)
{
    char digits[24];
    int n = 0;
    do { digits[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    char s[24];
    for (int i = 0; i < n; i++) s[i] = digits[n - 1 - i];
    s[n] = 0;
    put_s(o, s);
}

static size_t format_result(char *buf, size_t size, const struct progress *p, const char *error)
{
    struct out o = { buf, size };
    put_s(&o, "{\"script\":"); put_u(&o, (uint64_t)p->script);
    put_s(&o, ",\"ops\":"); put_u(&o, (uint64_t)p->ops);
    put_s(&o, ",\"reads\":"); put_u(&o, p->reads);
    put_s(&o, ",\"bad\":"); put_u(&o, p->bad);
    put_s(&o, ",\"firstBad\":");
    if (p->has_first_bad) { put_s(&o, "\""); put_s(&o, p->first_bad); put_s(&o, "\""); }
    else put_s(&o, "null");
    put_s(&o, ",\"elapsedUs\":"); put_u(&o, p->elapsed_us);
    if (error) {
        put_s(&o, ",\"error\":\""); put_s(&o, error);
        put_s(&o, "\",\"step\":"); put_u(&o, (uint64_t)p->step);
    }
    put_s(&o, "}\n");
    return (size_t)(o.p - buf);
}

static void on_script_alarm(int sig)
{
    (void)sig;
    char buf[640];
    size_t n = format_result(buf, sizeof buf, g_progress,
                             "timed out: guest memory was not served before --timeout");
    (void)!write(1, buf, n);
    _exit(3);
}

static uint64_t now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000ULL + (uint64_t)t.tv_nsec / 1000;
}

/* --- parsing --- */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r')) *--e = 0;
    return s;
}

static int parse_op(char *text, struct op *op, uint64_t pages, const char *path, int lineno)
{
    char name[16];
    unsigned long long a = 0, b = 0, c = 0;
    int n = sscanf(text, "%15s %llu %llu %llu", name, &a, &b, &c);
    int k;
    for (k = 0; k < (int)(sizeof op_names / sizeof op_names[0]); k++) if (n >= 1 && !strcmp(name, op_names[k])) break;
    static const int argc[] = { 2, 3, 2, 2, 0, 1 };
    if (n < 1 || k == (int)(sizeof op_names / sizeof op_names[0])) {
        fprintf(stderr, "%s:%d: unknown op '%s'\n", path, lineno, text);
        return -1;
    }
    if (n - 1 != argc[k]) {
        fprintf(stderr, "%s:%d: '%s' takes %d numbers\n", path, lineno, name, argc[k]);
        return -1;
    }
    *op = (struct op){ .kind = (enum op_kind)k, .start = a, .count = b, .value = (uint32_t)c };
    if (k == OP_PAUSE) { op->count = a; op->start = 0; }
    if (k <= OP_REMAP && (op->count == 0 || op->start >= pages || op->count > pages - op->start)) {
        fprintf(stderr, "%s:%d: pages %llu..%llu are outside guest memory (%lu pages)\n", path, lineno, a,
                a + b - 1, (unsigned long)pages);
        return -1;
    }
    return 0;
}

static struct script *parse_file(const char *path, uint64_t pages, int *count)
{
    FILE *f = fopen(path, "r");
    if (!f) { perror(path); return NULL; }
    int cap = 16, n = 1;
    struct script *scripts = calloc((size_t)cap, sizeof *scripts);
    char buf[4096];
    int lineno = 0;
    while (fgets(buf, sizeof buf, f)) {
        lineno++;
        char *hash = strchr(buf, '#');
        if (hash) *hash = 0;
        char *t = trim(buf);
        if (!*t) continue;
        if (!strcmp(t, "---")) {
            if (n == cap) scripts = realloc(scripts, (size_t)(cap *= 2) * sizeof *scripts);
            scripts[n++] = (struct script){ 0 };
            continue;
        }
        struct script *s = &scripts[n - 1];
        if ((s->nlines & (s->nlines - 1)) == 0)
            s->lines = realloc(s->lines, (size_t)(s->nlines ? s->nlines * 2 : 1) * sizeof *s->lines);
        struct line *l = &s->lines[s->nlines++];
        *l = (struct line){ 0 };
        for (char *save = NULL, *part = strtok_r(t, "|", &save); part; part = strtok_r(NULL, "|", &save)) {
            l->ops = realloc(l->ops, (size_t)(l->nops + 1) * sizeof *l->ops);
            if (parse_op(trim(part), &l->ops[l->nops], pages, path, lineno) < 0) { fclose(f); return NULL; }
            l->nops++;
        }
        s->nops += l->nops;
        if (l->nops > s->widest) s->widest = l->nops;
    }
    fclose(f);
    *count = n;
    return scripts;
}

/* --- the model --- */

/* The bytes a write of V puts in a page: a pattern seeded by (page, V), different in every 8-byte word. */
static void fill(uint8_t *buf, uint64_t page, uint32_t v)
{
    uint64_t s = page * 0x100000001B3ULL ^ ((uint64_t)v << 40) ^ 0x5EED;
    for (size_t i = 0; i < PAGE; i += 8) {
        uint64_t w = splitmix(&s);
        memcpy(buf + i, &w, 8);
    }
}

static const uint8_t zero_page[PAGE];

static const uint8_t *snapshot_page(const struct guest *g, uint64_t page, uint8_t *scratch)
{
    uint64_t off = page * PAGE;
    if (off + PAGE <= g->image_size) return g->image + off;
    memset(scratch, 0, PAGE);
    if (off < g->image_size) memcpy(scratch, g->image + off, g->image_size - off);
    return scratch;
}

static const uint8_t *expected(const struct run *r, uint64_t page, uint8_t *scratch)
{
    switch (r->kind[page]) {
    case PK_ZERO: return zero_page;
    case PK_WRITTEN: fill(scratch, page, r->value[page]); return scratch;
    default: return snapshot_page(&r->g, page, scratch);
    }
}

static void op_text(const struct op *op, char *buf, size_t n)
{
    switch (op->kind) {
    case OP_WRITE:
        snprintf(buf, n, "write %lu %lu %u", (unsigned long)op->start, (unsigned long)op->count, op->value);
        break;
    case OP_DROP_UFFD: snprintf(buf, n, "drop-uffd"); break;
    case OP_PAUSE: snprintf(buf, n, "pause %lu", (unsigned long)op->count); break;
    default:
        snprintf(buf, n, "%s %lu %lu", op_names[op->kind], (unsigned long)op->start, (unsigned long)op->count);
    }
}

/* Names what a wrong page holds: zeros, the snapshot's bytes (its own or another page's), a write, or other. */
static void describe_found(const struct run *r, uint64_t page, const uint8_t *p, const uint8_t *want, char *buf,
                           size_t n)
{
    static __thread uint8_t scratch[PAGE];
    if (!memcmp(p, zero_page, PAGE)) { snprintf(buf, n, "zeros"); return; }
    if (!memcmp(p, snapshot_page(&r->g, page, scratch), PAGE)) { snprintf(buf, n, "snapshot bytes"); return; }
    if (r->last_written[page] >= 0) {
        fill(scratch, page, (uint32_t)r->last_written[page]);
        if (!memcmp(p, scratch, PAGE)) {
            snprintf(buf, n, "written %lu (stale)", (unsigned long)r->last_written[page]);
            return;
        }
    }
    uint64_t image_pages = r->g.image_size / PAGE;
    for (uint64_t q = 0; q < image_pages && q < (1u << 16); q++)
        if (q != page && !memcmp(p, r->g.image + q * PAGE, PAGE)) {
            snprintf(buf, n, "snapshot bytes of page %lu", (unsigned long)q);
            return;
        }
    size_t differ = 0, first = PAGE;
    for (size_t i = 0; i < PAGE; i++)
        if (p[i] != want[i]) { differ++; if (first == PAGE) first = i; }
    snprintf(buf, n, "other (%zu bytes differ, the first at byte %zu)", differ, first);
}

static void report(struct run *r, const char *what)
{
    pthread_mutex_lock(&r->lock);
    size_t bad = r->prog->bad++;
    if (!r->prog->has_first_bad) {
        snprintf(r->prog->first_bad, sizeof r->prog->first_bad, "%s", what);
        r->prog->has_first_bad = 1;
    }
    if (bad < MAX_REPORTS) fprintf(stderr, "script %d: %s\n", r->prog->script, what);
    pthread_mutex_unlock(&r->lock);
}

/* The host address of page p and how many of the n pages from p follow it in one region (one host mapping). */
static uint8_t *run_at(const struct guest *g, uint64_t p, uint64_t n, uint64_t *len)
{
    uint64_t off = p * PAGE;
    for (int i = 0; i < g->nregions; i++) {
        const struct region *rg = &g->regions[i];
        if (off >= rg->offset && off < rg->offset + rg->size) {
            uint64_t left = (rg->offset + rg->size - off) / PAGE;
            *len = n < left ? n : left;
            return rg->base + (off - rg->offset);
        }
    }
    *len = n;
    return NULL;
}

static void run_op(struct run *r, int step, const struct op *op)
{
    static __thread uint8_t scratch[PAGE];
    char text[64], what[FIRST_BAD_MAX];
    uint64_t end = op->start + op->count;
    switch (op->kind) {
    case OP_READ:
        for (uint64_t page = op->start; page < end; page++) {
            uint8_t *p = guest_addr(&r->g, page * PAGE);
            volatile uint8_t touch = *(volatile uint8_t *)p;
            (void)touch;
            const uint8_t *want = expected(r, page, scratch);
            __atomic_fetch_add(&r->prog->reads, 1, __ATOMIC_RELAXED);
            if (!memcmp(p, want, PAGE)) continue;
            char found[96];
            describe_found(r, page, p, want, found, sizeof found);
            char kind[32];
            if (r->kind[page] == PK_WRITTEN) snprintf(kind, sizeof kind, "written %u", r->value[page]);
            else snprintf(kind, sizeof kind, "%s", r->kind[page] == PK_ZERO ? "zero" : "snapshot");
            op_text(op, text, sizeof text);
            snprintf(what, sizeof what, "step %d (%s): page %lu: expected %s, found %s", step, text,
                     (unsigned long)page, kind, found);
            report(r, what);
        }
        break;
    case OP_WRITE:
        for (uint64_t page = op->start; page < end; page++) {
            fill(scratch, page, op->value);
            memcpy(guest_addr(&r->g, page * PAGE), scratch, PAGE);
            r->kind[page] = PK_WRITTEN;
            r->value[page] = op->value;
            r->last_written[page] = op->value;
        }
        break;
    case OP_FREE:
    case OP_REMAP:
        for (uint64_t page = op->start, len; page < end; page += len) {
            uint8_t *p = run_at(&r->g, page, end - page, &len);
            int failed = op->kind == OP_FREE
                ? madvise(p, len * PAGE, MADV_DONTNEED) != 0
                : mmap(p, len * PAGE, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                       -1, 0) == MAP_FAILED;
            if (failed) {
                op_text(op, text, sizeof text);
                snprintf(what, sizeof what, "step %d (%s): %s failed: %s", step, text,
                         op->kind == OP_FREE ? "madvise" : "mmap", strerror(errno));
                report(r, what);
            }
        }
        for (uint64_t page = op->start; page < end; page++) r->kind[page] = PK_ZERO;
        break;
    case OP_DROP_UFFD: {
        int fd = __atomic_exchange_n(&r->uffd, -1, __ATOMIC_SEQ_CST);
        if (fd >= 0) close(fd);
        break;
    }
    case OP_PAUSE:
        usleep((useconds_t)(op->count * 1000));
        break;
    }
}

struct vcpu { struct run *run; int id; };

static void *vcpu_run(void *arg)
{
    struct vcpu *v = arg;
    struct run *r = v->run;
    for (;;) {
        pthread_barrier_wait(&r->start);
        if (r->quit) return NULL;
        const struct line *l = r->current;
        if (v->id < l->nops) run_op(r, r->prog->step, &l->ops[v->id]);
        pthread_barrier_wait(&r->done);
    }
}

static void arm_timer(double seconds)
{
    struct itimerval t = { 0 };
    t.it_value.tv_sec = (time_t)seconds;
    t.it_value.tv_usec = (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6);
    setitimer(ITIMER_REAL, &t, NULL);
}

/* One restore: map, hand over, replay, verify, unmap and close. Returns 0 when right, 1 when a page was wrong,
 * 2 when the restore could not be set up. */
static int run_one(const struct script_config *cfg, const struct guest *image, const struct script *s)
{
    struct run r = { .cfg = cfg, .s = s, .uffd = -1, .prog = g_progress };
    r.g.image = image->image;
    r.g.image_size = image->image_size;
    if (guest_map(&r.g, cfg->sizes, cfg->gaps, cfg->nregions) < 0) return 2;
    uint64_t pages = r.g.total / PAGE;
    r.kind = calloc(pages, 1);
    r.value = calloc(pages, sizeof *r.value);
    r.last_written = malloc(pages * sizeof *r.last_written);
    for (uint64_t i = 0; i < pages; i++) r.last_written[i] = -1;
    pthread_mutex_init(&r.lock, NULL);

    int sock = -1;
    if (cfg->mode == MODE_RESIDENT) {
        for (int i = 0; i < r.g.nregions; i++) {
            const struct region *rg = &r.g.regions[i];
            size_t n = rg->offset >= r.g.image_size ? 0 : r.g.image_size - rg->offset;
            memcpy(rg->base, r.g.image + rg->offset, n < rg->size ? n : rg->size);
        }
    } else {
        r.uffd = uffd_create_and_register(&r.g);
        if (r.uffd < 0) return 2;
        /* The minimal handler holds its own copy, as an external handler would: drop-uffd closes only ours. */
        if (cfg->mode == MODE_MINIMAL && minimal_handler_start(&r.g, dup(r.uffd)) != 0) return 2;
        if (cfg->mode == MODE_HANDLER && (sock = uffd_send_to_handler(&r.g, r.uffd, cfg->socket_path)) < 0) return 2;
    }

    int nthreads = s->widest > cfg->vcpus ? s->widest : cfg->vcpus;
    if (nthreads < 1) nthreads = 1;
    pthread_barrier_init(&r.start, NULL, (unsigned)nthreads + 1);
    pthread_barrier_init(&r.done, NULL, (unsigned)nthreads + 1);
    pthread_t *threads = calloc((size_t)nthreads, sizeof *threads);
    struct vcpu *vcpus = calloc((size_t)nthreads, sizeof *vcpus);
    for (int i = 0; i < nthreads; i++) {
        vcpus[i] = (struct vcpu){ .run = &r, .id = i };
        if (pthread_create(&threads[i], NULL, vcpu_run, &vcpus[i]) != 0) { perror("pthread_create"); return 2; }
    }

    uint64_t t0 = now_us();
    for (int i = 0; i < s->nlines; i++) {
        r.current = &s->lines[i];
        r.prog->step = i + 1;
        pthread_barrier_wait(&r.start);
        pthread_barrier_wait(&r.done);
        r.prog->elapsed_us = now_us() - t0;
    }
    r.prog->elapsed_us = now_us() - t0;
    r.quit = 1;
    pthread_barrier_wait(&r.start);
    for (int i = 0; i < nthreads; i++) pthread_join(threads[i], NULL);
    if (cfg->timeout > 0) arm_timer(0);

    if (cfg->mode == MODE_MINIMAL) minimal_handler_stop();
    if (r.uffd >= 0) close(r.uffd);
    if (sock >= 0) close(sock);
    guest_unmap(&r.g);
    pthread_barrier_destroy(&r.start);
    pthread_barrier_destroy(&r.done);
    free(threads);
    free(vcpus);
    free(r.kind);
    free(r.value);
    free(r.last_written);
    return r.prog->bad ? 1 : 0;
}

static int pidfd_open(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Waits for a script's child; past the limit (its own timer failed to end it) it is killed. */
static int wait_child(pid_t pid, double limit, const char **error)
{
    int fd = pidfd_open(pid);
    if (fd >= 0) {
        int ms = limit > 0 ? (int)(limit * 1000) : -1;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int n;
        while ((n = poll(&p, 1, ms)) < 0 && errno == EINTR) { }
        if (n == 0) { kill(pid, SIGKILL); *error = "timed out: killed after --timeout"; }
        close(fd);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) { }
    if (*error) return 3;
    if (WIFSIGNALED(status)) {
        static char buf[48];
        snprintf(buf, sizeof buf, "killed by signal %d", WTERMSIG(status));
        *error = buf;
        return 1;
    }
    int code = WEXITSTATUS(status);
    if (code == 3 && !*error) *error = ""; /* the child printed its timeout itself */
    if (code == 2 && !*error) *error = "the restore could not be set up";
    return code;
}

int script_main(const struct script_config *cfg, const struct guest *image, const char *path)
{
    uint64_t total = 0;
    for (int i = 0; i < cfg->nregions; i++) total += cfg->sizes[i];
    int count = 0;
    struct script *scripts = parse_file(path, total / PAGE, &count);
    if (!scripts) return 2;
    g_progress = mmap(NULL, sizeof *g_progress, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (g_progress == MAP_FAILED) { perror("mmap"); return 2; }
    if (cfg->timeout > 0) signal(SIGALRM, on_script_alarm);

    int worst = 0, failures = 0;
    for (int i = 0; i < count; i++) {
        *g_progress = (struct progress){ .script = i, .ops = scripts[i].nops };
        const char *error = NULL;
        int rc;
        if (cfg->fork) {
            fflush(stdout);
            fflush(stderr);
            pid_t pid = fork();
            if (pid < 0) { perror("fork"); return 2; }
            if (pid == 0) {
                if (cfg->timeout > 0) arm_timer(cfg->timeout);
                _exit(run_one(cfg, image, &scripts[i]));
            }
            rc = wait_child(pid, cfg->timeout > 0 ? cfg->timeout + 5 : 0, &error);
        } else {
            if (cfg->timeout > 0) arm_timer(cfg->timeout);
            rc = run_one(cfg, image, &scripts[i]);
            if (rc == 2) error = "the restore could not be set up";
        }
        if (!error || *error) {
            char buf[640];
            size_t n = format_result(buf, sizeof buf, g_progress, error);
            fwrite(buf, 1, n, stdout);
            fflush(stdout);
        }
        int rank = rc == 3 ? 3 : rc == 2 ? 2 : rc != 0 || g_progress->bad ? 1 : 0;
        if (rank > worst) worst = rank;
        if (rank && cfg->max_failures > 0 && ++failures >= cfg->max_failures) break;
    }
    return worst;
}
