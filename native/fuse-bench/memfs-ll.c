/* memfs-ll: the libfuse3 peer of ChunkFs for benchmarks (bench/scripts/chunkfs-read-latency.sh). A libfuse3
 * low-level API server on the multithreaded loop, exposing one read-only file, MOUNTPOINT/NAME, whose bytes are
 * IMAGE loaded into memory at start; a read is answered with fuse_reply_buf straight from that memory (one writev,
 * as ChunkFs answers from its chunk buffers). It stands for the best a "libfuse3 through a thin shim" route could
 * do: a shim into C# would add a P/Invoke callback per request on top.
 * INIT as ChunkFs answers it where libfuse lets us choose: ASYNC_READ and PARALLEL_DIROPS only (no ASYNC_DIO, no
 * AUTO_INVAL_DATA, no splice), max_read and max_pages 1 MiB, max_readahead 128 KiB, max_background 64 and
 * congestion_threshold 48; the file opens with FOPEN_KEEP_CACHE; names and attributes are cached for an hour.
 * Runs until SIGTERM/SIGINT or an unmount, then unmounts; prints "memfs-ll: mounted ..." on stderr when the mount
 * is up. Usage: memfs-ll [--name NAME] [--threads N] IMAGE MOUNTPOINT */
#define FUSE_USE_VERSION 312
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FILE_INO 2
#define MAX_READ (1u << 20)
#define CACHE_SECONDS 3600.0

static const char *file_name = "image";
static char *data;
static off_t data_size;
static time_t mounted_at;

static void attr_of(fuse_ino_t ino, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_ino = ino;
    st->st_uid = getuid();
    st->st_gid = getgid();
    st->st_atime = st->st_mtime = st->st_ctime = mounted_at;
    if (ino == FUSE_ROOT_ID) {
        st->st_mode = S_IFDIR | 0755;
        st->st_nlink = 2;
    } else {
        st->st_mode = S_IFREG | 0600;
        st->st_nlink = 1;
        st->st_size = data_size;
        st->st_blocks = (data_size + 511) / 512;
        st->st_blksize = 4096;
    }
}

static void ll_init(void *userdata, struct fuse_conn_info *conn)
{
    (void)userdata;
    conn->want = (FUSE_CAP_ASYNC_READ | FUSE_CAP_PARALLEL_DIROPS) & conn->capable;
    conn->max_read = MAX_READ;
    conn->max_write = MAX_READ; /* libfuse derives max_pages from max_write: 256 pages, as ChunkFs asks */
    if (conn->max_readahead > 128u << 10) conn->max_readahead = 128u << 10;
    conn->max_background = 64;
    conn->congestion_threshold = 48;
    conn->time_gran = 1;
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    if (parent != FUSE_ROOT_ID || strcmp(name, file_name) != 0) { fuse_reply_err(req, ENOENT); return; }
    struct fuse_entry_param e;
    memset(&e, 0, sizeof(e));
    e.ino = FILE_INO;
    e.generation = 1;
    e.attr_timeout = e.entry_timeout = CACHE_SECONDS;
    attr_of(FILE_INO, &e.attr);
    fuse_reply_entry(req, &e);
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)fi;
    if (ino != FUSE_ROOT_ID && ino != FILE_INO) { fuse_reply_err(req, ENOENT); return; }
    struct stat st;
    attr_of(ino, &st);
    fuse_reply_attr(req, &st, CACHE_SECONDS);
}

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if (ino != FILE_INO) { fuse_reply_err(req, EISDIR); return; }
    if ((fi->flags & O_ACCMODE) != O_RDONLY) { fuse_reply_err(req, EROFS); return; }
    fi->keep_cache = 1;
    fuse_reply_open(req, fi);
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)fi;
    if (ino != FILE_INO) { fuse_reply_err(req, EISDIR); return; }
    if (off >= data_size) { fuse_reply_buf(req, NULL, 0); return; }
    if ((off_t)size > data_size - off) size = data_size - off;
    fuse_reply_buf(req, data + off, size);
}

static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)fi;
    if (ino != FUSE_ROOT_ID) { fuse_reply_err(req, ENOTDIR); return; }
    char buf[512];
    size_t used = 0;
    const char *names[] = { ".", "..", file_name };
    const fuse_ino_t inos[] = { FUSE_ROOT_ID, FUSE_ROOT_ID, FILE_INO };
    for (off_t i = off; i < 3; i++) {
        struct stat st;
        memset(&st, 0, sizeof(st));
        st.st_ino = inos[i];
        st.st_mode = i < 2 ? S_IFDIR : S_IFREG;
        size_t need = fuse_add_direntry(req, buf + used, sizeof(buf) - used, names[i], &st, i + 1);
        if (used + need > size || used + need > sizeof(buf)) break;
        used += need;
    }
    fuse_reply_buf(req, buf, used);
}

static const struct fuse_lowlevel_ops ops = {
    .init = ll_init,
    .lookup = ll_lookup,
    .getattr = ll_getattr,
    .open = ll_open,
    .read = ll_read,
    .readdir = ll_readdir,
};

static int load(const char *path)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) { perror(path); return -1; }
    data_size = st.st_size;
    /* Anonymous memory without huge pages, as ChunkFs's chunk buffers (4 KiB pages, populated). */
    data = mmap(NULL, data_size ? data_size : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (data == MAP_FAILED) { perror("mmap"); return -1; }
    madvise(data, data_size, MADV_NOHUGEPAGE);
    for (off_t done = 0; done < data_size;) {
        ssize_t n = pread(fd, data + done, data_size - done > (8 << 20) ? (8 << 20) : data_size - done, done);
        if (n <= 0) {
            fprintf(stderr, "memfs-ll: reading %s: %s\n", path, n < 0 ? strerror(errno) : "short");
            return -1;
        }
        done += n;
    }
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    int threads = 10;
    static const struct option opts[] = {
        { "name", required_argument, 0, 'n' }, { "threads", required_argument, 0, 't' }, { 0, 0, 0, 0 },
    };
    static const char usage[] = "usage: memfs-ll [--name NAME] [--threads N] IMAGE MOUNTPOINT\n";
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        if (c == 'n') file_name = optarg;
        else if (c == 't') threads = atoi(optarg);
        else { fputs(usage, stderr); return 2; }
    }
    if (optind != argc - 2) { fputs(usage, stderr); return 2; }
    const char *image = argv[optind], *mountpoint = argv[optind + 1];
    if (load(image) < 0) return 1;
    mounted_at = time(NULL);

    char *fargv[] = { argv[0], "-o", "max_read=1048576,fsname=memfs-ll,subtype=memfs-ll", NULL };
    struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
    struct fuse_session *se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
    if (!se) return 1;
    if (fuse_set_signal_handlers(se) != 0) return 1;
    if (fuse_session_mount(se, mountpoint) != 0) return 1;
    fprintf(stderr, "memfs-ll: mounted %s/%s (%lld bytes in memory)\n", mountpoint, file_name, (long long)data_size);

    struct fuse_loop_config *cfg = fuse_loop_cfg_create();
    fuse_loop_cfg_set_clone_fd(cfg, 0);
    fuse_loop_cfg_set_max_threads(cfg, threads);
    fuse_loop_cfg_set_idle_threads(cfg, threads);
    int ret = fuse_session_loop_mt(se, cfg);
    fuse_loop_cfg_destroy(cfg);
    fuse_session_unmount(se);
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    fuse_opt_free_args(&args);
    return ret < 0 ? 1 : 0;
}
