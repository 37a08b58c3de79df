/* test_io.c — the file-format layer: .pth (zip + restricted unpickler), safetensors, npy, png, half floats. */
#include "testutil.h"

#include "io/fileutil.h"
#include "io/image.h"
#include "io/npy.h"
#include "io/tensors.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SKIP_WITHOUT_SHARED()                                                                                         \
    do {                                                                                                              \
        if (!shared_available()) {                                                                                    \
            print_message("shared data not found (TAESD_SHARED); skipping\n");                                      \
            skip();                                                                                                   \
        }                                                                                                             \
    } while (0)

/* Asserts rc != 0 and that err contains want. */
#define assert_fails_with(rc, err, want)                                                                              \
    do {                                                                                                              \
        int rc_ = (rc);                                                                                               \
        if (rc_ == 0)                                                                                                 \
            fail_msg("expected failure containing \"%s\", got success", (want));                                    \
        if (!strstr((err), (want)))                                                                                   \
            fail_msg("error \"%s\" does not contain \"%s\"", (err), (want));                                        \
        if (strchr((err), '\n'))                                                                                      \
            fail_msg("error \"%s\" has a newline", (err));                                                           \
    } while (0)

/* ---------- a growable byte buffer ---------- */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void b_put(buf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->n + n)
            nc *= 2;
        b->p = realloc(b->p, nc);
        assert_non_null(b->p);
        b->cap = nc;
    }
    if (n)
        memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void b_u8(buf *b, unsigned v) { uint8_t x = (uint8_t)v; b_put(b, &x, 1); }
static void b_u16(buf *b, unsigned v) { b_u8(b, v & 0xff); b_u8(b, (v >> 8) & 0xff); }
static void b_u32(buf *b, uint32_t v) { b_u16(b, v & 0xffff); b_u16(b, v >> 16); }
static void b_u64(buf *b, uint64_t v) { b_u32(b, (uint32_t)v); b_u32(b, (uint32_t)(v >> 32)); }
static void b_s(buf *b, const char *s) { b_put(b, s, strlen(s)); }
static void b_free(buf *b) { free(b->p); memset(b, 0, sizeof *b); }

/* ---------- a minimal stored-zip writer ---------- */

static uint32_t crc32_ref(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return ~c;
}

typedef struct zent {
    const char *name;
    const void *data;
    size_t size;
    unsigned method;
} zent;

/* Writes local headers + data, central directory, EOCD; with zip64, every size and offset goes through the zip64
 * extra fields and the zip64 end records. *cd_at receives the central directory offset. */
static buf make_zip_ex(const zent *e, int n, size_t *cd_at, int zip64)
{
    buf b = { 0 };
    size_t offs[16];
    assert_true(n <= 16);
    for (int i = 0; i < n; i++) {
        offs[i] = b.n;
        b_u32(&b, 0x04034b50);
        b_u16(&b, zip64 ? 45 : 20);
        b_u16(&b, 0);
        b_u16(&b, e[i].method);
        b_u16(&b, 0);
        b_u16(&b, 0);
        b_u32(&b, crc32_ref(e[i].data, e[i].size));
        b_u32(&b, zip64 ? 0xffffffffu : (uint32_t)e[i].size);
        b_u32(&b, zip64 ? 0xffffffffu : (uint32_t)e[i].size);
        b_u16(&b, (unsigned)strlen(e[i].name));
        b_u16(&b, zip64 ? 20 : 0);
        b_s(&b, e[i].name);
        if (zip64) {
            b_u16(&b, 1);
            b_u16(&b, 16);
            b_u64(&b, e[i].size);
            b_u64(&b, e[i].size);
        }
        b_put(&b, e[i].data, e[i].size);
    }
    size_t cd = b.n;
    for (int i = 0; i < n; i++) {
        b_u32(&b, 0x02014b50);
        b_u16(&b, zip64 ? 45 : 20);
        b_u16(&b, zip64 ? 45 : 20);
        b_u16(&b, 0);
        b_u16(&b, e[i].method);
        b_u16(&b, 0);
        b_u16(&b, 0);
        b_u32(&b, crc32_ref(e[i].data, e[i].size));
        b_u32(&b, zip64 ? 0xffffffffu : (uint32_t)e[i].size);
        b_u32(&b, zip64 ? 0xffffffffu : (uint32_t)e[i].size);
        b_u16(&b, (unsigned)strlen(e[i].name));
        b_u16(&b, zip64 ? 28 : 0);
        b_u16(&b, 0);
        b_u16(&b, 0);
        b_u16(&b, 0);
        b_u32(&b, 0);
        b_u32(&b, zip64 ? 0xffffffffu : (uint32_t)offs[i]);
        b_s(&b, e[i].name);
        if (zip64) {
            b_u16(&b, 1);
            b_u16(&b, 24);
            b_u64(&b, e[i].size);
            b_u64(&b, e[i].size);
            b_u64(&b, offs[i]);
        }
    }
    size_t cd_size = b.n - cd;
    if (zip64) {
        size_t rec = b.n;
        b_u32(&b, 0x06064b50);
        b_u64(&b, 44);
        b_u16(&b, 45);
        b_u16(&b, 45);
        b_u32(&b, 0);
        b_u32(&b, 0);
        b_u64(&b, (uint64_t)n);
        b_u64(&b, (uint64_t)n);
        b_u64(&b, cd_size);
        b_u64(&b, cd);
        b_u32(&b, 0x07064b50);
        b_u32(&b, 0);
        b_u64(&b, rec);
        b_u32(&b, 1);
    }
    b_u32(&b, 0x06054b50);
    b_u16(&b, 0);
    b_u16(&b, 0);
    b_u16(&b, zip64 ? 0xffff : (unsigned)n);
    b_u16(&b, zip64 ? 0xffff : (unsigned)n);
    b_u32(&b, zip64 ? 0xffffffffu : (uint32_t)cd_size);
    b_u32(&b, zip64 ? 0xffffffffu : (uint32_t)cd);
    b_u16(&b, 0);
    if (cd_at)
        *cd_at = cd;
    return b;
}

static buf make_zip(const zent *e, int n, size_t *cd_at)
{
    return make_zip_ex(e, n, cd_at, 0);
}

/* ---------- hand-assembled pickles ---------- */

static void pk_str(buf *b, const char *s)
{
    b_u8(b, 'X');
    b_u32(b, (uint32_t)strlen(s));
    b_s(b, s);
}
static void pk_int(buf *b, int64_t v)
{
    if (v >= 0 && v < 256) {
        b_u8(b, 'K');
        b_u8(b, (unsigned)v);
    } else if (v >= 0 && v < 65536) {
        b_u8(b, 'M');
        b_u16(b, (unsigned)v);
    } else {
        b_u8(b, 'J');
        b_u32(b, (uint32_t)(int32_t)v);
    }
}
static void pk_global(buf *b, const char *mod, const char *name)
{
    b_u8(b, 'c');
    b_s(b, mod);
    b_u8(b, '\n');
    b_s(b, name);
    b_u8(b, '\n');
}

typedef struct pk_opts {
    const char *storage_type;
    int64_t storage_numel;
    int64_t offset;
    int ndim;
    int64_t shape[4], stride[4];
} pk_opts;

static const pk_opts PK_DEFAULT = { "FloatStorage", 4, 0, 2, { 2, 2 }, { 2, 1 } };

/* OrderedDict with one tensor 'w' = _rebuild_tensor_v2(storage '0', offset, shape, stride, False, OrderedDict()) */
static buf make_state_pickle(const pk_opts *o)
{
    buf b = { 0 };
    b_u8(&b, 0x80);
    b_u8(&b, 2);
    pk_global(&b, "collections", "OrderedDict");
    b_u8(&b, 'q');
    b_u8(&b, 0);
    b_u8(&b, ')');
    b_u8(&b, 'R');
    b_u8(&b, '(');
    pk_str(&b, "w");
    pk_global(&b, "torch._utils", "_rebuild_tensor_v2");
    b_u8(&b, '(');
    b_u8(&b, '(');
    pk_str(&b, "storage");
    pk_global(&b, "torch", o->storage_type);
    pk_str(&b, "0");
    pk_str(&b, "cpu");
    pk_int(&b, o->storage_numel);
    b_u8(&b, 't');
    b_u8(&b, 'Q');
    pk_int(&b, o->offset);
    b_u8(&b, '(');
    for (int i = 0; i < o->ndim; i++)
        pk_int(&b, o->shape[i]);
    b_u8(&b, 't');
    b_u8(&b, '(');
    for (int i = 0; i < o->ndim; i++)
        pk_int(&b, o->stride[i]);
    b_u8(&b, 't');
    b_u8(&b, 0x89);
    b_u8(&b, 'h');
    b_u8(&b, 0);
    b_u8(&b, ')');
    b_u8(&b, 'R');
    b_u8(&b, 't');
    b_u8(&b, 'R');
    b_u8(&b, 'u');
    /* BUILD with a _metadata state, as torch writes */
    b_u8(&b, '}');
    pk_str(&b, "_metadata");
    b_u8(&b, 'h');
    b_u8(&b, 0);
    b_u8(&b, ')');
    b_u8(&b, 'R');
    b_u8(&b, 's');
    b_u8(&b, 'b');
    b_u8(&b, '.');
    return b;
}

static const float PTH_VALUES[4] = { 1.0f, -2.5f, 3.25f, 1e-3f };

/* A .pth zip: archive/data.pkl, archive/byteorder (if given), archive/data/0 = PTH_VALUES as f32. */
static buf make_pth(const buf *pkl, const char *byteorder)
{
    uint8_t data[16];
    for (int i = 0; i < 4; i++) {
        uint32_t u;
        memcpy(&u, &PTH_VALUES[i], 4);
        for (int k = 0; k < 4; k++)
            data[4 * i + k] = (uint8_t)(u >> (8 * k));
    }
    zent e[3];
    int n = 0;
    e[n++] = (zent){ "archive/data.pkl", pkl->p, pkl->n, 0 };
    if (byteorder)
        e[n++] = (zent){ "archive/byteorder", byteorder, strlen(byteorder), 0 };
    e[n++] = (zent){ "archive/data/0", data, sizeof data, 0 };
    return make_zip(e, n, NULL);
}

static int load_pickle(const buf *pkl, tt_table *t, char *err, size_t errlen)
{
    buf z = make_pth(pkl, "little");
    int rc = tt_load_memory(z.p, z.n, t, err, errlen);
    b_free(&z);
    return rc;
}

static void expect_pickle_error(const buf *pkl, const char *want)
{
    tt_table t;
    char err[512] = "";
    int rc = load_pickle(pkl, &t, err, sizeof err);
    assert_fails_with(rc, err, want);
    assert_int_equal(t.count, 0);
    assert_null(t.tensors);
    assert_null(t.blob);
}

/* ---------- 1. real weight files ---------- */

typedef struct wfile {
    const char *name;
    const char *format;
    int count;
} wfile;

static void test_weights_load_all(void **state)
{
    (void)state;
    SKIP_WITHOUT_SHARED();
    static const wfile files[] = {
        { "taef2_encoder.pth", "pth", 79 },
        { "taef2_decoder.pth", "pth", 79 },
        { "taesana_encoder.pth", "pth", 69 },
        { "synth_sd_encoder_f32.pth", "pth", 67 },
        { "synth_sd_decoder_f32.pth", "pth", 67 },
        { "synth_sd_encoder_f16.safetensors", "safetensors", 67 },
        { "synth_sd_decoder_f16.safetensors", "safetensors", 67 },
        { "synth_sd_diffusers_f32.safetensors", "safetensors", 134 },
        { "synth_sd_comfy_combined_f16.safetensors", "safetensors", 136 },
        { "synth_sd3_decoder_bf16.safetensors", "safetensors", 67 },
        { "synth_sana_decoder_f16.safetensors", "safetensors", 105 },
    };
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char rel[128], err[512] = "";
        snprintf(rel, sizeof rel, "weights/%s", files[f].name);
        tt_table t;
        int rc = tt_load_file(shared_path(rel), &t, err, sizeof err);
        if (rc != 0)
            fail_msg("%s: %s", files[f].name, err);
        assert_string_equal(t.format, files[f].format);
        assert_int_equal(t.count, files[f].count);
        for (int i = 0; i < t.count; i++) {
            const tt_tensor *x = &t.tensors[i];
            size_t es = x->dtype == TT_F32 ? 4 : 2;
            int64_t n = 1;
            for (int d = 0; d < x->ndim; d++)
                n *= x->shape[d];
            assert_int_equal(n, x->numel);
            assert_true(x->data >= t.blob);
            assert_true((size_t)(x->data - t.blob) + (size_t)x->numel * es <= t.blob_size);
            assert_ptr_equal(tt_find(&t, x->name), x);
        }
        assert_null(tt_find(&t, "no.such.tensor"));
        tt_free(&t);
        assert_null(t.blob);
        assert_int_equal(t.count, 0);
    }
}

static void load_shared(const char *rel, tt_table *t)
{
    char err[512] = "";
    char path[256];
    snprintf(path, sizeof path, "weights/%s", rel);
    if (tt_load_file(shared_path(path), t, err, sizeof err) != 0)
        fail_msg("%s: %s", rel, err);
}

static const tt_tensor *find_checked(const tt_table *t, const char *name, tt_dtype dt, int ndim, int64_t s0,
                                     int64_t s1, int64_t s2, int64_t s3)
{
    const tt_tensor *x = tt_find(t, name);
    if (!x)
        fail_msg("tensor %s missing", name);
    assert_int_equal(x->dtype, dt);
    assert_int_equal(x->ndim, ndim);
    int64_t s[4] = { s0, s1, s2, s3 };
    for (int i = 0; i < ndim; i++)
        assert_int_equal(x->shape[i], s[i]);
    return x;
}

static double tensor_sum(const tt_tensor *x)
{
    double s = 0;
    for (int64_t i = 0; i < x->numel; i++)
        s += tt_get(x, i);
    return s;
}

static void test_weights_shapes_values(void **state)
{
    (void)state;
    SKIP_WITHOUT_SHARED();
    tt_table t;
    const tt_tensor *x;

    load_shared("taef2_decoder.pth", &t);
    x = find_checked(&t, "3.pool.0.weight", TT_F16, 4, 256, 64, 1, 1);
    assert_float_equal(tt_get(x, 0), 0.034576416015625, 0);
    assert_float_equal(tt_get(x, 1), -0.13427734375, 0);
    assert_float_equal(tt_get(x, 2), -0.105224609375, 0);
    assert_float_equal(tensor_sum(x), -38.85381716489792, 1e-9);
    assert_string_equal(t.tensors[0].name, "1.weight");       /* insertion order */
    assert_string_equal(t.tensors[t.count - 1].name, "19.bias");
    assert_string_equal(tt_dtype_name(x->dtype), "f16");
    tt_free(&t);

    load_shared("synth_sd_decoder_f32.pth", &t);
    x = find_checked(&t, "1.weight", TT_F32, 4, 64, 4, 3, 3);
    assert_float_equal(tt_get(x, 0), 0.1549072265625, 0);
    assert_float_equal(tt_get(x, 2), 0.2744140625, 0);
    assert_float_equal(tensor_sum(x), 8.945783495903015, 1e-9);
    assert_true(isnan(tt_get(x, x->numel)));   /* out of range */
    assert_string_equal(tt_dtype_name(x->dtype), "f32");
    tt_free(&t);

    load_shared("synth_sd3_decoder_bf16.safetensors", &t);
    x = find_checked(&t, "1.weight", TT_BF16, 4, 64, 16, 3, 3);
    assert_float_equal(tt_get(x, 0), 0.1748046875, 0);
    assert_float_equal(tt_get(x, 1), -0.1494140625, 0);
    assert_float_equal(tensor_sum(x), 17.1502423286438, 1e-9);
    assert_string_equal(tt_dtype_name(x->dtype), "bf16");
    tt_free(&t);

    load_shared("synth_sd_comfy_combined_f16.safetensors", &t);
    x = find_checked(&t, "vae_scale", TT_F16, 0, 0, 0, 0, 0);
    assert_int_equal(x->numel, 1);
    assert_float_equal(tt_get(x, 0), 0.18212890625, 0);
    assert_float_equal(tt_get(x, 0), 0.18215, 1e-4);
    x = find_checked(&t, "vae_shift", TT_F16, 0, 0, 0, 0, 0);
    assert_float_equal(tt_get(x, 0), 0.0, 0);
    find_checked(&t, "taesd_decoder.1.weight", TT_F16, 4, 64, 4, 3, 3);
    tt_free(&t);

    load_shared("synth_sana_decoder_f16.safetensors", &t);
    find_checked(&t, "1.weight", TT_F16, 4, 256, 32, 3, 3);
    find_checked(&t, "29.bias", TT_F16, 1, 3, 0, 0, 0);
    tt_free(&t);
}

/* ---------- 2. the same values across formats ---------- */

static void compare_tables(const tt_table *ref, const tt_table *other, const char *prefix, int index_shift)
{
    int matched = 0;
    for (int i = 0; i < ref->count; i++) {
        const tt_tensor *a = &ref->tensors[i];
        char name[TT_NAME_MAX + 64];
        const char *dot = strchr(a->name, '.');
        assert_non_null(dot);
        if (index_shift) {
            int idx = atoi(a->name);
            snprintf(name, sizeof name, "%s%d%s", prefix, idx + index_shift, dot);
        } else {
            snprintf(name, sizeof name, "%s%s", prefix, a->name);
        }
        const tt_tensor *b = tt_find(other, name);
        if (!b)
            fail_msg("%s (for %s) missing", name, a->name);
        assert_int_equal(a->ndim, b->ndim);
        for (int d = 0; d < a->ndim; d++)
            assert_int_equal(a->shape[d], b->shape[d]);
        assert_int_equal(a->numel, b->numel);
        for (int64_t k = 0; k < a->numel; k++) {
            float va = tt_get(a, k), vb = tt_get(b, k);
            if (va != vb)
                fail_msg("%s[%lld]: %.9g vs %s %.9g", a->name, (long long)k, va, name, vb);
        }
        matched++;
    }
    assert_int_equal(matched, ref->count);
}

static void test_cross_format(void **state)
{
    (void)state;
    SKIP_WITHOUT_SHARED();
    tt_table dec, enc, dec16, enc16, diff, comfy;
    load_shared("synth_sd_decoder_f32.pth", &dec);
    load_shared("synth_sd_encoder_f32.pth", &enc);
    load_shared("synth_sd_decoder_f16.safetensors", &dec16);
    load_shared("synth_sd_encoder_f16.safetensors", &enc16);
    load_shared("synth_sd_diffusers_f32.safetensors", &diff);
    load_shared("synth_sd_comfy_combined_f16.safetensors", &comfy);
    assert_int_equal(dec.tensors[0].dtype, TT_F32);
    assert_int_equal(dec16.tensors[0].dtype, TT_F16);

    compare_tables(&dec, &dec16, "", 0);
    compare_tables(&enc, &enc16, "", 0);
    compare_tables(&dec, &diff, "decoder.layers.", -1);   /* decoder N = Sequential index - 1 */
    compare_tables(&enc, &diff, "encoder.layers.", 0);
    compare_tables(&dec, &comfy, "taesd_decoder.", 0);
    compare_tables(&enc, &comfy, "taesd_encoder.", 0);

    tt_free(&dec);
    tt_free(&enc);
    tt_free(&dec16);
    tt_free(&enc16);
    tt_free(&diff);
    tt_free(&comfy);
}

/* ---------- 3a. zip ---------- */

static void test_zip_truncated(void **state)
{
    (void)state;
    SKIP_WITHOUT_SHARED();
    size_t size;
    uint8_t *d = read_all(shared_path("weights/taef2_decoder.pth"), &size);
    assert_non_null(d);
    size_t cuts[] = { 100, size / 2, size - 1, size - 21 };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        tt_table t;
        char err[512] = "";
        int rc = tt_load_memory(d, cuts[i], &t, err, sizeof err);
        assert_fails_with(rc, err, "zip: end of central directory record not found");
        assert_null(t.blob);
    }
    tt_table t;
    char err[512] = "";
    assert_fails_with(tt_load_memory(d, 10, &t, err, sizeof err), err, "zip: file is too short (10 bytes)");
    assert_fails_with(tt_load_memory(d, 4, &t, err, sizeof err), err, "zip: file is too short");
    assert_fails_with(tt_load_memory(d, 0, &t, err, sizeof err), err, "not a .pth (zip) or .safetensors file");
    /* the old layout too */
    free(d);
    d = read_all(shared_path("weights/synth_sd_decoder_f32.pth"), &size);
    assert_non_null(d);
    assert_fails_with(tt_load_memory(d, size / 3, &t, err, sizeof err), err, "zip: end of central directory");
    /* one flipped data byte: CRC */
    d[size / 2] ^= 0x55;
    assert_fails_with(tt_load_memory(d, size, &t, err, sizeof err), err, "fails its CRC-32 check");
    free(d);
}

static void test_zip_synthetic_ok(void **state)
{
    (void)state;
    buf pkl = make_state_pickle(&PK_DEFAULT);
    tt_table t;
    char err[512] = "";
    int rc = load_pickle(&pkl, &t, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    assert_string_equal(t.format, "pth");
    assert_int_equal(t.count, 1);
    const tt_tensor *w = tt_find(&t, "w");
    assert_non_null(w);
    assert_int_equal(w->ndim, 2);
    assert_int_equal(w->shape[0], 2);
    assert_int_equal(w->shape[1], 2);
    for (int i = 0; i < 4; i++)
        assert_float_equal(tt_get(w, i), PTH_VALUES[i], 0);
    tt_free(&t);

    /* storage offset 1 with a 3-element 1-D view; no byteorder entry (old layout) */
    pk_opts o = PK_DEFAULT;
    o.offset = 1;
    o.ndim = 1;
    o.shape[0] = 3;
    o.stride[0] = 1;
    b_free(&pkl);
    pkl = make_state_pickle(&o);
    buf z = make_pth(&pkl, NULL);
    rc = tt_load_memory(z.p, z.n, &t, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    w = tt_find(&t, "w");
    assert_int_equal(w->numel, 3);
    assert_float_equal(tt_get(w, 0), PTH_VALUES[1], 0);
    assert_float_equal(tt_get(w, 2), PTH_VALUES[3], 0);
    tt_free(&t);
    b_free(&z);

    /* size-1 dims may carry any stride (PyTorch contiguity rule) */
    o = PK_DEFAULT;
    o.ndim = 3;
    o.shape[0] = 1, o.shape[1] = 2, o.shape[2] = 2;
    o.stride[0] = 99, o.stride[1] = 2, o.stride[2] = 1;
    b_free(&pkl);
    pkl = make_state_pickle(&o);
    rc = load_pickle(&pkl, &t, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    tt_free(&t);
    b_free(&pkl);
}

static void test_zip64(void **state)
{
    (void)state;
    buf pkl = make_state_pickle(&PK_DEFAULT);
    uint8_t data[16];
    memcpy(data, PTH_VALUES, sizeof data);   /* little-endian host */
    zent e[3] = {
        { "archive/data.pkl", pkl.p, pkl.n, 0 },
        { "archive/byteorder", "little", 6, 0 },
        { "archive/data/0", data, sizeof data, 0 },
    };
    buf z = make_zip_ex(e, 3, NULL, 1);
    tt_table t;
    char err[512] = "";
    if (tt_load_memory(z.p, z.n, &t, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(t.count, 1);
    assert_float_equal(tt_get(&t.tensors[0], 2), PTH_VALUES[2], 0);
    tt_free(&t);
    /* drop the zip64 locator's signature: the saturated EOCD can no longer be resolved */
    z.p[z.n - 22 - 20] = 'X';
    assert_fails_with(tt_load_memory(z.p, z.n, &t, err, sizeof err), err, "zip64 end of central directory locator");
    z.p[z.n - 22 - 20] = 0x50;
    /* point the locator past the end */
    z.p[z.n - 22 - 20 + 8 + 5] = 0x7f;
    assert_fails_with(tt_load_memory(z.p, z.n, &t, err, sizeof err), err, "zip64 end of central directory record");
    b_free(&z);
    b_free(&pkl);
}

static void expect_zip_error(const zent *e, int n, const char *want)
{
    buf z = make_zip(e, n, NULL);
    tt_table t;
    char err[512] = "";
    int rc = tt_load_memory(z.p, z.n, &t, err, sizeof err);
    assert_fails_with(rc, err, want);
    b_free(&z);
}

static void test_zip_hostile(void **state)
{
    (void)state;
    buf pkl = make_state_pickle(&PK_DEFAULT);
    uint8_t data[16] = { 0 };
    zent e[3] = {
        { "archive/data.pkl", pkl.p, pkl.n, 0 },
        { "../evil", data, sizeof data, 0 },
        { "archive/data/0", data, sizeof data, 0 },
    };
    expect_zip_error(e, 3, "zip: entry name '../evil' contains a '..' component (path traversal)");
    e[1].name = "archive/../../evil";
    expect_zip_error(e, 3, "path traversal");
    e[1].name = "archive\\..\\evil";
    expect_zip_error(e, 3, "path traversal");
    e[1].name = "/etc/passwd";
    expect_zip_error(e, 3, "zip: entry name '/etc/passwd' is an absolute path");
    e[1].name = "C:\\evil";
    expect_zip_error(e, 3, "is an absolute path");
    e[1].name = "archive/byteorder";
    e[1].data = "big";
    e[1].size = 3;
    expect_zip_error(e, 3, "byteorder is 'big'");
    e[1].name = "archive/data/0";
    expect_zip_error(e, 3, "zip: duplicate entry name 'archive/data/0'");
    e[1].name = "archive/x";
    e[2].method = 8;
    expect_zip_error(e, 3, "zip: entry 'archive/data/0' is compressed (method 8)");
    e[2].method = 0;
    e[0].name = "archive/sub/data.pkl";
    expect_zip_error(e, 3, "no '<prefix>/data.pkl' entry");
    e[0].name = "archive/data.pkl";
    e[2].name = "archive/data/1";
    expect_zip_error(e, 3, "pickle: storage '0' has no data entry 'archive/data/0'");
    e[2].name = "archive/data/0";

    /* offsets patched past the end */
    size_t cd;
    buf z = make_zip(e, 3, &cd);
    tt_table t;
    char err[512] = "";
    buf y = { 0 };
    b_put(&y, z.p, z.n);
    /* entry 1's local header offset (central record 1 starts after record 0) */
    size_t rec1 = cd + 46 + strlen(e[0].name);
    y.p[rec1 + 42] = 0xff, y.p[rec1 + 43] = 0xff, y.p[rec1 + 44] = 0xff, y.p[rec1 + 45] = 0x7f;
    assert_fails_with(tt_load_memory(y.p, y.n, &t, err, sizeof err), err,
                      "zip: central directory entry 1 points past the end of the file");
    memcpy(y.p, z.p, z.n);
    /* entry 0's size (both fields) huge */
    for (int k = 20; k < 28; k++)
        y.p[cd + (size_t)k] = 0xf0;
    assert_fails_with(tt_load_memory(y.p, y.n, &t, err, sizeof err), err, "runs past the end of the file");
    memcpy(y.p, z.p, z.n);
    /* central directory offset past the end */
    y.p[z.n - 6] = 0xff, y.p[z.n - 5] = 0xff, y.p[z.n - 4] = 0xff;
    assert_fails_with(tt_load_memory(y.p, y.n, &t, err, sizeof err), err, "zip: central directory (offset");
    memcpy(y.p, z.p, z.n);
    /* entry count larger than the directory can hold */
    y.p[z.n - 12] = 0xff, y.p[z.n - 11] = 0x7f, y.p[z.n - 14] = 0xff, y.p[z.n - 13] = 0x7f;
    assert_fails_with(tt_load_memory(y.p, y.n, &t, err, sizeof err), err, "central directory claims 32767 entries");
    memcpy(y.p, z.p, z.n);
    /* the same file loads untouched */
    if (tt_load_memory(y.p, y.n, &t, err, sizeof err) != 0)
        fail_msg("%s", err);
    tt_free(&t);
    b_free(&y);
    b_free(&z);
    b_free(&pkl);
}

/* ---------- 3b. pickles ---------- */

/* Written by CPython's pickle (protocol 4: FRAME, MEMOIZE, STACK_GLOBAL, SHORT_BINUNICODE) with stand-in torch
 * classes: OrderedDict a.weight [2,2] f32 storage '0'; a.bias [2] f16 storage '1' offset 1; shared [2] storage '0'
 * offset 2; _metadata BUILD. */
static const char PICKLE_P4[] =
    "\x80\x04\x95\x33\x01\x00\x00\x00\x00\x00\x00\x8c\x0b\x63\x6f\x6c"
    "\x6c\x65\x63\x74\x69\x6f\x6e\x73\x94\x8c\x0b\x4f\x72\x64\x65\x72"
    "\x65\x64\x44\x69\x63\x74\x94\x93\x94\x29\x52\x94\x28\x8c\x08\x61"
    "\x2e\x77\x65\x69\x67\x68\x74\x94\x8c\x0c\x74\x6f\x72\x63\x68\x2e"
    "\x5f\x75\x74\x69\x6c\x73\x94\x8c\x12\x5f\x72\x65\x62\x75\x69\x6c"
    "\x64\x5f\x74\x65\x6e\x73\x6f\x72\x5f\x76\x32\x94\x93\x94\x28\x28"
    "\x8c\x07\x73\x74\x6f\x72\x61\x67\x65\x94\x8c\x05\x74\x6f\x72\x63"
    "\x68\x94\x8c\x0c\x46\x6c\x6f\x61\x74\x53\x74\x6f\x72\x61\x67\x65"
    "\x94\x93\x94\x8c\x01\x30\x94\x8c\x03\x63\x70\x75\x94\x4b\x04\x74"
    "\x94\x51\x4b\x00\x4b\x02\x4b\x02\x86\x94\x4b\x02\x4b\x01\x86\x94"
    "\x89\x68\x02\x29\x52\x94\x74\x94\x52\x94\x8c\x06\x61\x2e\x62\x69"
    "\x61\x73\x94\x68\x07\x28\x28\x68\x08\x68\x09\x8c\x0b\x48\x61\x6c"
    "\x66\x53\x74\x6f\x72\x61\x67\x65\x94\x93\x94\x8c\x01\x31\x94\x68"
    "\x0d\x4b\x03\x74\x94\x51\x4b\x01\x4b\x02\x85\x94\x4b\x01\x85\x94"
    "\x89\x68\x02\x29\x52\x94\x74\x94\x52\x94\x8c\x06\x73\x68\x61\x72"
    "\x65\x64\x94\x68\x07\x28\x28\x68\x08\x68\x0b\x68\x0c\x68\x0d\x4b"
    "\x04\x74\x94\x51\x4b\x02\x68\x19\x68\x1a\x89\x68\x02\x29\x52\x94"
    "\x74\x94\x52\x94\x75\x7d\x94\x8c\x09\x5f\x6d\x65\x74\x61\x64\x61"
    "\x74\x61\x94\x68\x02\x29\x52\x94\x8c\x00\x94\x7d\x94\x8c\x07\x76"
    "\x65\x72\x73\x69\x6f\x6e\x94\x4b\x01\x73\x73\x73\x62\x2e";

static void test_pickle_protocol4(void **state)
{
    (void)state;
    uint8_t d0[16], d1[6] = { 0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38 };   /* f16 1, -2, 0.5 */
    memcpy(d0, PTH_VALUES, sizeof d0);                                 /* little-endian host */
    zent e[3] = {
        { "p4/data.pkl", PICKLE_P4, sizeof PICKLE_P4 - 1, 0 },
        { "p4/data/0", d0, sizeof d0, 0 },
        { "p4/data/1", d1, sizeof d1, 0 },
    };
    buf z = make_zip(e, 3, NULL);
    tt_table t;
    char err[512] = "";
    if (tt_load_memory(z.p, z.n, &t, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(t.count, 3);
    assert_string_equal(t.tensors[0].name, "a.weight");
    assert_string_equal(t.tensors[1].name, "a.bias");
    assert_string_equal(t.tensors[2].name, "shared");
    assert_int_equal(t.tensors[0].dtype, TT_F32);
    assert_int_equal(t.tensors[1].dtype, TT_F16);
    assert_float_equal(tt_get(&t.tensors[0], 3), PTH_VALUES[3], 0);
    assert_int_equal(t.tensors[1].numel, 2);
    assert_float_equal(tt_get(&t.tensors[1], 0), -2.0, 0);
    assert_float_equal(tt_get(&t.tensors[1], 1), 0.5, 0);
    assert_float_equal(tt_get(&t.tensors[2], 0), PTH_VALUES[2], 0);
    assert_float_equal(tt_get(&t.tensors[2], 1), PTH_VALUES[3], 0);
    tt_free(&t);
    b_free(&z);
}

static void test_pickle_forbidden_globals(void **state)
{
    (void)state;
    const char *sentinel = "/tmp/taesd-test-pwned";
    unlink(sentinel);
    buf b = { 0 };
    b_u8(&b, 0x80);
    b_u8(&b, 2);
    pk_global(&b, "posix", "system");
    b_u8(&b, '(');
    pk_str(&b, "touch /tmp/taesd-test-pwned");
    b_u8(&b, 't');
    b_u8(&b, 'R');
    b_u8(&b, '.');
    expect_pickle_error(&b, "pickle: forbidden global 'posix.system' (only collections.OrderedDict, "
                            "torch._utils._rebuild_tensor_v2 and torch.*Storage are allowed)");
    assert_int_not_equal(access(sentinel, F_OK), 0);
    b_free(&b);

    /* STACK_GLOBAL */
    b_u8(&b, 0x80);
    b_u8(&b, 4);
    b_u8(&b, 0x8c);
    b_u8(&b, 8);
    b_s(&b, "builtins");
    b_u8(&b, 0x8c);
    b_u8(&b, 4);
    b_s(&b, "eval");
    b_u8(&b, 0x93);
    b_u8(&b, '.');
    expect_pickle_error(&b, "pickle: forbidden global 'builtins.eval'");
    b_free(&b);

    b_u8(&b, 0x80);
    b_u8(&b, 2);
    pk_global(&b, "torch._utils", "_rebuild_parameter");
    b_u8(&b, '.');
    expect_pickle_error(&b, "forbidden global 'torch._utils._rebuild_parameter'");
    b_free(&b);

    pk_opts o = PK_DEFAULT;
    o.storage_type = "DoubleStorage";
    b = make_state_pickle(&o);
    expect_pickle_error(&b, "storage type 'torch.DoubleStorage' is not supported");
    b_free(&b);

    /* REDUCE on a storage class is not a call we allow */
    b_u8(&b, 0x80);
    b_u8(&b, 2);
    pk_global(&b, "torch", "FloatStorage");
    b_u8(&b, ')');
    b_u8(&b, 'R');
    b_u8(&b, '.');
    expect_pickle_error(&b, "REDUCE on 'torch.FloatStorage' is not allowed");
    b_free(&b);

    /* an opcode outside the supported set (INST) */
    b_u8(&b, 0x80);
    b_u8(&b, 2);
    b_s(&b, "(ios\nsystem\n.");
    expect_pickle_error(&b, "pickle: unsupported opcode at offset 3 (opcode 'i')");
    b_free(&b);
}

static void test_pickle_limits(void **state)
{
    (void)state;
    buf b = { 0 };
    b_u8(&b, 0x80);
    b_u8(&b, 2);
    for (int i = 0; i < 100000; i++)
        b_u8(&b, '(');
    b_u8(&b, '.');
    expect_pickle_error(&b, "pickle: MARK nesting limit exceeded");
    b_free(&b);

    b_u8(&b, 0x80);
    b_u8(&b, 2);
    for (int i = 0; i < 200000; i++)
        b_u8(&b, ']');
    b_u8(&b, '.');
    expect_pickle_error(&b, "pickle: stack size limit exceeded");
    b_free(&b);

    /* 100 lists, each appended into the one below: nesting depth */
    b_u8(&b, 0x80);
    b_u8(&b, 2);
    for (int i = 0; i < 100; i++)
        b_u8(&b, ']');
    for (int i = 0; i < 99; i++)
        b_u8(&b, 'a');
    b_u8(&b, '.');
    expect_pickle_error(&b, "pickle: nesting depth limit exceeded");
    b_free(&b);

    /* TUPLE1 nesting */
    b_u8(&b, 0x80);
    b_u8(&b, 2);
    b_u8(&b, ')');
    for (int i = 0; i < 1000; i++)
        b_u8(&b, 0x85);
    b_u8(&b, '.');
    expect_pickle_error(&b, "pickle: nesting depth limit exceeded");
    b_free(&b);

    /* a list that contains itself, appended to forever */
    b_u8(&b, 0x80);
    b_u8(&b, 2);
    b_u8(&b, ']');
    b_u8(&b, 'q');
    b_u8(&b, 0);
    for (int i = 0; i < 1000; i++) {
        b_u8(&b, 'h');
        b_u8(&b, 0);
        b_u8(&b, 'a');
    }
    b_u8(&b, '.');
    expect_pickle_error(&b, "limit exceeded");
    b_free(&b);

    b_u8(&b, 0x80);
    b_u8(&b, 2);
    b_u8(&b, 'N');
    b_u8(&b, 'r');
    b_u32(&b, 0xffffffffu);
    b_u8(&b, '.');
    expect_pickle_error(&b, "pickle: memo limit exceeded");
    b_free(&b);

    b_u8(&b, 0x80);
    b_u8(&b, 2);
    b_u8(&b, 'h');
    b_u8(&b, 7);
    b_u8(&b, '.');
    expect_pickle_error(&b, "memo slot 7 read before it was set");
    b_free(&b);

    b_u8(&b, 0x80);
    b_u8(&b, 2);
    b_u8(&b, 'X');
    b_u32(&b, 0x7fffffffu);
    b_s(&b, "abc");
    expect_pickle_error(&b, "string runs past the end of the data");
    b_free(&b);

    b_u8(&b, 0x80);
    b_u8(&b, 9);
    b_u8(&b, '.');
    expect_pickle_error(&b, "protocol 9 not supported");
    b_free(&b);

    b_u8(&b, 0x80);
    b_u8(&b, 2);
    b_u8(&b, 'a');
    expect_pickle_error(&b, "pickle: stack underflow at offset 2 (opcode 'a')");
    b_free(&b);
}

static void test_pickle_tensor_checks(void **state)
{
    (void)state;
    pk_opts o = PK_DEFAULT;
    o.offset = 3;   /* 3 + 4 elements > 4 */
    buf b = make_state_pickle(&o);
    expect_pickle_error(&b, "pickle: tensor 'w' (storage offset 3 + 4 elements) runs past the end of storage '0' "
                            "(4 elements)");
    b_free(&b);

    o = PK_DEFAULT;
    o.offset = 70000;
    o.ndim = 1;
    o.shape[0] = 0;
    o.stride[0] = 1;
    b = make_state_pickle(&o);
    expect_pickle_error(&b, "runs past the end of storage '0'");
    b_free(&b);

    o = PK_DEFAULT;
    o.storage_numel = 100;   /* the entry holds 16 bytes */
    b = make_state_pickle(&o);
    expect_pickle_error(&b, "pickle: storage '0' declares 100 f32 elements but its data entry holds only 16 bytes");
    b_free(&b);

    o = PK_DEFAULT;
    o.stride[0] = 1;
    o.stride[1] = 2;   /* transposed */
    b = make_state_pickle(&o);
    expect_pickle_error(&b, "pickle: tensor 'w' is not contiguous (size [2, 2], stride [1, 2])");
    b_free(&b);

    o = PK_DEFAULT;
    o.ndim = 1;
    o.shape[0] = 2;
    o.stride[0] = 2;   /* every other element */
    b = make_state_pickle(&o);
    expect_pickle_error(&b, "is not contiguous");
    b_free(&b);

    /* a valid pickle cut at every length */
    o = PK_DEFAULT;
    b = make_state_pickle(&o);
    for (size_t n = 0; n < b.n; n++) {
        buf c = { 0 };
        b_put(&c, b.p, n);
        tt_table t;
        char err[512] = "";
        int rc = load_pickle(&c, &t, err, sizeof err);
        if (rc == 0)
            fail_msg("pickle cut at %zu loaded", n);
        if (strncmp(err, "pickle: ", 8) != 0)
            fail_msg("cut at %zu: %s", n, err);
        b_free(&c);
    }
    /* the top level must be a dict of tensors */
    buf c = { 0 };
    b_u8(&c, 0x80);
    b_u8(&c, 2);
    b_u8(&c, '}');
    pk_str(&c, "x");
    pk_int(&c, 5);
    b_u8(&c, 's');
    b_u8(&c, '.');
    expect_pickle_error(&c, "pickle: value of 'x' is not a tensor");
    b_free(&c);
    b_u8(&c, 0x80);
    b_u8(&c, 2);
    b_u8(&c, ']');
    b_u8(&c, '.');
    expect_pickle_error(&c, "pickle: the top-level object is not a dict");
    b_free(&c);
    b_free(&b);
}

/* Flips bytes in valid inputs; every outcome must be a clean success or a one-line error (valgrind watches). */
static void test_fuzz_flips(void **state)
{
    (void)state;
    buf pkl = make_state_pickle(&PK_DEFAULT);
    buf z = make_pth(&pkl, "little");
    uint32_t s = 12345;
    int failures = 0;
    for (int it = 0; it < 3000; it++) {
        buf y = { 0 };
        b_put(&y, z.p, z.n);
        for (int k = 0; k < 1 + it % 3; k++) {
            s = s * 1103515245u + 12345u;
            size_t pos = (s >> 8) % y.n;
            s = s * 1103515245u + 12345u;
            y.p[pos] ^= (uint8_t)(1u << ((s >> 16) & 7));
        }
        tt_table t;
        char err[512] = "";
        int rc = tt_load_memory(y.p, y.n, &t, err, sizeof err);
        if (rc == 0) {
            tt_free(&t);
        } else {
            failures++;
            assert_true(strlen(err) > 0);
            assert_null(strchr(err, '\n'));
        }
        b_free(&y);
    }
    /* the zip CRC catches nearly every flip inside stored data, other flips break the structure */
    assert_true(failures > 2500);
    b_free(&z);
    b_free(&pkl);
}

/* ---------- 3c. safetensors ---------- */

static buf make_st(const char *json, const void *data, size_t n)
{
    buf b = { 0 };
    b_u64(&b, strlen(json));
    b_s(&b, json);
    b_put(&b, data, n);
    return b;
}

static void expect_st_error(const char *json, size_t datalen, const char *want)
{
    uint8_t data[64] = { 0 };
    assert_true(datalen <= sizeof data);
    buf b = make_st(json, data, datalen);
    tt_table t;
    char err[512] = "";
    assert_fails_with(tt_load_memory(b.p, b.n, &t, err, sizeof err), err, want);
    assert_null(t.tensors);
    b_free(&b);
}

static void test_safetensors_synthetic_ok(void **state)
{
    (void)state;
    uint8_t data[10];
    float v[2] = { 1.5f, -3.0f };
    memcpy(data, v, 8);   /* little-endian host */
    data[8] = 0x00;
    data[9] = 0x3c;       /* f16 1.0 */
    buf b = make_st("{\"__metadata__\":{\"format\":\"pt\",\"x\":\"y\"}, \"a\\u00e9/\\\"q\\\"\" : {\"shape\":[2],"
                    "\"dtype\":\"F32\",\"data_offsets\":[0,8]},\"s\":{\"dtype\":\"F16\",\"shape\":[],"
                    "\"data_offsets\":[8,10]},\"z\":{\"dtype\":\"F16\",\"shape\":[0,3],\"data_offsets\":[10,10]}}  ",
                    data, sizeof data);
    tt_table t;
    char err[512] = "";
    if (tt_load_memory(b.p, b.n, &t, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_string_equal(t.format, "safetensors");
    assert_int_equal(t.count, 3);
    assert_string_equal(t.tensors[0].name, "a\xc3\xa9/\"q\"");
    assert_float_equal(tt_get(&t.tensors[0], 1), -3.0, 0);
    assert_int_equal(t.tensors[1].ndim, 0);
    assert_float_equal(tt_get(&t.tensors[1], 0), 1.0, 0);
    assert_int_equal(t.tensors[2].numel, 0);
    tt_free(&t);
    b_free(&b);
}

static void test_safetensors_hostile(void **state)
{
    (void)state;
    /* header length past the end of the file */
    buf b = { 0 };
    b_u64(&b, 99999999);
    b_s(&b, "{\"a\":1}");
    while (b.n < 1234)
        b_u8(&b, ' ');
    tt_table t;
    char err[512] = "";
    assert_fails_with(tt_load_memory(b.p, b.n, &t, err, sizeof err), err,
                      "safetensors: header length 99999999 is past the end of the file (size 1234)");
    /* the same with an absurd 64-bit length */
    for (int k = 0; k < 8; k++)
        b.p[k] = 0xff;
    assert_fails_with(tt_load_memory(b.p, b.n, &t, err, sizeof err), err,
                      "safetensors: header length 18446744073709551615 is past the end of the file");
    b_free(&b);

    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                    16, "safetensors: tensors 'a' and 'b' have overlapping data ranges");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                    "\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[12,16]}}",
                    16, "overlapping data ranges");
    expect_st_error("{\"w\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]}}", 16,
                    "safetensors: tensor 'w' has dtype 'F64' (only F32, F16 and BF16 are supported)");
    expect_st_error("{\"w\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}", 16, "dtype 'I64'");
    expect_st_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,32]}}", 16,
                    "safetensors: tensor 'w' data range [16, 32] is past the end of the data area (16 bytes)");
    expect_st_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 16,
                    "safetensors: tensor 'w' has 8 bytes of data but its shape needs 12");
    expect_st_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 16, "end before they begin");
    expect_st_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4611686018427387904],"
                    "\"data_offsets\":[0,8]}}", 16, "element count overflows");
    expect_st_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,2],\"data_offsets\":[0,8]}}", 16,
                    "at most 4 dimensions");
    expect_st_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 16,
                    "field 'shape' must hold non-negative integers");
    expect_st_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", 16, "tensor 'w' lacks 'data_offsets'");
    expect_st_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                    16, "safetensors: duplicate tensor name 'w'");
    expect_st_error("{\"w\":{\"dtype\":\"F32\",\"sha", 16, "safetensors: JSON header ends unexpectedly");
    expect_st_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 16,
                    "JSON header ends unexpectedly");
    expect_st_error("{garbage: 1, 2, 3}", 16, "safetensors: invalid JSON header at byte 1");
    expect_st_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} trailing", 16,
                    "unexpected data after the JSON header");
    expect_st_error("{\"a\\x\":1}", 16, "bad escape in string");
    expect_st_error("{\"a\\ud800\":1}", 16, "unpaired high surrogate");
    expect_st_error("{\"\xff\xfe\":1}", 16, "not valid UTF-8");
    {
        char deep[400];
        strcpy(deep, "{\"__metadata__\":{\"a\":");
        for (int i = 0; i < 100; i++)
            strcat(deep, "[");
        expect_st_error(deep, 0, "JSON nesting depth limit exceeded");
    }
    /* non-JSON garbage is neither format */
    const char *junk = "this is definitely not a weights file, just some text";
    assert_fails_with(tt_load_memory((const uint8_t *)junk, strlen(junk), &t, err, sizeof err), err,
                      "not a .pth (zip) or .safetensors file");
    assert_null(t.blob);
}

static void test_safetensors_truncated_real(void **state)
{
    (void)state;
    SKIP_WITHOUT_SHARED();
    size_t size;
    uint8_t *d = read_all(shared_path("weights/synth_sd_decoder_f16.safetensors"), &size);
    assert_non_null(d);
    tt_table t;
    char err[512] = "";
    assert_fails_with(tt_load_memory(d, size - 1, &t, err, sizeof err), err, "is past the end of the data area");
    assert_fails_with(tt_load_memory(d, size / 2, &t, err, sizeof err), err, "is past the end of the data area");
    assert_fails_with(tt_load_memory(d, 3000, &t, err, sizeof err), err, "header length 6128 is past the end");
    assert_fails_with(tt_load_memory(d, 6, &t, err, sizeof err), err, "not a .pth (zip) or .safetensors file");
    free(d);
}

/* ---------- 3d. npy ---------- */

static buf make_npy(const char *dict, size_t datalen)
{
    buf b = { 0 };
    b_s(&b, "\x93NUMPY\x01");
    b_u8(&b, 0);
    b_u16(&b, (unsigned)strlen(dict) + 1);
    b_s(&b, dict);
    b_u8(&b, '\n');
    for (size_t i = 0; i < datalen; i++)
        b_u8(&b, 0);
    return b;
}

static void expect_npy_error(const char *dict, size_t datalen, const char *want)
{
    buf b = make_npy(dict, datalen);
    npy_array a;
    char err[512] = "";
    assert_fails_with(npy_read_memory(b.p, b.n, &a, err, sizeof err), err, want);
    assert_null(a.data);
    b_free(&b);
}

static void test_npy_errors(void **state)
{
    (void)state;
    expect_npy_error("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 16,
                     "npy: dtype '<f8' not supported (float32 or float16 only)");
    expect_npy_error("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8, "dtype '>f4' not supported");
    expect_npy_error("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16, "fortran_order");
    expect_npy_error("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 4, 12, 8), }", 400,
                     "npy: data is 400 bytes, shape (1, 4, 12, 8) needs 1536");
    expect_npy_error("{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", 24,
                     "npy: data is 24 bytes, shape (5,) needs 20");
    expect_npy_error("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }", 16,
                     "npy: shape (4294967296, 4294967296, 4294967296) is too large");
    expect_npy_error("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }", 16,
                     "too large");
    expect_npy_error("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4, "0-d arrays are not supported");
    expect_npy_error("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1), }", 4,
                     "more than 4 dimensions");
    expect_npy_error("{'descr': '<f4', 'fortran_order': False, }", 4, "header lacks 'shape'");
    expect_npy_error("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}", 8, "header key 'extra'");
    expect_npy_error("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8, "structured");
    npy_array a;
    char err[512] = "";
    assert_fails_with(npy_read_memory((const uint8_t *)"\x93NUMPY\x01\x00\xff\x7f{", 11, &a, err, sizeof err), err,
                      "npy: header length 32767 is past the end of the file");
    assert_fails_with(npy_read_memory((const uint8_t *)"PK\x03\x04 not npy", 14, &a, err, sizeof err), err,
                      "not a .npy file");
    assert_fails_with(npy_read_file("/nonexistent/x.npy", &a, err, sizeof err), err,
                      "cannot open: No such file or directory");
}

static void test_npy_roundtrip(void **state)
{
    (void)state;
    int64_t shape[4] = { 1, 3, 5, 7 };
    float x[105];
    fill_random(x, 105, 7, -10.0f, 10.0f);
    x[3] = -0.0f;
    x[4] = INFINITY;
    const char *path = write_temp(".npy", "", 0);
    assert_non_null(path);
    char err[512] = "";
    if (npy_write_file(path, x, 4, shape, err, sizeof err) != 0)
        fail_msg("%s", err);
    size_t size;
    uint8_t *raw = read_all(path, &size);
    assert_non_null(raw);
    size_t hl = (size_t)raw[8] | ((size_t)raw[9] << 8);
    assert_int_equal((10 + hl) % 64, 0);
    assert_int_equal(size, 10 + hl + sizeof x);
    const char *want4 = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 5, 7), }";
    assert_memory_equal(raw + 10, want4, strlen(want4));
    assert_int_equal(raw[10 + strlen(want4)], ' ');
    assert_int_equal(raw[10 + hl - 1], '\n');
    free(raw);
    npy_array a;
    if (npy_read_file(path, &a, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(a.ndim, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(a.shape[i], shape[i]);
    assert_int_equal(a.numel, 105);
    assert_memory_equal(a.data, x, sizeof x);
    npy_free(&a);
    assert_null(a.data);

    /* 1-D */
    int64_t s1 = 5;
    if (npy_write_file(path, x, 1, &s1, err, sizeof err) != 0)
        fail_msg("%s", err);
    raw = read_all(path, &size);
    const char *want1 = "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }";
    assert_memory_equal(raw + 10, want1, strlen(want1));
    free(raw);
    if (npy_read_file(path, &a, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(a.ndim, 1);
    assert_int_equal(a.shape[0], 5);
    assert_memory_equal(a.data, x, 5 * sizeof(float));
    npy_free(&a);
    unlink(path);

    /* float16 and a v2.0 header */
    buf b = { 0 };
    b_s(&b, "\x93NUMPY\x02");
    b_u8(&b, 0);
    const char *dict = "{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }\n";
    b_u32(&b, (uint32_t)strlen(dict));
    b_s(&b, dict);
    b_u16(&b, 0x3c00);
    b_u16(&b, 0xc000);
    b_u16(&b, 0x0001);
    if (npy_read_memory(b.p, b.n, &a, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_float_equal(a.data[0], 1.0, 0);
    assert_float_equal(a.data[1], -2.0, 0);
    assert_float_equal(a.data[2], ldexp(1.0, -24), 0);
    npy_free(&a);
    b_free(&b);

    /* bad arguments */
    int64_t neg = -1;
    assert_fails_with(npy_write_file(path, x, 1, &neg, err, sizeof err), err, "negative dimension");
    assert_fails_with(npy_write_file(path, x, 5, shape, err, sizeof err), err, "cannot write 5 dimensions");
    assert_int_not_equal(access(path, F_OK), 0);
}

static void test_npy_golden(void **state)
{
    (void)state;
    SKIP_WITHOUT_SHARED();
    npy_array a;
    char err[512] = "";
    if (npy_read_file(shared_path("golden/synth_sd_dec_12x8.in.npy"), &a, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(a.ndim, 4);
    assert_int_equal(a.shape[0], 1);
    assert_int_equal(a.shape[1], 4);
    assert_int_equal(a.shape[2], 12);
    assert_int_equal(a.shape[3], 8);
    assert_int_equal(a.numel, 384);
    npy_free(&a);
}

/* ---------- 3e. png + files ---------- */

static void test_png_roundtrip(void **state)
{
    (void)state;
    const int w = 13, h = 7;
    for (int ch = 3; ch <= 4; ch++) {
        float *x = malloc(sizeof(float) * (size_t)(w * h * ch));
        for (int i = 0; i < w * h * ch; i++)
            x[i] = (float)((i * 37 + 11) % 256) / 255.0f;
        const char *path = write_temp(".png", "", 0);
        char err[512] = "";
        if (image_write_png(path, x, ch, w, h, 1.0f, 0.0f, err, sizeof err) != 0)
            fail_msg("%s", err);
        float *y;
        int rw, rh, fc;
        if (image_read_file(path, ch, &y, &rw, &rh, &fc, err, sizeof err) != 0)
            fail_msg("%s", err);
        assert_int_equal(rw, w);
        assert_int_equal(rh, h);
        assert_int_equal(fc, ch);
        assert_memory_equal(x, y, sizeof(float) * (size_t)(w * h * ch));
        free(y);
        if (ch == 4) {   /* read back as RGB: alpha dropped */
            if (image_read_file(path, 3, &y, &rw, &rh, &fc, err, sizeof err) != 0)
                fail_msg("%s", err);
            assert_int_equal(fc, 4);
            assert_memory_equal(x, y, sizeof(float) * (size_t)(w * h * 3));
            free(y);
        }
        unlink(path);
        free(x);
    }

    /* rounding, clamping, NaN, scale/offset */
    float v[3 * 4] = { NAN, -1.0f, 2.0f, 0.5f,   /* R */
                       0.4f / 255, 0.6f / 255, 253.6f / 255, 1.0f,
                       -1.0f, 0.0f, 1.0f, 3.0f };   /* B with scale .5 offset .5: 0, .5, 1, 1 */
    const char *path = write_temp(".png", "", 0);
    char err[512] = "";
    if (image_write_png(path, v, 3, 4, 1, 1.0f, 0.0f, err, sizeof err) != 0)
        fail_msg("%s", err);
    float *y;
    int rw, rh, fc;
    if (image_read_file(path, 3, &y, &rw, &rh, &fc, err, sizeof err) != 0)
        fail_msg("%s", err);
    const int want_r[4] = { 0, 0, 255, 128 }, want_g[4] = { 0, 1, 254, 255 };   /* 127.5 -> 128 (even) */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(lrintf(y[i] * 255), want_r[i]);
        assert_int_equal(lrintf(y[4 + i] * 255), want_g[i]);
    }
    free(y);
    if (image_write_png(path, v, 3, 4, 1, 0.5f, 0.5f, err, sizeof err) != 0)
        fail_msg("%s", err);
    if (image_read_file(path, 3, &y, &rw, &rh, &fc, err, sizeof err) != 0)
        fail_msg("%s", err);
    const int want_b[4] = { 0, 128, 255, 255 };
    for (int i = 0; i < 4; i++)
        assert_int_equal(lrintf(y[8 + i] * 255), want_b[i]);
    free(y);
    unlink(path);

    assert_fails_with(image_write_png(path, v, 2, 4, 1, 1, 0, err, sizeof err), err, "2 channels");
    assert_fails_with(image_write_png(path, v, 3, 0, 1, 1, 0, err, sizeof err), err, "out of range");
    assert_int_not_equal(access(path, F_OK), 0);
    const char *junk_text = "\x89PNG garbage that is not an image";
    const char *junk = write_temp(".png", junk_text, strlen(junk_text));
    assert_fails_with(image_read_file(junk, 3, &y, &rw, &rh, &fc, err, sizeof err), err,
                      "image: not a readable image");
    assert_null(y);
    assert_fails_with(image_read_file(junk, 5, &y, &rw, &rh, &fc, err, sizeof err), err, "5 channels requested");
    unlink(junk);
}

static void test_png_golden(void **state)
{
    (void)state;
    SKIP_WITHOUT_SHARED();
    float *img;
    int w, h, fc;
    char err[512] = "";
    if (image_read_file(shared_path("golden/dog256.png"), 3, &img, &w, &h, &fc, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(w, 256);
    assert_int_equal(h, 256);
    npy_array a;
    if (npy_read_file(shared_path("golden/taef2_enc_dog256.in.npy"), &a, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(a.numel, 3 * 256 * 256);
    assert_memory_equal(a.data, img, sizeof(float) * 3 * 256 * 256);
    npy_free(&a);
    free(img);
}

/* ---------- 3f. fuzzer findings (fuzz/, docs/security.md): each input as found, minimised by libFuzzer ---------- */

/* An error line must be printable ASCII: the CLI prints it to a terminal. */
static void assert_printable(const char *err)
{
    for (const char *p = err; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            fail_msg("error \"%s\" has byte 0x%02x", err, (unsigned char)*p);
}

/* fuzz_image: stb_image 2.27's JPEG decoder (Debian 12's libstb) writes past its Huffman tables when a DHT segment's
 * code counts sum past 256 (heap overflow into the decoder state). JPEG now goes through libjpeg-turbo. */
static const uint8_t fuzz_jpeg_dht_overflow[155] = {
    0xff, 0xd8, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0xff, 0xc0, 0x00, 0x11, 0x08, 0x00, 0x09, 0x00, 0x11,
    0x03, 0x01, 0x11, 0x00, 0x02, 0x11, 0x00, 0x03, 0x11, 0x00, 0xff, 0xc4, 0x00, 0x14, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0xff, 0xff, 0x5f, 0x70, 0x00, 0x00, 0x0b, 0x86, 0x00, 0x00, 0xff, 0xc4, 0x00, 0x14, 0x10, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xda, 0x00, 0x0c, 0x03, 0x01,
    0x00, 0x02, 0x00, 0x03, 0x00, 0x00, 0x3f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f, 0xff, 0xd9,
};
/* fuzz_image: stb's Huffman decoder indexes past its tables on an invalid code (out-of-bounds read). */
static const uint8_t fuzz_jpeg_huff_oob_read[397] = {
    0xff, 0xd8, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x01, 0x01, 0x0a, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x0d, 0xff, 0xee,
    0xfa, 0xc0, 0xfe, 0xfe, 0xfe, 0xff, 0x79, 0xfe, 0x01, 0x01, 0x01, 0x01, 0x01, 0x26, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0xfd, 0x00, 0x01, 0x01, 0xfd, 0x00, 0x01, 0x01, 0x01, 0x01, 0x12, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x12,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0xff, 0xc0, 0x00, 0x0b, 0x08, 0x00, 0x08, 0x01, 0x06, 0x01, 0x01, 0x13, 0x00,
    0xff, 0xc4, 0x00, 0x14, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x04, 0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x78, 0x9c, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x30, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0xff, 0xc0, 0x00, 0x0b, 0x08, 0x00, 0x08, 0x01, 0x06, 0x01, 0x01, 0x13, 0x00, 0xff, 0xc4, 0x00, 0x14, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0xff, 0xda, 0x00,
    0x08, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x78, 0x9c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x30, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x04, 0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0xfa, 0xff, 0x3e, 0x00, 0x01, 0xff, 0xd9,
};
/* fuzz_image: stb's bit reader shifts by more than 31 on a corrupt scan (undefined behaviour). */
static const uint8_t fuzz_jpeg_bad_shift[389] = {
    0xff, 0xd8, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x01, 0x01, 0x0a, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x0d, 0xff, 0xee,
    0x01, 0x3f, 0x01, 0x01, 0x01, 0x00, 0x86, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x26, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0xfd, 0x00, 0x01, 0x01, 0xfd, 0x00, 0xa9, 0x01, 0x01, 0x01, 0x12, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0xff, 0xc1, 0x00, 0x0b, 0x08, 0x00, 0x08, 0x01, 0x06,
    0x01, 0x01, 0x13, 0x00, 0xff, 0xc4, 0x00, 0x14, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x04, 0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xfa, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0xff, 0xda, 0x00, 0x08,
    0x01, 0x01, 0x00, 0x00, 0x3f, 0x00, 0x01, 0xff, 0xd9,
};
/* fuzz_image: a zero-length IDAT chunk (stb computes NULL + 0 and memcpy(NULL, p, 0): harmless, kept as a case). */
static const uint8_t fuzz_png_empty_idat[81] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00, 0x07,
    0x00, 0x00, 0x00, 0x02, 0x08, 0x00, 0x00, 0x00, 0x00, 0x13, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x49, 0x44, 0x41,
    0x54, 0x78, 0xda, 0x63, 0x60, 0x57, 0x71, 0x8c, 0xab, 0x9e, 0x43, 0x67, 0x42, 0x49, 0xb2, 0x6c, 0xf2, 0x86, 0xb3, 0xaf,
    0x00, 0x28, 0xa4, 0x06, 0x98, 0x62, 0x63, 0x5f, 0x8c, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60,
    0x82,
};
/* An unknown critical PNG chunk whose type is ESC [ 2 J: stb's failure reason quotes those four bytes raw; they
 * must reach the error line as '?[2J' (a terminal escape otherwise). */
static const uint8_t png_escape_chunk[101] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00, 0x03,
    0x00, 0x00, 0x00, 0x02, 0x08, 0x06, 0x00, 0x00, 0x00, 0x9d, 0x74, 0x66, 0x1a, 0x00, 0x00, 0x00, 0x00, 0x1b, 0x5b, 0x32,
    0x4a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0x60, 0x57, 0x71, 0x8c,
    0xab, 0x9e, 0xb1, 0xf5, 0xd2, 0x7b, 0x1e, 0x4d, 0x37, 0x06, 0x9b, 0xc8, 0xb2, 0xc9, 0x1b, 0xce, 0xbe, 0x02, 0x8b, 0x01,
    0x00, 0x7e, 0xc6, 0x0a, 0x19, 0x06, 0xd1, 0x71, 0x82, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60,
    0x82,
};
/* A valid 8x8 greyscale baseline JPEG, every block flat at 128 (fuzz/make_seeds.py's grey.jpg). */
static const uint8_t jpeg_grey_8x8[141] = {
    0xff, 0xd8, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0xff, 0xc0, 0x00, 0x0b, 0x08, 0x00, 0x08, 0x00, 0x08,
    0x01, 0x01, 0x11, 0x00, 0xff, 0xc4, 0x00, 0x14, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xc4, 0x00, 0x14, 0x10, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3f, 0x00, 0x3f, 0xff,
    0xd9,
};

static void test_image_fuzz_regressions(void **state)
{
    (void)state;
    static const struct {
        const uint8_t *d;
        size_t n;
        const char *want;   /* in the error (either decoder's message, or "not supported" without libjpeg) */
    } bad[] = {
        { fuzz_jpeg_dht_overflow, sizeof fuzz_jpeg_dht_overflow, "JPEG" },
        { fuzz_jpeg_huff_oob_read, sizeof fuzz_jpeg_huff_oob_read, "JPEG" },
        { fuzz_jpeg_bad_shift, sizeof fuzz_jpeg_bad_shift, "JPEG" },
        { fuzz_png_empty_idat, sizeof fuzz_png_empty_idat, "image: cannot decode" },
        { png_escape_chunk, sizeof png_escape_chunk, "?[2J PNG chunk not known" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (int ch = 3; ch <= 4; ch++) {
            float *px = (float *)1;
            int w = -1, h = -1, fc = -1;
            char err[256] = "";
            assert_fails_with(image_read_memory(bad[i].d, bad[i].n, ch, &px, &w, &h, &fc, err, sizeof err), err,
                              bad[i].want);
            assert_printable(err);
            assert_null(px);
            assert_int_equal(w, 0);
            assert_int_equal(fc, 0);
        }
        /* the same through a file, as the CLI reads it */
        const char *path = write_temp(".png", bad[i].d, bad[i].n);
        float *px;
        int w, h, fc;
        char err[256] = "";
        assert_fails_with(image_read_file(path, 3, &px, &w, &h, &fc, err, sizeof err), err, bad[i].want);
        unlink(path);
    }

    /* formats other than PNG and JPEG never reach a decoder */
    static const uint8_t bmp[64] = { 'B', 'M' }, gif[16] = { 'G', 'I', 'F', '8', '9', 'a' };
    float *px;
    int w, h, fc;
    char err[256] = "";
    assert_fails_with(image_read_memory(bmp, sizeof bmp, 3, &px, &w, &h, &fc, err, sizeof err), err,
                      "not a PNG or JPEG file");
    assert_fails_with(image_read_memory(gif, sizeof gif, 3, &px, &w, &h, &fc, err, sizeof err), err,
                      "not a PNG or JPEG file");
    assert_fails_with(image_read_memory(bmp, 0, 3, &px, &w, &h, &fc, err, sizeof err), err, "not a PNG or JPEG");

    /* a valid JPEG decodes (where libjpeg is built in) */
    if (image_read_memory(jpeg_grey_8x8, sizeof jpeg_grey_8x8, 4, &px, &w, &h, &fc, err, sizeof err) != 0) {
        if (!strstr(err, "JPEG is not supported by this build"))
            fail_msg("%s", err);
        print_message("built without libjpeg: JPEG refused (%s)\n", err);
        return;
    }
    assert_int_equal(w, 8);
    assert_int_equal(h, 8);
    assert_int_equal(fc, 1);
    for (int i = 0; i < 64; i++) {
        assert_int_equal(lrintf(px[i] * 255), 128);            /* R = G = B = 128 */
        assert_int_equal(lrintf(px[64 + i] * 255), 128);
        assert_int_equal(lrintf(px[128 + i] * 255), 128);
        assert_int_equal(lrintf(px[192 + i] * 255), 255);      /* opaque alpha */
    }
    free(px);
    /* truncated: refused, never padded with grey */
    assert_fails_with(image_read_memory(jpeg_grey_8x8, sizeof jpeg_grey_8x8 - 4, 3, &px, &w, &h, &fc, err, sizeof err),
                      err, "JPEG");
}

/* fuzz_weights: a storage key from the pickle (byte 0xb0) that names no zip entry was printed raw inside the entry
 * name of the error. */
static void test_pickle_storage_key_quoted(void **state)
{
    (void)state;
    buf pkl = make_state_pickle(&PK_DEFAULT);
    static const uint8_t key0[] = { 'X', 1, 0, 0, 0, '0', 'X', 3, 0, 0, 0, 'c', 'p', 'u' };
    uint8_t *k = NULL;
    for (size_t i = 0; i + sizeof key0 <= pkl.n && !k; i++)
        if (memcmp(pkl.p + i, key0, sizeof key0) == 0)
            k = pkl.p + i + 5;
    assert_non_null(k);
    *k = 0xb0;
    tt_table t;
    char err[512] = "";
    assert_fails_with(load_pickle(&pkl, &t, err, sizeof err), err, "has no data entry 'archive/data/?' in the zip");
    assert_printable(err);
    b_free(&pkl);
}

/* fuzz_npy (a harness bug, kept as a reader contract): a zero dimension makes any other dimension "fit"; the reader
 * returns numel 0 and the shape as written, and its users (the CLI) check every dimension. */
static void test_npy_zero_dim_huge(void **state)
{
    (void)state;
    static const char hdr[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 4611686018427387903, 4, 0), }";
    uint8_t d[128];
    memset(d, ' ', sizeof d);
    memcpy(d, "\x93NUMPY\x01\x00\x76\x00", 10);
    memcpy(d + 10, hdr, sizeof hdr - 1);
    d[127] = '\n';
    npy_array a;
    char err[256] = "";
    if (npy_read_memory(d, sizeof d, &a, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(a.ndim, 4);
    assert_int_equal(a.numel, 0);
    assert_true(a.shape[1] == INT64_C(4611686018427387903));
    npy_free(&a);
}

static void test_fileutil(void **state)
{
    (void)state;
    uint8_t *d;
    size_t n;
    char err[512] = "";
    assert_fails_with(file_read_all("/nonexistent/file", 100, &d, &n, err, sizeof err), err,
                      "cannot open: No such file or directory");
    assert_null(d);
    assert_fails_with(file_read_all("/tmp", 100, &d, &n, err, sizeof err), err, "not a regular file");
    const char *p = write_temp(".bin", "0123456789", 10);
    assert_fails_with(file_read_all(p, 9, &d, &n, err, sizeof err), err, "file is 10 bytes, more than the limit of 9");
    assert_int_equal(file_read_all(p, 10, &d, &n, err, sizeof err), 0);
    assert_int_equal(n, 10);
    assert_memory_equal(d, "0123456789", 10);
    free(d);
    assert_int_equal(file_write_atomic(p, "abc", 3, err, sizeof err), 0);
    d = read_all(p, &n);
    assert_int_equal(n, 3);
    assert_memory_equal(d, "abc", 3);
    free(d);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_true(st.st_mode & S_IRUSR);
    unlink(p);

    /* renaming onto a non-empty directory fails: nothing may be left behind */
    char dir[] = "/tmp/taesd-test-dir-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char target[256], inner[300];
    snprintf(target, sizeof target, "%s/out", dir);
    assert_int_equal(mkdir(target, 0700), 0);
    snprintf(inner, sizeof inner, "%s/keep", target);
    FILE *f = fopen(inner, "w");
    assert_non_null(f);
    fclose(f);
    assert_fails_with(file_write_atomic(target, "abc", 3, err, sizeof err), err, "cannot rename into place");
    DIR *dd = opendir(dir);
    assert_non_null(dd);
    struct dirent *de;
    int entries = 0;
    while ((de = readdir(dd)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            entries++;
    closedir(dd);
    assert_int_equal(entries, 1);   /* only "out" */
    unlink(inner);
    rmdir(target);
    rmdir(dir);
    assert_fails_with(file_write_atomic("/nonexistent-dir/x.png", "abc", 3, err, sizeof err), err,
                      "cannot create temporary file: No such file or directory");
}

/* ---------- 4. half / bf16 ---------- */

static void test_half_exhaustive(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = tt_half_to_float((uint16_t)h);
        int is_nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
        if (is_nan) {
            assert_true(isnan(f));
            uint16_t back = tt_float_to_half(f);
            assert_true((back & 0x7c00) == 0x7c00 && (back & 0x3ff));   /* stays NaN */
            continue;
        }
        uint16_t back = tt_float_to_half(f);
        if (back != h)
            fail_msg("half 0x%04x -> %.9g -> 0x%04x", h, f, back);
    }
    assert_int_equal(tt_float_to_half(1.0f), 0x3c00);
    assert_int_equal(tt_float_to_half(-2.0f), 0xc000);
    assert_int_equal(tt_float_to_half(-0.0f), 0x8000);
    assert_int_equal(tt_float_to_half(65504.0f), 0x7bff);
    assert_int_equal(tt_float_to_half(65519.0f), 0x7bff);
    assert_int_equal(tt_float_to_half(65520.0f), 0x7c00);   /* tie rounds to even: inf */
    assert_int_equal(tt_float_to_half(1e10f), 0x7c00);
    assert_int_equal(tt_float_to_half(-INFINITY), 0xfc00);
    assert_int_equal(tt_float_to_half(ldexpf(1.0f, -24)), 0x0001);
    assert_int_equal(tt_float_to_half(ldexpf(1.0f, -25)), 0x0000);               /* tie to even 0 */
    assert_int_equal(tt_float_to_half(ldexpf(1.0f, -25) * 1.0001f), 0x0001);
    assert_int_equal(tt_float_to_half(ldexpf(3.0f, -25)), 0x0002);               /* 1.5 ulp: tie to even 2 */
    assert_int_equal(tt_float_to_half(ldexpf(1.0f, -14) - ldexpf(1.0f, -25)), 0x0400);   /* rounds up to normal */
    assert_int_equal(tt_float_to_half(1.0f + ldexpf(1.0f, -11)), 0x3c00);        /* tie to even */
    assert_int_equal(tt_float_to_half(1.0f + 3 * ldexpf(1.0f, -11)), 0x3c02);    /* tie to even (up) */
    assert_int_equal(tt_float_to_half(1.0f + ldexpf(1.0f, -11) + ldexpf(1.0f, -20)), 0x3c01);
    assert_true(isnan(tt_half_to_float(tt_float_to_half(NAN))));
    assert_float_equal(tt_half_to_float(0x0001), ldexp(1.0, -24), 0);
    assert_float_equal(tt_half_to_float(0x03ff), 1023.0 * ldexp(1.0, -24), 0);
    assert_float_equal(tt_half_to_float(0x7bff), 65504.0, 0);
    assert_true(isinf(tt_half_to_float(0x7c00)));

    /* random floats: the result is a nearest half, ties to even */
    uint32_t s = 99;
    for (int i = 0; i < 200000; i++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        uint32_t bits = (s & 0x807fffffu) | (((s >> 3) % 40 + 100) << 23);   /* exponents around the half range */
        float f;
        memcpy(&f, &bits, 4);
        uint16_t h = tt_float_to_half(f);
        if ((h & 0x7fff) >= 0x7c00)
            continue;
        double d = f, e0 = fabs(d - tt_half_to_float(h));
        for (int k = -1; k <= 1; k += 2) {
            uint16_t nb = (uint16_t)(h + k);
            if ((nb & 0x7fff) >= 0x7c00 || ((h & 0x7fff) == 0 && k < 0))
                continue;
            double e1 = fabs(d - tt_half_to_float(nb));
            if (e1 < e0 || (e1 == e0 && (h & 1)))
                fail_msg("%.9g -> 0x%04x, but 0x%04x is nearer or even", f, h, nb);
        }
    }
}

static void test_bf16(void **state)
{
    (void)state;
    assert_float_equal(tt_bf16_to_float(0x3f80), 1.0, 0);
    assert_float_equal(tt_bf16_to_float(0xc000), -2.0, 0);
    assert_float_equal(tt_bf16_to_float(0x3e3a), 0.181640625, 0);
    assert_true(isinf(tt_bf16_to_float(0x7f80)));
    for (uint32_t b = 0; b < 65536; b++) {
        float f = tt_bf16_to_float((uint16_t)b);
        if (isnan(f)) {
            assert_true(isnan(tt_bf16_to_float(tt_float_to_bf16(f))));
            continue;
        }
        assert_int_equal(tt_float_to_bf16(f), b);
    }
    assert_int_equal(tt_float_to_bf16(1.0f + ldexpf(1.0f, -8)), 0x3f80);   /* tie to even */
    assert_int_equal(tt_float_to_bf16(1.0f + 3 * ldexpf(1.0f, -8)), 0x3f82);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weights_load_all),
        cmocka_unit_test(test_weights_shapes_values),
        cmocka_unit_test(test_cross_format),
        cmocka_unit_test(test_zip_truncated),
        cmocka_unit_test(test_zip_synthetic_ok),
        cmocka_unit_test(test_zip_hostile),
        cmocka_unit_test(test_zip64),
        cmocka_unit_test(test_pickle_protocol4),
        cmocka_unit_test(test_pickle_forbidden_globals),
        cmocka_unit_test(test_pickle_limits),
        cmocka_unit_test(test_pickle_tensor_checks),
        cmocka_unit_test(test_fuzz_flips),
        cmocka_unit_test(test_safetensors_synthetic_ok),
        cmocka_unit_test(test_safetensors_hostile),
        cmocka_unit_test(test_safetensors_truncated_real),
        cmocka_unit_test(test_npy_errors),
        cmocka_unit_test(test_npy_roundtrip),
        cmocka_unit_test(test_npy_golden),
        cmocka_unit_test(test_png_roundtrip),
        cmocka_unit_test(test_png_golden),
        cmocka_unit_test(test_image_fuzz_regressions),
        cmocka_unit_test(test_pickle_storage_key_quoted),
        cmocka_unit_test(test_npy_zero_dim_huge),
        cmocka_unit_test(test_fileutil),
        cmocka_unit_test(test_half_exhaustive),
        cmocka_unit_test(test_bf16),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
