/* tensors.c — weights files by content: PyTorch zip .pth or .safetensors; half/bf16 conversions. */
#include "io/tensors.h"
#include "io/fileutil.h"
#include "io/ioutil.h"
#include "io/unpickle.h"
#include "io/zip.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t io_dtype_size(int dtype)
{
    return dtype == TT_F32 ? 4 : 2;
}

const char *tt_dtype_name(tt_dtype d)
{
    switch (d) {
    case TT_F32: return "f32";
    case TT_F16: return "f16";
    case TT_BF16: return "bf16";
    }
    return "?";
}

float tt_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);               /* inf / nan (payload kept) */
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13);       /* normal: rebias 15 -> 127 */
    } else if (man == 0) {
        bits = sign;                                           /* +-0 */
    } else {
        /* subnormal: man * 2^-24, normalise */
        int e = -1;
        do {
            man <<= 1;
            e++;
        } while (!(man & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t tt_float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) {
        if (ax == 0x7f800000u)
            return sign | 0x7c00;
        uint32_t m = (ax >> 13) & 0x3ff;
        return (uint16_t)(sign | 0x7c00 | 0x200 | m);      /* quiet NaN, top payload bits kept */
    }
    if (ax >= 0x477ff000u)                                 /* >= 65520 rounds to inf */
        return sign | 0x7c00;
    if (ax >= 0x38800000u) {                               /* normal half */
        uint32_t r = ax - 0x38000000u;                     /* rebias 127 -> 15 */
        r += 0xfff + ((r >> 13) & 1);                      /* round to nearest even */
        return (uint16_t)(sign | (r >> 13));
    }
    if (ax <= 0x33000000u)                                 /* <= 2^-25 (tie goes to even 0) */
        return sign;
    uint32_t e = ax >> 23;                                 /* 102..112 */
    uint32_t m = (ax & 0x7fffffu) | 0x800000u;
    uint32_t s = 126 - e;                                  /* 14..24 */
    uint32_t r = (m + (1u << (s - 1)) - 1 + ((m >> s) & 1)) >> s;
    return (uint16_t)(sign | r);
}

float tt_bf16_to_float(uint16_t b)
{
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t tt_float_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40);               /* quiet NaN */
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

float tt_get(const tt_tensor *t, int64_t i)
{
    if (!t || !t->data || i < 0 || i >= t->numel)
        return NAN;
    const uint8_t *p = t->data + (size_t)i * io_dtype_size(t->dtype);
    switch (t->dtype) {
    case TT_F32: {
        uint32_t b = io_rd32(p);
        float f;
        memcpy(&f, &b, 4);
        return f;
    }
    case TT_F16: return tt_half_to_float(io_rd16(p));
    case TT_BF16: return tt_bf16_to_float(io_rd16(p));
    }
    return NAN;
}

const tt_tensor *tt_find(const tt_table *t, const char *name)
{
    if (!t || !name)
        return NULL;
    for (int i = 0; i < t->count; i++)
        if (strcmp(t->tensors[i].name, name) == 0)
            return &t->tensors[i];
    return NULL;
}

void tt_free(tt_table *t)
{
    if (!t)
        return;
    free(t->tensors);
    free(t->blob);
    memset(t, 0, sizeof *t);
}

static int cmp_name_idx(const void *a, const void *b)
{
    const tt_tensor *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

int io_check_unique_names(const tt_tensor *t, int n, const char *what, char *err, size_t errlen)
{
    if (n < 2)
        return 0;
    const tt_tensor **idx = malloc((size_t)n * sizeof *idx);
    if (!idx)
        return io_err(err, errlen, "%s: out of memory", what);
    for (int i = 0; i < n; i++)
        idx[i] = &t[i];
    qsort(idx, (size_t)n, sizeof *idx, cmp_name_idx);
    int rc = 0;
    for (int i = 1; i < n; i++) {
        if (strcmp(idx[i - 1]->name, idx[i]->name) == 0) {
            char q[96];
            rc = io_err(err, errlen, "%s: duplicate tensor name '%s'", what,
                        io_quote(q, sizeof q, idx[i]->name, strlen(idx[i]->name)));
            break;
        }
    }
    free(idx);
    return rc;
}

/* ---- PyTorch zip ---- */

typedef struct pth_ctx {
    const zip_archive *zip;
    const char *prefix;   /* "<prefix>/" */
    size_t prefix_len;
} pth_ctx;

static int pth_storage(void *vctx, const char *key, size_t key_len, const uint8_t **data, size_t *size, char *err,
                       size_t errlen)
{
    const pth_ctx *c = vctx;
    char name[512];
    char q[96];
    if (key_len == 0 || key_len > 256 || memchr(key, '\0', key_len))
        return io_err(err, errlen, "pickle: invalid storage key '%s'", io_quote(q, sizeof q, key, key_len));
    /* prefix is at most 255 bytes (checked when found) */
    memcpy(name, c->prefix, c->prefix_len);
    memcpy(name + c->prefix_len, "data/", 5);
    memcpy(name + c->prefix_len + 5, key, key_len);
    name[c->prefix_len + 5 + key_len] = '\0';
    const zip_entry *e = zip_find(c->zip, name);
    if (!e) {
        char qn[128];   /* the key comes from the file: quoted in the entry name too */
        return io_err(err, errlen, "pickle: storage '%s' has no data entry '%s' in the zip",
                      io_quote(q, sizeof q, key, key_len), io_quote(qn, sizeof qn, name, strlen(name)));
    }
    *data = e->data;
    *size = e->size;
    return 0;
}

static int load_pth(const uint8_t *blob, size_t size, tt_tensor **out, int *count, char *err, size_t errlen)
{
    zip_archive z;
    if (zip_open(blob, size, &z, err, errlen) != 0)
        return -1;
    int rc = -1;
    const zip_entry *pkl = NULL;
    char q[96];
    for (size_t i = 0; i < z.count; i++) {
        const zip_entry *e = &z.entries[i];
        const char *slash = strchr(e->name, '/');
        if (!slash || strchr(slash + 1, '/') || strcmp(slash + 1, "data.pkl") != 0)
            continue;
        if (pkl) {
            char q2[96];
            io_err(err, errlen, "zip: more than one data.pkl ('%s' and '%s')",
                   io_quote(q, sizeof q, pkl->name, strlen(pkl->name)), io_quote(q2, sizeof q2, e->name, strlen(e->name)));
            goto done;
        }
        pkl = e;
    }
    if (!pkl) {
        io_err(err, errlen, "zip: no '<prefix>/data.pkl' entry (not a PyTorch checkpoint)");
        goto done;
    }
    size_t plen = (size_t)(strchr(pkl->name, '/') - pkl->name) + 1;   /* including '/' */
    if (plen > 255) {
        io_err(err, errlen, "zip: archive prefix is longer than 254 bytes");
        goto done;
    }
    char prefix[256];
    memcpy(prefix, pkl->name, plen);
    prefix[plen] = '\0';
    char bo_name[300];
    snprintf(bo_name, sizeof bo_name, "%sbyteorder", prefix);
    const zip_entry *bo = zip_find(&z, bo_name);
    if (bo && !(bo->size == 6 && memcmp(bo->data, "little", 6) == 0)) {
        io_err(err, errlen, "pth: byteorder is '%s', only 'little' is supported",
               io_quote(q, sizeof q, (const char *)bo->data, bo->size));
        goto done;
    }
    pth_ctx ctx = { &z, prefix, plen };
    rc = unpickle_state_dict(pkl->data, pkl->size, pth_storage, &ctx, out, count, err, errlen);
    if (rc == 0 && (rc = io_check_unique_names(*out, *count, "pickle", err, errlen)) != 0) {
        free(*out);
        *out = NULL;
        *count = 0;
    }
done:
    zip_close(&z);
    return rc;
}

/* Takes ownership of blob (freed on failure). */
static int load_blob(uint8_t *blob, size_t size, tt_table *out, char *err, size_t errlen)
{
    tt_tensor *ts = NULL;
    int count = 0;
    int rc;
    const char *format;
    if (size >= 4 && memcmp(blob, "PK\x03\x04", 4) == 0) {
        format = "pth";
        rc = load_pth(blob, size, &ts, &count, err, errlen);
    } else if (size >= 10 && blob[8] == '{') {
        format = "safetensors";
        rc = io_load_safetensors(blob, size, &ts, &count, err, errlen);
        if (rc == 0 && (rc = io_check_unique_names(ts, count, "safetensors", err, errlen)) != 0) {
            free(ts);
            ts = NULL;
        }
    } else {
        rc = io_err(err, errlen, "not a .pth (zip) or .safetensors file");
        format = NULL;
    }
    if (rc != 0) {
        free(blob);
        return -1;
    }
    out->tensors = ts;
    out->count = count;
    out->blob = blob;
    out->blob_size = size;
    out->format = format;
    return 0;
}

int tt_load_file(const char *path, tt_table *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    uint8_t *blob;
    size_t size;
    if (file_read_all(path, IO_MAX_FILE, &blob, &size, err, errlen) != 0)
        return -1;
    return load_blob(blob, size, out, err, errlen);
}

int tt_load_memory(const uint8_t *data, size_t size, tt_table *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!data && size)
        return io_err(err, errlen, "no data");
    if (size > IO_MAX_FILE)
        return io_err(err, errlen, "file is %zu bytes, more than the limit of %zu", size, IO_MAX_FILE);
    uint8_t *blob = malloc(size ? size : 1);
    if (!blob)
        return io_err(err, errlen, "out of memory copying %zu bytes", size);
    if (size)
        memcpy(blob, data, size);
    return load_blob(blob, size, out, err, errlen);
}

void tt_format_shape(char *buf, size_t len, int ndim, const int64_t *shape)
{
    if (!len)
        return;
    size_t o = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (o < len)
        snprintf(buf + o, len - o, "]");
}
