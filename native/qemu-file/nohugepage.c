/* libsnap-nohugepage.so: makes qemu-system-x86_64 map its guest RAM file as Firecracker's `File` memory backend
 * does: without MADV_HUGEPAGE. QEMU advises every RAM block MADV_HUGEPAGE; on a file mapping the kernel then
 * answers each page fault by reading the two 2 MiB-aligned blocks around it, whatever the file system's
 * read-ahead (mm/filemap.c, do_sync_mmap_readahead), so a lazily served memory file is read 4 MiB per fault.
 * Firecracker gives no such advice. Only that advice is dropped; every other madvise passes through.
 * Used through native/bin/qemu-file, which sets LD_PRELOAD for QEMU alone. See docs/chunkfs.md. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <sys/mman.h>

int madvise(void *addr, size_t length, int advice)
{
    static int (*real)(void *, size_t, int);
    if (advice == MADV_HUGEPAGE) return 0;
    if (!real) real = (int (*)(void *, size_t, int))dlsym(RTLD_NEXT, "madvise");
    return real(addr, length, advice);
}
