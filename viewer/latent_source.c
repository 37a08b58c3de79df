/* latent_source.c — the reader thread of taesd-view: consecutive .npy arrays from stdin or a FIFO, or one .npy file
 * watched for replacement. Each array is parsed by the project's own reader (src/io/npy.c); only the framing (where
 * one array ends and the next begins) is worked out here, from the header's dtype and shape. */
#include "latent_source.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/inotify.h>
#endif

#include "io/fileutil.h"
#include "io/npy.h"

#define MAGIC "\x93NUMPY"
#define MAGIC_LEN 6
#define MAX_HEADER (1u << 16)           /* numpy writes a few hundred bytes; anything longer is not a latent */
#define MAX_FRAME_BYTES ((size_t)1 << 30)
#define MAX_ELEMENTS ((int64_t)1 << 28) /* 1 GiB of float32: far above any latent */
#define WATCH_POLL_MS 250               /* --watch: stat() fallback where no inotify event comes */

struct latent_source {
    latent_source_desc d;
    char *path;
    int fd;                            /* stream being read; -1 none */
    int wake_pipe[2];                  /* written by latent_source_stop to interrupt poll() */
    pthread_t thread;
    bool thread_started;

    pthread_mutex_t lock;              /* guards everything below */
    latent_frame pending;
    bool has_pending;
    bool ended;
    char error[512];
    bool has_error;
    bool idle;                         /* the reader waits for the first byte of a frame */
    int poll_fd;                       /* copy of fd for latent_source_busy (fd itself is the reader's) */
    uint64_t errors;
    uint64_t dropped;
};

typedef struct rbuf {
    uint8_t *p;
    size_t len, cap;
} rbuf;

void latent_frame_free(latent_frame *f)
{
    if (!f)
        return;
    free(f->data);
    memset(f, 0, sizeof *f);
}

static void wake(latent_source *s)
{
    if (s->d.wake)
        s->d.wake(s->d.wake_user);
}

/* One line on stderr now (several errors in a row all get printed) and the newest one kept for the title. */
static void report(latent_source *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(latent_source *s, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "taesd-view: %s\n", msg);
    pthread_mutex_lock(&s->lock);
    snprintf(s->error, sizeof s->error, "%s", msg);
    s->has_error = true;
    s->errors++;
    pthread_mutex_unlock(&s->lock);
    wake(s);
}

static const char *source_name(const latent_source *s)
{
    return s->d.kind == SOURCE_STDIN ? "stdin" : s->path;
}

static void publish(latent_source *s, latent_frame *f)
{
    /* Checked here, not when the window takes it: a frame replaced by a newer one is still reported. */
    if (s->d.channels > 0 && f->c != s->d.channels) {
        report(s, "%s: frame %llu: latent has %d channels, the decoder takes %d; skipped", source_name(s),
               (unsigned long long)f->index, f->c, s->d.channels);
        latent_frame_free(f);
        return;
    }
    pthread_mutex_lock(&s->lock);
    bool replaced = s->has_pending;
    if (replaced) {
        latent_frame_free(&s->pending);
        s->dropped++;
    }
    s->pending = *f;
    s->has_pending = true;
    pthread_mutex_unlock(&s->lock);
    memset(f, 0, sizeof *f);
    if (!replaced)                     /* (a window not done with the last wake-up needs no second one) */
        wake(s);
}

/* ---- one array -> one frame ------------------------------------------------------------------------------- */

static int frame_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int frame_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static bool half_finite(uint16_t h)
{
    return (h & 0x7c00u) != 0x7c00u;
}

int latent_frame_from_npy(const uint8_t *bytes, size_t size, taesd_latent_format format, int packed_h, int packed_w,
                          latent_frame *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    npy_array a;
    if (npy_read_memory(bytes, size, &a, err, errlen) != 0)
        return -1;
    int c, h, w;
    int64_t lim = 1 << 16;
    if (format == TAESD_LATENT_FLUX1_PACKED) {     /* (1,N,D) or (N,D) tokens, as the CLI takes them */
        if (!(a.ndim == 2 || (a.ndim == 3 && a.shape[0] == 1))) {
            npy_free(&a);
            return frame_err(err, errlen, "flux1-packed tokens must have shape (1,N,D) or (N,D), got %d dimensions",
                             a.ndim);
        }
        int64_t n = a.shape[a.ndim - 2], d = a.shape[a.ndim - 1], th, tw;
        if (packed_h > 0) {
            th = packed_h / 2;
            tw = packed_w / 2;
        } else {
            th = (int64_t)llround(sqrt((double)n));
            tw = th;
        }
        if (th * tw != n || th < 1) {
            npy_free(&a);
            return frame_err(err, errlen, "%lld tokens do not fill the %s grid (give --shape H,W)", (long long)n,
                             packed_h > 0 ? "--shape" : "square");
        }
        if (d < 4 || d > 4096 || th > lim || tw > lim) {
            npy_free(&a);
            return frame_err(err, errlen, "flux1-packed shape %lldx%lld is out of range", (long long)n, (long long)d);
        }
        c = (int)d;
        h = (int)th;
        w = (int)tw;
    } else {                                       /* (1,C,H,W) or (C,H,W) */
        if (a.ndim == 4 && a.shape[0] != 1) {
            long long b = (long long)a.shape[0];
            npy_free(&a);
            return frame_err(err, errlen, "batch of %lld; only one latent (N=1) is supported", b);
        }
        if (a.ndim != 4 && a.ndim != 3) {
            int nd = a.ndim;
            npy_free(&a);
            return frame_err(err, errlen, "latent must have shape (1,C,H,W) or (C,H,W), got %d dimensions", nd);
        }
        const int64_t *sh = a.shape + (a.ndim - 3);
        if (sh[0] < 1 || sh[0] > 4096 || sh[1] < 1 || sh[1] > lim || sh[2] < 1 || sh[2] > lim) {
            long long s0 = (long long)sh[0], s1 = (long long)sh[1], s2 = (long long)sh[2];
            npy_free(&a);
            return frame_err(err, errlen, "latent shape %lldx%lldx%lld is out of range", s0, s1, s2);
        }
        c = (int)sh[0];
        h = (int)sh[1];
        w = (int)sh[2];
    }
    if (a.numel > MAX_ELEMENTS) {
        npy_free(&a);
        return frame_err(err, errlen, "latent of %lld values is too large", (long long)a.numel);
    }
    int dc, dh, dw;
    if (taesd_latent_shape(format, true, c, h, w, &dc, &dh, &dw) != TAESD_OK) {
        npy_free(&a);
        return frame_err(err, errlen, "shape %dx%dx%d does not fit --latent-format %s", c, h, w,
                         taesd_latent_format_name(format));
    }
    for (int64_t i = 0; i < a.numel; i++)
        if (!isfinite(a.data[i])) {
            npy_free(&a);
            return frame_err(err, errlen, "latent holds NaN or Inf (value %lld)", (long long)i);
        }
    size_t n = (size_t)dc * (size_t)dh * (size_t)dw;
    /* A float16 array in diffusion space goes to the GPU as it came (half the upload); the raw halves are the
     * last numel·2 bytes of the file (npy_read_memory checked the length and dtype). */
    size_t hdr = bytes[6] == 1 ? 10u + (size_t)(bytes[8] | bytes[9] << 8)
                               : 12u + (size_t)(bytes[8] | bytes[9] << 8 | bytes[10] << 16 | (uint32_t)bytes[11] << 24);
    bool f16 = format == TAESD_LATENT_DIFFUSION && size - hdr == n * 2;
    if (f16) {
        out->data = malloc(n * 2);
        if (!out->data) {
            npy_free(&a);
            return frame_err(err, errlen, "out of memory");
        }
        memcpy(out->data, bytes + hdr, n * 2);
        const uint8_t *hb = out->data;
        for (size_t i = 0; i < n; i++) {
            uint16_t v = (uint16_t)(hb[2 * i] | hb[2 * i + 1] << 8);
            if (!half_finite(v)) {     /* (already caught above; kept for the raw copy's sake) */
                npy_free(&a);
                latent_frame_free(out);
                return frame_err(err, errlen, "latent holds NaN or Inf");
            }
        }
    } else {
        out->data = malloc(n * sizeof(float));
        if (!out->data) {
            npy_free(&a);
            return frame_err(err, errlen, "out of memory");
        }
        taesd_latent_to_diffusion(format, a.data, c, h, w, out->data);
    }
    npy_free(&a);
    out->c = dc;
    out->h = dh;
    out->w = dw;
    out->f16 = f16;
    return 0;
}

/* ---- framing of a stream of arrays ------------------------------------------------------------------------- */

/* Where the next "\x93NUMPY" starts in p[0..n), or n. */
static size_t find_magic(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + MAGIC_LEN <= n; i++) {
        const uint8_t *q = memchr(p + i, 0x93, n - i);
        if (!q)
            return n;
        i = (size_t)(q - p);
        if (i + MAGIC_LEN <= n && memcmp(q, MAGIC, MAGIC_LEN) == 0)
            return i;
    }
    /* A partial magic at the very end is kept for the next read. */
    for (size_t k = n < MAGIC_LEN ? n : MAGIC_LEN - 1; k > 0; k--)
        if (memcmp(p + n - k, MAGIC, k) == 0)
            return n - k;
    return n;
}

/* Whether p[0..avail) starts like an array header that numpy writes: magic, version 1.0/2.0/3.0, then '{'.
 * 1: yes, 0: no, -1: too few bytes to tell. */
static int header_at(const uint8_t *p, size_t avail)
{
    size_t n = avail < MAGIC_LEN ? avail : MAGIC_LEN;
    if (memcmp(p, MAGIC, n) != 0)
        return 0;
    if (avail > 6 && (p[6] < 1 || p[6] > 3))
        return 0;
    if (avail > 7 && p[7] != 0)
        return 0;
    size_t at = avail > 6 && p[6] == 1 ? 10 : 12;
    if (avail > at)
        return p[at] == '{';
    return -1;
}

/* The data size of an array from its header dict, from 'descr' and 'shape' alone (the full check is npy.c's).
 * Returns 0, or -1 where the size cannot be known (the caller then resynchronises on the next magic). */
static int header_data_bytes(const char *h, size_t n, size_t *bytes, char *what, size_t whatlen)
{
    char buf[MAX_HEADER + 1];
    memcpy(buf, h, n);
    buf[n] = 0;
    const char *d = strstr(buf, "'descr'");
    if (!d)
        d = strstr(buf, "\"descr\"");
    const char *s = strstr(buf, "'shape'");
    if (!s)
        s = strstr(buf, "\"shape\"");
    if (!d || !s) {
        snprintf(what, whatlen, "header lacks 'descr' or 'shape'");
        return -1;
    }
    d += 7;
    while (*d == ' ' || *d == ':')
        d++;
    if (*d != '\'' && *d != '"') {
        snprintf(what, whatlen, "'descr' is not a plain dtype string");
        return -1;
    }
    char q = *d++;
    const char *e = strchr(d, q);
    /* e.g. "<f4", "|u1", "<U10" (4 bytes per character) */
    if (!e || e - d < 3 || (d[0] != '<' && d[0] != '>' && d[0] != '|' && d[0] != '='))
        goto bad_dtype;
    {
        char kind = d[1];
        size_t esize = 0;
        for (const char *p = d + 2; p < e; p++) {
            if (*p < '0' || *p > '9' || esize > 1u << 20)
                goto bad_dtype;
            esize = esize * 10 + (size_t)(*p - '0');
        }
        if (kind == 'U')
            esize *= 4;
        if (kind == 'O' || esize == 0)
            goto bad_dtype;
        s += 7;
        while (*s == ' ' || *s == ':')
            s++;
        if (*s != '(') {
            snprintf(what, whatlen, "'shape' is not a tuple");
            return -1;
        }
        s++;
        size_t total = esize;
        for (;;) {
            while (*s == ' ' || *s == ',')
                s++;
            if (*s == ')')
                break;
            if (*s < '0' || *s > '9') {
                snprintf(what, whatlen, "malformed 'shape'");
                return -1;
            }
            size_t v = 0;
            while (*s >= '0' && *s <= '9') {
                if (v > MAX_FRAME_BYTES)
                    break;
                v = v * 10 + (size_t)(*s++ - '0');
            }
            if (v > MAX_FRAME_BYTES || (v && total > MAX_FRAME_BYTES / v)) {
                snprintf(what, whatlen, "array is larger than %zu MiB", MAX_FRAME_BYTES >> 20);
                return -1;
            }
            total *= v;
            while (*s >= '0' && *s <= '9')
                s++;
        }
        *bytes = total;
        return 0;
    }
bad_dtype:
    snprintf(what, whatlen, "dtype %.*s has no fixed size", (int)(e && e - d < 40 ? e - d : 3), d);
    return -1;
}

static void drop(rbuf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

/* Waits for fd to be readable. 1: readable (or hung up), 0: stop requested, -1: error. */
static int wait_readable(latent_source *s, int fd, int timeout_ms)
{
    for (;;) {
        struct pollfd pf[2] = { { .fd = fd, .events = POLLIN }, { .fd = s->wake_pipe[0], .events = POLLIN } };
        int r = poll(pf, 2, timeout_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (pf[1].revents)
            return 0;
        if (r == 0)
            return 2;                  /* timeout */
        return 1;
    }
}

/* Reads until b holds at least n bytes. 1: done; 0: end of file first; -1: stop requested or a read error. */
static int fill(latent_source *s, rbuf *b, size_t n)
{
    if (n > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap < n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            report(s, "%s: out of memory for a frame of %zu bytes", source_name(s), n);
            return -1;
        }
        b->p = p;
        b->cap = cap;
    }
    while (b->len < n) {
        bool idle = b->len == 0;
        if (idle) {
            pthread_mutex_lock(&s->lock);
            s->idle = true;
            pthread_mutex_unlock(&s->lock);
        }
        int w = wait_readable(s, s->fd, -1);
        if (idle) {
            pthread_mutex_lock(&s->lock);
            s->idle = false;
            pthread_mutex_unlock(&s->lock);
        }
        if (w <= 0)
            return -1;
        ssize_t r = read(s->fd, b->p + b->len, b->cap - b->len);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r < 0) {
            report(s, "%s: read failed: %s", source_name(s), strerror(errno));
            return -1;
        }
        if (r == 0)
            return 0;
        b->len += (size_t)r;
    }
    return 1;
}

/* Reads one stream until its end. Returns 0 at end of file, -1 when stopped or on a read error. */
static int read_stream(latent_source *s, rbuf *b, uint64_t *index)
{
    const char *name = source_name(s);
    size_t skipped = 0;
    char err[512];
    for (;;) {
        int r = fill(s, b, MAGIC_LEN);
        if (r < 0)
            return -1;
        size_t m = find_magic(b->p, b->len);
        if (m > 0 || r == 0) {
            skipped += r == 0 ? b->len : m;
            drop(b, r == 0 ? b->len : m);
            if (r == 0 || b->len >= MAGIC_LEN) {
                if (skipped)
                    report(s, "%s: %zu bytes before %s are not a .npy array; skipped", name, skipped,
                           r == 0 ? "the end of the stream" : "the next array");
                skipped = 0;
            }
            if (r == 0)
                return 0;
            continue;
        }
        if ((r = fill(s, b, 10)) <= 0)
            goto truncated;
        unsigned major = b->p[6];
        size_t hoff = major == 1 ? 10 : 12;
        if (major < 1 || major > 3) {
            (*index)++;
            report(s, "%s: frame %llu: .npy format version %u not supported; skipped", name,
                   (unsigned long long)*index, major);
            drop(b, MAGIC_LEN);
            continue;
        }
        if ((r = fill(s, b, hoff)) <= 0)
            goto truncated;
        size_t hlen = major == 1 ? (size_t)(b->p[8] | b->p[9] << 8)
                                 : (size_t)(b->p[8] | b->p[9] << 8 | b->p[10] << 16 | (uint32_t)b->p[11] << 24);
        (*index)++;
        if (hlen > MAX_HEADER) {
            report(s, "%s: frame %llu: header of %zu bytes is too long; skipped", name, (unsigned long long)*index,
                   hlen);
            drop(b, MAGIC_LEN);
            continue;
        }
        if ((r = fill(s, b, hoff + hlen)) <= 0)
            goto truncated;
        size_t data;
        char what[128];
        if (header_data_bytes((const char *)b->p + hoff, hlen, &data, what, sizeof what) != 0) {
            report(s, "%s: frame %llu: %s; skipped", name, (unsigned long long)*index, what);
            drop(b, MAGIC_LEN);
            continue;
        }
        size_t total = hoff + hlen + data;
        /* A frame cut short by its writer holds the start of the next array in its "data": the bytes are checked
         * as they arrive, so the next array is not held back until a full frame's worth has come. */
        size_t scanned = hoff + hlen, cut = 0;
        for (;;) {
            size_t avail = b->len < total ? b->len : total;
            while (scanned < avail && !cut) {
                size_t pos = scanned + find_magic(b->p + scanned, avail - scanned);
                if (pos >= avail) {
                    scanned = avail;
                    break;
                }
                int h = header_at(b->p + pos, b->len - pos);
                if (h < 0 && r != 0)
                    break;                 /* too few bytes yet to tell */
                if (h > 0)
                    cut = pos;
                scanned = pos + 1;
            }
            if (cut || b->len >= total || r == 0)
                break;
            if ((r = fill(s, b, b->len + 1)) < 0)
                return -1;
        }
        if (cut) {
            report(s, "%s: frame %llu: truncated (%zu of %zu data bytes before the next array); skipped", name,
                   (unsigned long long)*index, cut - hoff - hlen, data);
            drop(b, cut);
            continue;
        }
        if (r == 0)
            goto truncated;
        latent_frame f;
        if (latent_frame_from_npy(b->p, total, s->d.format, s->d.packed_h, s->d.packed_w, &f, err, sizeof err) != 0) {
            report(s, "%s: frame %llu: %s; skipped", name, (unsigned long long)*index, err);
        } else {
            f.index = *index;
            publish(s, &f);
        }
        drop(b, total);
        continue;
    truncated:
        if (r < 0)
            return -1;
        report(s, "%s: the stream ends inside an array (%zu bytes of it came); skipped", name, b->len);
        b->len = 0;
        return 0;
    }
}

static int open_fifo(latent_source *s)
{
    /* O_NONBLOCK: open() returns at once even before a writer appears; poll() then waits for one. */
    int fd = open(s->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        report(s, "%s: %s", s->path, strerror(errno));
    return fd;
}

static void stream_thread(latent_source *s)
{
    rbuf b = { 0 };
    uint64_t index = 0;
    for (;;) {
        if (s->d.kind == SOURCE_FIFO && s->fd < 0 && (s->fd = open_fifo(s)) < 0)
            break;
        pthread_mutex_lock(&s->lock);
        s->poll_fd = s->fd;
        pthread_mutex_unlock(&s->lock);
        int r = read_stream(s, &b, &index);
        if (r < 0)
            break;
        if (s->d.kind == SOURCE_FIFO && s->d.reopen_fifo) {
            pthread_mutex_lock(&s->lock);
            s->poll_fd = -1;
            pthread_mutex_unlock(&s->lock);
            close(s->fd);
            s->fd = -1;
            continue;
        }
        break;
    }
    free(b.p);
    pthread_mutex_lock(&s->lock);
    s->ended = true;
    pthread_mutex_unlock(&s->lock);
    wake(s);
}

/* ---- --watch ----------------------------------------------------------------------------------------------- */

typedef struct file_id {
    bool present;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
} file_id;

static file_id stat_id(const char *path)
{
    file_id id;
    memset(&id, 0, sizeof id);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        id.present = true;
        id.dev = st.st_dev;
        id.ino = st.st_ino;
        id.size = st.st_size;
        id.mtime = st.st_mtim;
        id.ctime = st.st_ctim;
    }
    return id;
}

static bool same_id(const file_id *a, const file_id *b)
{
    return a->present == b->present && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
           a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static void watch_read(latent_source *s, uint64_t *index)
{
    uint8_t *bytes;
    size_t size;
    char err[512];
    (*index)++;
    if (file_read_all(s->path, MAX_FRAME_BYTES, &bytes, &size, err, sizeof err) != 0) {
        report(s, "%s: %s", s->path, err);
        return;
    }
    latent_frame f;
    if (latent_frame_from_npy(bytes, size, s->d.format, s->d.packed_h, s->d.packed_w, &f, err, sizeof err) != 0) {
        report(s, "%s: %s", s->path, err);
    } else {
        f.index = *index;
        publish(s, &f);
    }
    free(bytes);
}

static void watch_thread(latent_source *s)
{
    int ino_fd = -1;
    const char *base = strrchr(s->path, '/');
    base = base ? base + 1 : s->path;
#ifdef __linux__
    /* The directory is watched, not the file: an atomic rename replaces the file (and its inode). */
    char dir[4096];
    size_t dl = (size_t)(base - s->path);
    if (dl == 0) {
        snprintf(dir, sizeof dir, ".");
    } else if (dl < sizeof dir) {
        memcpy(dir, s->path, dl);
        dir[dl] = 0;
    } else {
        dir[0] = 0;
    }
    ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (ino_fd >= 0 && (!dir[0] || inotify_add_watch(ino_fd, dir, IN_MOVED_TO | IN_CLOSE_WRITE) < 0)) {
        close(ino_fd);
        ino_fd = -1;
    }
#endif
    file_id last;
    memset(&last, 0, sizeof last);
    uint64_t index = 0;
    bool named = true;                 /* first pass: read the file if it is there */
    for (;;) {
        file_id now = stat_id(s->path);
        if (now.present && (named || !same_id(&now, &last)))
            watch_read(s, &index);
        last = now;
        named = false;
        int w = wait_readable(s, ino_fd >= 0 ? ino_fd : s->wake_pipe[0], WATCH_POLL_MS);
        if (w == 0 || w < 0)
            break;
#ifdef __linux__
        if (w == 1 && ino_fd >= 0) {
            /* Any event naming our file forces a re-read, even where stat() cannot tell two versions apart. */
            char ev[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
            ssize_t n;
            while ((n = read(ino_fd, ev, sizeof ev)) > 0)
                for (char *p = ev; p < ev + n;) {
                    const struct inotify_event *e = (const struct inotify_event *)p;
                    if (e->len && strcmp(e->name, base) == 0)
                        named = true;
                    p += sizeof *e + e->len;
                }
        }
#endif
    }
    if (ino_fd >= 0)
        close(ino_fd);
}

/* ---- thread and mailbox ------------------------------------------------------------------------------------ */

static void *thread_main(void *arg)
{
    latent_source *s = arg;
    if (s->d.kind == SOURCE_WATCH)
        watch_thread(s);
    else
        stream_thread(s);
    return NULL;
}

int latent_source_start(const latent_source_desc *desc, latent_source **out, char *err, size_t errlen)
{
    *out = NULL;
    latent_source *s = calloc(1, sizeof *s);
    if (!s)
        return frame_err(err, errlen, "out of memory");
    s->d = *desc;
    s->fd = -1;
    s->poll_fd = -1;
    s->wake_pipe[0] = s->wake_pipe[1] = -1;
    if (desc->path && !(s->path = strdup(desc->path))) {
        free(s);
        return frame_err(err, errlen, "out of memory");
    }
    pthread_mutex_init(&s->lock, NULL);
    struct stat st;
    if (desc->kind == SOURCE_FIFO) {
        if (stat(desc->path, &st) != 0) {
            frame_err(err, errlen, "%s: %s", desc->path, strerror(errno));
            goto fail;
        }
        if (!S_ISFIFO(st.st_mode)) {
            frame_err(err, errlen, "%s: not a named pipe (make one with mkfifo)", desc->path);
            goto fail;
        }
    } else if (desc->kind == SOURCE_STDIN) {
        s->fd = 0;
    }
    if (pipe(s->wake_pipe) != 0) {
        frame_err(err, errlen, "pipe: %s", strerror(errno));
        goto fail;
    }
    if (pthread_create(&s->thread, NULL, thread_main, s) != 0) {
        frame_err(err, errlen, "cannot start the reader thread");
        goto fail;
    }
    s->thread_started = true;
    *out = s;
    return 0;
fail:
    latent_source_stop(s);
    return -1;
}

int latent_source_take(latent_source *s, latent_frame *out)
{
    pthread_mutex_lock(&s->lock);
    int got = s->has_pending;
    if (got) {
        *out = s->pending;
        memset(&s->pending, 0, sizeof s->pending);
        s->has_pending = false;
    }
    pthread_mutex_unlock(&s->lock);
    return got;
}

int latent_source_pending(latent_source *s)
{
    pthread_mutex_lock(&s->lock);
    int p = s->has_pending;
    pthread_mutex_unlock(&s->lock);
    return p;
}

int latent_source_busy(latent_source *s)
{
    pthread_mutex_lock(&s->lock);
    bool busy = s->has_pending || (!s->ended && s->d.kind != SOURCE_WATCH && !s->idle);
    int fd = s->ended ? -1 : s->poll_fd;
    /* Bytes in the pipe that the reader has not woken up for yet count too. */
    if (!busy && fd >= 0) {
        struct pollfd pf = { .fd = fd, .events = POLLIN };
        busy = poll(&pf, 1, 0) > 0 && (pf.revents & POLLIN);
    }
    pthread_mutex_unlock(&s->lock);
    return busy;
}

int latent_source_error(latent_source *s, char *buf, size_t len)
{
    pthread_mutex_lock(&s->lock);
    int got = s->has_error;
    if (got)
        snprintf(buf, len, "%s", s->error);
    s->has_error = false;
    pthread_mutex_unlock(&s->lock);
    return got;
}

int latent_source_ended(latent_source *s)
{
    pthread_mutex_lock(&s->lock);
    int e = s->ended && !s->has_pending;
    pthread_mutex_unlock(&s->lock);
    return e;
}

uint64_t latent_source_dropped(latent_source *s)
{
    pthread_mutex_lock(&s->lock);
    uint64_t d = s->dropped;
    pthread_mutex_unlock(&s->lock);
    return d;
}

uint64_t latent_source_errors(latent_source *s)
{
    pthread_mutex_lock(&s->lock);
    uint64_t e = s->errors;
    pthread_mutex_unlock(&s->lock);
    return e;
}

void latent_source_stop(latent_source *s)
{
    if (!s)
        return;
    if (s->thread_started) {
        ssize_t w;
        do
            w = write(s->wake_pipe[1], "x", 1);
        while (w < 0 && errno == EINTR);
        pthread_join(s->thread, NULL);
    }
    if (s->fd > 0)
        close(s->fd);
    for (int i = 0; i < 2; i++)
        if (s->wake_pipe[i] >= 0)
            close(s->wake_pipe[i]);
    latent_frame_free(&s->pending);
    pthread_mutex_destroy(&s->lock);
    free(s->path);
    free(s);
}
