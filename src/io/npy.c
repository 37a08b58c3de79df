/* npy.c — NumPy .npy: read v1/v2/v3 ('<f4' or '<f2', C order, 1..4 dims), write v1.0 '<f4'. */
#include "io/npy.h"
#include "io/fileutil.h"
#include "io/ioutil.h"
#include "io/tensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPY_MAX_FILE (SIZE_MAX / 2 > ((size_t)4 << 30) ? ((size_t)4 << 30) : SIZE_MAX / 2)

typedef struct hp {
    const char *s;
    size_t n, pos;
} hp;

static void hws(hp *h)
{
    while (h->pos < h->n && (h->s[h->pos] == ' ' || h->s[h->pos] == '\t' || h->s[h->pos] == '\n' ||
                             h->s[h->pos] == '\r'))
        h->pos++;
}

static int hpeek(hp *h)
{
    hws(h);
    return h->pos < h->n ? (unsigned char)h->s[h->pos] : -1;
}

/* A Python str literal ('...' or "...", no escapes needed for the keys and dtypes numpy writes). */
static int hstring(hp *h, const char **s, size_t *len)
{
    int q = hpeek(h);
    if (q != '\'' && q != '"')
        return -1;
    size_t start = ++h->pos;
    while (h->pos < h->n && h->s[h->pos] != (char)q) {
        if (h->s[h->pos] == '\\' || h->s[h->pos] == '\n')
            return -1;
        h->pos++;
    }
    if (h->pos >= h->n)
        return -1;
    *s = h->s + start;
    *len = h->pos - start;
    h->pos++;
    return 0;
}

static int hword(hp *h, const char *w)
{
    hws(h);
    size_t l = strlen(w);
    if (h->n - h->pos < l || memcmp(h->s + h->pos, w, l) != 0)
        return 0;
    h->pos += l;
    return 1;
}

static void shape_str(char *buf, size_t len, const int64_t *shape, int ndim)
{
    size_t o = 0;
    o += (size_t)snprintf(buf, len, "(");
    for (int i = 0; i < ndim && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (o < len)
        snprintf(buf + o, len - o, ndim == 1 ? ",)" : ")");
}

int npy_read_memory(const uint8_t *d, size_t size, npy_array *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (size < 10 || memcmp(d, "\x93NUMPY", 6) != 0)
        return io_err(err, errlen, "npy: not a .npy file (no \\x93NUMPY magic)");
    unsigned major = d[6];
    size_t hlen, hoff;
    if (major == 1) {
        hlen = io_rd16(d + 8);
        hoff = 10;
    } else if (major == 2 || major == 3) {
        if (size < 12)
            return io_err(err, errlen, "npy: header is truncated");
        hlen = io_rd32(d + 8);
        hoff = 12;
    } else {
        return io_err(err, errlen, "npy: format version %u.%u not supported (1.0, 2.0, 3.0)", major, d[7]);
    }
    if (hlen > size - hoff)
        return io_err(err, errlen, "npy: header length %zu is past the end of the file (size %zu)", hlen, size);
    hp h = { (const char *)d + hoff, hlen, 0 };
    const char *descr = NULL;
    size_t descr_len = 0;
    int have_descr = 0, have_fortran = 0, have_shape = 0, fortran = 0, ndim = 0;
    int64_t shape[4] = { 0, 0, 0, 0 };
    if (hpeek(&h) != '{')
        return io_err(err, errlen, "npy: header is not a dict");
    h.pos++;
    for (;;) {
        if (hpeek(&h) == '}') {
            h.pos++;
            break;
        }
        const char *key;
        size_t klen;
        if (hstring(&h, &key, &klen) != 0 || hpeek(&h) != ':')
            return io_err(err, errlen, "npy: malformed header dict at byte %zu", h.pos);
        h.pos++;
        if (klen == 5 && memcmp(key, "descr", 5) == 0 && !have_descr) {
            if (hstring(&h, &descr, &descr_len) != 0)
                return io_err(err, errlen, "npy: 'descr' is not a string (structured dtypes are not supported)");
            have_descr = 1;
        } else if (klen == 13 && memcmp(key, "fortran_order", 13) == 0 && !have_fortran) {
            if (hword(&h, "True"))
                fortran = 1;
            else if (!hword(&h, "False"))
                return io_err(err, errlen, "npy: 'fortran_order' is not True or False");
            have_fortran = 1;
        } else if (klen == 5 && memcmp(key, "shape", 5) == 0 && !have_shape) {
            if (hpeek(&h) != '(')
                return io_err(err, errlen, "npy: 'shape' is not a tuple");
            h.pos++;
            for (;;) {
                int c = hpeek(&h);
                if (c == ')') {
                    h.pos++;
                    break;
                }
                if (c < '0' || c > '9')
                    return io_err(err, errlen, "npy: 'shape' holds something other than non-negative integers");
                uint64_t v = 0;
                while (h.pos < h.n && h.s[h.pos] >= '0' && h.s[h.pos] <= '9') {
                    if (v > ((uint64_t)1 << 62) / 10)
                        return io_err(err, errlen, "npy: shape dimension is too large");
                    v = v * 10 + (uint64_t)(h.s[h.pos++] - '0');
                }
                if (ndim >= 4)
                    return io_err(err, errlen, "npy: more than 4 dimensions are not supported");
                shape[ndim++] = (int64_t)v;
                c = hpeek(&h);
                if (c == ',')
                    h.pos++;
                else if (c != ')')
                    return io_err(err, errlen, "npy: malformed 'shape' tuple");
            }
            have_shape = 1;
        } else {
            char q[64];
            return io_err(err, errlen, "npy: unexpected or repeated header key '%s'", io_quote(q, sizeof q, key, klen));
        }
        int c = hpeek(&h);
        if (c == ',')
            h.pos++;
        else if (c != '}')
            return io_err(err, errlen, "npy: malformed header dict at byte %zu", h.pos);
    }
    hws(&h);
    if (h.pos != h.n)
        return io_err(err, errlen, "npy: unexpected data after the header dict");
    if (!have_descr || !have_fortran || !have_shape)
        return io_err(err, errlen, "npy: header lacks '%s'", !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");
    size_t esize;
    if (descr_len == 3 && memcmp(descr, "<f4", 3) == 0) {
        esize = 4;
    } else if (descr_len == 3 && memcmp(descr, "<f2", 3) == 0) {
        esize = 2;
    } else {
        char q[64];
        return io_err(err, errlen, "npy: dtype '%s' not supported (float32 or float16 only)",
                      io_quote(q, sizeof q, descr, descr_len));
    }
    if (fortran)
        return io_err(err, errlen, "npy: fortran_order arrays are not supported (C order only)");
    if (ndim == 0)
        return io_err(err, errlen, "npy: 0-d arrays are not supported (1 to 4 dimensions)");
    char ss[128];
    shape_str(ss, sizeof ss, shape, ndim);
    size_t numel = 1, need;
    for (int i = 0; i < ndim; i++)
        if (io_mul(numel, (size_t)shape[i], &numel) != 0)
            return io_err(err, errlen, "npy: shape %s is too large", ss);
    size_t fbytes;
    if (io_mul(numel, esize, &need) != 0 || io_mul(numel, sizeof(float), &fbytes) != 0 || numel > (uint64_t)INT64_MAX)
        return io_err(err, errlen, "npy: shape %s is too large", ss);
    size_t have = size - hoff - hlen;
    if (have != need)
        return io_err(err, errlen, "npy: data is %zu bytes, shape %s needs %zu", have, ss, need);
    float *f = malloc(fbytes ? fbytes : 1);
    if (!f)
        return io_err(err, errlen, "npy: out of memory for %zu elements", numel);
    const uint8_t *p = d + hoff + hlen;
    for (size_t i = 0; i < numel; i++) {
        if (esize == 4) {
            uint32_t b = io_rd32(p + 4 * i);
            memcpy(&f[i], &b, 4);
        } else {
            f[i] = tt_half_to_float(io_rd16(p + 2 * i));
        }
    }
    out->ndim = ndim;
    for (int i = 0; i < 4; i++)
        out->shape[i] = i < ndim ? shape[i] : 0;
    out->numel = (int64_t)numel;
    out->data = f;
    return 0;
}

int npy_read_file(const char *path, npy_array *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    uint8_t *d;
    size_t size;
    if (file_read_all(path, NPY_MAX_FILE, &d, &size, err, errlen) != 0)
        return -1;
    int rc = npy_read_memory(d, size, out, err, errlen);
    free(d);
    return rc;
}

int npy_write_file(const char *path, const float *data, int ndim, const int64_t *shape, char *err, size_t errlen)
{
    if (ndim < 1 || ndim > 4 || !shape)
        return io_err(err, errlen, "npy: cannot write %d dimensions (1 to 4)", ndim);
    size_t numel = 1, bytes;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return io_err(err, errlen, "npy: negative dimension %lld", (long long)shape[i]);
        if ((uint64_t)shape[i] > SIZE_MAX || io_mul(numel, (size_t)shape[i], &numel) != 0)
            return io_err(err, errlen, "npy: shape is too large");
    }
    if (io_mul(numel, 4, &bytes) != 0 || bytes > SIZE_MAX - 256)
        return io_err(err, errlen, "npy: shape is too large");
    if (numel && !data)
        return io_err(err, errlen, "npy: no data");
    char ss[128], hdr[256];
    shape_str(ss, sizeof ss, shape, ndim);
    int hl = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", ss);
    if (hl < 0 || (size_t)hl + 1 + 10 + 64 > sizeof hdr)
        return io_err(err, errlen, "npy: header too long");
    size_t total_h = 10 + (size_t)hl + 1;          /* magic..len, dict, '\n' */
    size_t padded = (total_h + 63) / 64 * 64;
    size_t dict_len = padded - 10;                  /* dict + spaces + '\n' */
    uint8_t *buf = malloc(padded + bytes);
    if (!buf)
        return io_err(err, errlen, "npy: out of memory");
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (uint8_t)(dict_len & 0xff);
    buf[9] = (uint8_t)(dict_len >> 8);
    memcpy(buf + 10, hdr, (size_t)hl);
    memset(buf + 10 + hl, ' ', dict_len - (size_t)hl - 1);
    buf[padded - 1] = '\n';
    uint8_t *p = buf + padded;
    for (size_t i = 0; i < numel; i++) {
        uint32_t b;
        memcpy(&b, &data[i], 4);
        p[4 * i] = (uint8_t)b;
        p[4 * i + 1] = (uint8_t)(b >> 8);
        p[4 * i + 2] = (uint8_t)(b >> 16);
        p[4 * i + 3] = (uint8_t)(b >> 24);
    }
    int rc = file_write_atomic(path, buf, padded + bytes, err, errlen);
    free(buf);
    return rc;
}

void npy_free(npy_array *a)
{
    if (!a)
        return;
    free(a->data);
    memset(a, 0, sizeof *a);
}
