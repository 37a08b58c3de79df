/* fileutil.c — whole-file reads, atomic writes, and the error helpers of the io layer. */
#include "io/fileutil.h"
#include "io/ioutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- Platform: the few calls that differ on Windows (mingw-w64) ---- */
#if defined(_WIN32)
#define WIN32_LEAN_AND_MEAN
#include <io.h>
#include <windows.h>
/* O_BINARY: no CRLF translation. */
#define READ_FLAGS (O_RDONLY | O_BINARY)

/* mkstemp: _mktemp_s picks a name for the XXXXXX, an exclusive create claims it (retried on a collision). */
static int temp_open(char *tmpl)
{
    size_t n = strlen(tmpl);
    for (int tries = 0; tries < 64; tries++) {
        memcpy(tmpl + n - 6, "XXXXXX", 6);
        if (_mktemp_s(tmpl, n + 1) != 0)
            return -1;
        int fd = _open(tmpl, _O_CREAT | _O_EXCL | _O_WRONLY | _O_BINARY, _S_IREAD | _S_IWRITE);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    errno = EEXIST;
    return -1;
}

/* Windows files have no mode bits to set beyond what _open gave. */
static int set_mode(int fd) { (void)fd; return 0; }
static int sync_fd(int fd) { return _commit(fd); }

/* rename() fails on Windows when the target exists: MoveFileEx replaces it. */
static int replace_file(const char *from, const char *to, char *err, size_t errlen)
{
    if (MoveFileExA(from, to, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH))
        return 0;
    return io_err(err, errlen, "cannot rename into place: Windows error %lu", (unsigned long)GetLastError());
}
#else
/* O_NONBLOCK: opening a FIFO must not block (it is then refused as not a regular file). */
#define READ_FLAGS (O_RDONLY | O_CLOEXEC | O_NONBLOCK)

static int temp_open(char *tmpl) { return mkstemp(tmpl); }

/* The process umask, read without changing it (Linux /proc); 022 when unknown. */
static mode_t current_umask(void)
{
    mode_t m = 022;
    FILE *f = fopen("/proc/self/status", "re");
    if (!f)
        return m;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        unsigned v;
        if (sscanf(line, "Umask: %o", &v) == 1) {
            m = (mode_t)(v & 0777);
            break;
        }
    }
    fclose(f);
    return m;
}

/* mkstemp creates 0600: give the file the mode an ordinary create would have. */
static int set_mode(int fd) { return fchmod(fd, (mode_t)(0666 & ~current_umask())); }
static int sync_fd(int fd) { return fsync(fd); }

static int replace_file(const char *from, const char *to, char *err, size_t errlen)
{
    if (rename(from, to) == 0)
        return 0;
    return io_err(err, errlen, "cannot rename into place: %s", strerror(errno));
}
#endif

int io_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
        /* one line: replace any newline that slipped in */
        for (char *p = err; *p; p++)
            if (*p == '\n' || *p == '\r')
                *p = ' ';
    }
    return -1;
}

const char *io_quote(char *buf, size_t buflen, const char *s, size_t n)
{
    if (!buf || buflen == 0)
        return "";
    size_t lim = n;
    int cut = 0;
    if (n >= buflen) {
        cut = buflen >= 4;
        lim = cut ? buflen - 4 : buflen - 1;
    }
    for (size_t i = 0; i < lim; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (cut) {
        memcpy(buf + lim, "...", 3);
        lim += 3;
    }
    buf[lim] = '\0';
    return buf;
}

int file_read_all(const char *path, size_t max_size, uint8_t **data, size_t *size, char *err, size_t errlen)
{
    *data = NULL;
    *size = 0;
    int fd = open(path, READ_FLAGS);
    if (fd < 0)
        return io_err(err, errlen, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return io_err(err, errlen, "cannot stat: %s", strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return io_err(err, errlen, "not a regular file");
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > (uint64_t)max_size) {
        close(fd);
        return io_err(err, errlen, "file is %lld bytes, more than the limit of %zu", (long long)st.st_size, max_size);
    }
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        close(fd);
        return io_err(err, errlen, "out of memory reading %zu bytes", n);
    }
    size_t got = 0;
    while (got < n) {
        size_t want = n - got;
        if (want > ((size_t)1 << 30))
            want = (size_t)1 << 30;
        ssize_t r = read(fd, buf + got, want);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(buf);
            close(fd);
            return io_err(err, errlen, "read error: %s", strerror(e));
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) {
        free(buf);
        return io_err(err, errlen, "file shrank while reading (%zu of %zu bytes)", got, n);
    }
    *data = buf;
    *size = n;
    return 0;
}

int file_write_atomic(const char *path, const void *data, size_t size, char *err, size_t errlen)
{
    size_t plen = strlen(path);
    if (plen == 0)
        return io_err(err, errlen, "empty output path");
    static const char suffix[] = ".tmp.XXXXXX";
    char *tmp = malloc(plen + sizeof suffix);
    if (!tmp)
        return io_err(err, errlen, "out of memory");
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, suffix, sizeof suffix);
    int fd = temp_open(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return io_err(err, errlen, "cannot create temporary file: %s", strerror(e));
    }
    const uint8_t *p = data;
    size_t done = 0;
    int rc = 0;
    while (done < size) {
        size_t want = size - done;
        if (want > ((size_t)1 << 30))
            want = (size_t)1 << 30;
        ssize_t w = write(fd, p + done, want);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = io_err(err, errlen, "write failed: %s", strerror(errno));
            break;
        }
        if (w == 0) {
            rc = io_err(err, errlen, "write failed: no progress");
            break;
        }
        done += (size_t)w;
    }
    if (rc == 0 && set_mode(fd) != 0)
        rc = io_err(err, errlen, "cannot set permissions: %s", strerror(errno));
    if (rc == 0 && sync_fd(fd) != 0)
        rc = io_err(err, errlen, "fsync failed: %s", strerror(errno));
    if (close(fd) != 0 && rc == 0)
        rc = io_err(err, errlen, "close failed: %s", strerror(errno));
    if (rc == 0)
        rc = replace_file(tmp, path, err, errlen);
    if (rc != 0)
        unlink(tmp);
    free(tmp);
    return rc;
}
