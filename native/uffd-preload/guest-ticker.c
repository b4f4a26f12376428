/* guest-ticker: the smoke test's guest workload (PID 1's child in a busybox initramfs, built static by smoke.sh).
 * Fills N MiB with a pattern only its address determines, then every 500 ms checks one rotating 1 MiB slice and
 * prints "TICK n mono=S.MS bad=B": after a restore, bad=0 says the pages came back with their content (served
 * from a zero placeholder, a wrong or zero page would count), and mono (which stops while the VM is stopped)
 * says how long the guest itself waited for its memory. After each tick it also maps, fills, checks and unmaps
 * M MiB more (the second argument): memory the kernel hands out afresh, which after a balloon deflate includes
 * the pages the balloon gave back; its errors count in the next tick's bad. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64, words = (mib << 20) / 8, per_slice = (1 << 20) / 8;
    size_t churn = (argc > 2 ? strtoul(argv[2], NULL, 10) : 0) << 20, churn_bad = 0;
    uint64_t *p = malloc(mib << 20);
    if (!p) { printf("TICKER: malloc of %zu MiB failed\n", mib); return 1; }
    for (size_t i = 0; i < words; i++) p[i] = (i + 1) * 0x9E3779B97F4A7C15ull; /* never zero */
    printf("TICKER: filled %zu MiB\n", mib);
    fflush(stdout);
    for (unsigned long n = 0;; n++) {
        size_t first = (n % mib) * per_slice, bad = churn_bad;
        for (size_t i = first; i < first + per_slice; i++) bad += p[i] != (i + 1) * 0x9E3779B97F4A7C15ull;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        printf("TICK %lu mono=%ld.%03ld bad=%zu\n", n, (long)ts.tv_sec, ts.tv_nsec / 1000000, bad);
        fflush(stdout);
        churn_bad = 0;
        if (churn) { /* after the tick line: the first tick after a restore measures the restore alone */
            uint64_t *q = mmap(NULL, churn, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (q == MAP_FAILED) {
                churn_bad = 1;
            } else {
                for (size_t i = 0; i < churn / 8; i++) q[i] = (i + n + 1) * 0x9E3779B97F4A7C15ull;
                for (size_t i = 0; i < churn / 8; i++) churn_bad += q[i] != (i + n + 1) * 0x9E3779B97F4A7C15ull;
                munmap(q, churn);
            }
        }
        usleep(500000);
    }
}
