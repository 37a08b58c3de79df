/* image.c — images in as float CHW (PNG through stb_image, JPEG through libjpeg-turbo), PNG out (stb_image_write),
 * written atomically. */
#include "io/image.h"
#include "io/fileutil.h"
#include "io/ioutil.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image.h>
#include <stb_image_write.h>

#define IMAGE_MAX_SIDE 16384
#define IMAGE_MAX_PIXELS ((int64_t)1 << 28)

/* PNG or JPEG by signature: stb decodes many more formats (BMP, GIF, PSD, PIC, PNM, HDR, TGA), none of which the
 * CLI offers, so they are refused before any decoder sees them (less parser code exposed to untrusted files). */
static int is_png(const uint8_t *d, size_t size)
{
    static const uint8_t sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
    return size >= 8 && memcmp(d, sig, 8) == 0;
}

static int is_jpeg(const uint8_t *d, size_t size)
{
    return size >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff;
}

static int size_ok(long long w, long long h)
{
    return w > 0 && h > 0 && w <= IMAGE_MAX_SIDE && h <= IMAGE_MAX_SIDE && w * h <= IMAGE_MAX_PIXELS;
}

static int too_large(char *err, size_t errlen, long long w, long long h)
{
    return io_err(err, errlen, "image: %lldx%lld is too large or empty (1 to %d on a side, at most %lld pixels)", w, h,
                  IMAGE_MAX_SIDE, (long long)IMAGE_MAX_PIXELS);
}

/* stb's failure reason, quoted: for an unknown critical PNG chunk it holds the chunk's four bytes from the file,
 * which may be control characters (terminal escapes) that must not reach stderr as they are. */
static const char *stb_reason(char *q, size_t qlen)
{
    const char *why = stbi_failure_reason();
    if (!why)
        return "unknown error";
    return io_quote(q, qlen, why, strlen(why));
}

/* PNG through stb_image: `channels` 8-bit channels per pixel, interleaved; free *px with stbi_image_free. */
static int decode_png(const uint8_t *d, size_t size, int channels, uint8_t **px, int *w, int *h, int *fc, char *err,
                      size_t errlen)
{
    int iw, ih, ic;
    char q[64];
    if (!stbi_info_from_memory(d, (int)size, &iw, &ih, &ic))
        return io_err(err, errlen, "image: not a readable image (%s)", stb_reason(q, sizeof q));
    if (!size_ok(iw, ih))
        return too_large(err, errlen, iw, ih);
    int lw, lh, lc;
    unsigned char *p = stbi_load_from_memory(d, (int)size, &lw, &lh, &lc, channels);
    if (!p)
        return io_err(err, errlen, "image: cannot decode (%s)", stb_reason(q, sizeof q));
    if (lw != iw || lh != ih) {
        stbi_image_free(p);
        return io_err(err, errlen, "image: decoded size %dx%d differs from the header's %dx%d", lw, lh, iw, ih);
    }
    *px = p;
    *w = lw;
    *h = lh;
    *fc = lc;
    return 0;
}

#ifdef TAESD_HAVE_LIBJPEG
/* JPEG through libjpeg(-turbo), not stb: stb_image up to 2.27 (Debian 12's libstb) has memory-safety bugs in its JPEG
 * decoder that fuzz/fuzz_image found within minutes (a DHT segment whose code counts sum past 256 writes past the
 * Huffman tables; invalid codes index past them on read). libjpeg-turbo is fuzzed continuously by OSS-Fuzz. Any
 * libjpeg warning (corrupt or truncated data) fails the read, as do more than 100 scans (progressive-JPEG CPU
 * bombs) and more than 1 GiB of decoder memory. */
#include <setjmp.h>
#include <stdio.h>

#include <jpeglib.h>

typedef struct jpeg_fail {
    struct jpeg_error_mgr mgr;
    struct jpeg_progress_mgr progress;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} jpeg_fail;

static void jpeg_error_exit(j_common_ptr c)
{
    jpeg_fail *f = (jpeg_fail *)c->err;
    (*c->err->format_message)(c, f->msg);
    longjmp(f->jump, 1);
}

static void jpeg_emit(j_common_ptr c, int level)
{
    if (level < 0)                     /* a warning: corrupt data that libjpeg would paper over */
        jpeg_error_exit(c);
}

static void jpeg_bail(j_decompress_ptr c, const char *why)
{
    jpeg_fail *f = (jpeg_fail *)c->err;
    snprintf(f->msg, sizeof f->msg, "%s", why);
    longjmp(f->jump, 1);
}

static void jpeg_progress(j_common_ptr c)
{
    if (c->is_decompressor && ((j_decompress_ptr)c)->input_scan_number > 100)
        jpeg_bail((j_decompress_ptr)c, "more than 100 scans");
}

static int decode_jpeg(const uint8_t *d, size_t size, int channels, uint8_t **px, int *w, int *h, int *fc, char *err,
                       size_t errlen)
{
    struct jpeg_decompress_struct ci;
    jpeg_fail f;
    uint8_t *volatile out = NULL;     /* volatile: read after longjmp */
    memset(&ci, 0, sizeof ci);
    memset(&f, 0, sizeof f);
    ci.err = jpeg_std_error(&f.mgr);
    f.mgr.error_exit = jpeg_error_exit;
    f.mgr.emit_message = jpeg_emit;
    f.progress.progress_monitor = jpeg_progress;
    if (setjmp(f.jump)) {
        jpeg_destroy_decompress(&ci);
        free(out);
        char q[JMSG_LENGTH_MAX];
        return io_err(err, errlen, "image: cannot decode JPEG (%s)", io_quote(q, sizeof q, f.msg, strlen(f.msg)));
    }
    jpeg_create_decompress(&ci);
    ci.progress = &f.progress;
    ci.mem->max_memory_to_use = (long)1 << 30;
    jpeg_mem_src(&ci, d, (unsigned long)size);
    jpeg_read_header(&ci, TRUE);
    if (!size_ok(ci.image_width, ci.image_height)) {
        long long iw = ci.image_width, ih = ci.image_height;
        jpeg_destroy_decompress(&ci);
        return too_large(err, errlen, iw, ih);
    }
    if (ci.num_components != 1 && ci.num_components != 3) {
        int n = ci.num_components;
        jpeg_destroy_decompress(&ci);
        return io_err(err, errlen, "image: JPEG with %d components (only greyscale and colour are supported)", n);
    }
    ci.out_color_space = channels == 4 ? JCS_EXT_RGBX : JCS_RGB;   /* X is 0xff: opaque alpha */
    jpeg_start_decompress(&ci);
    size_t stride = (size_t)ci.output_width * (size_t)channels;
    if (ci.output_components != channels || !size_ok(ci.output_width, ci.output_height))
        jpeg_bail(&ci, "unexpected output format");
    out = malloc(stride * ci.output_height);
    if (!out)
        jpeg_bail(&ci, "out of memory");
    while (ci.output_scanline < ci.output_height) {
        JSAMPROW row = out + stride * ci.output_scanline;
        if (jpeg_read_scanlines(&ci, &row, 1) != 1)
            jpeg_bail(&ci, "no progress reading scanlines");
    }
    jpeg_finish_decompress(&ci);
    *w = (int)ci.output_width;
    *h = (int)ci.output_height;
    *fc = ci.num_components;
    jpeg_destroy_decompress(&ci);
    *px = out;
    return 0;
}
#endif

int image_read_memory(const uint8_t *d, size_t size, int channels, float **out, int *w, int *h, int *file_channels,
                      char *err, size_t errlen)
{
    *out = NULL;
    *w = *h = 0;
    if (file_channels)
        *file_channels = 0;
    if (channels != 3 && channels != 4)
        return io_err(err, errlen, "image: %d channels requested (3 or 4)", channels);
    if (!d || size > (size_t)INT_MAX)
        return io_err(err, errlen, "image: %zu bytes is more than the limit of %d", size, INT_MAX);
    uint8_t *px = NULL;
    int lw = 0, lh = 0, lc = 0, rc, from_stb = 0;
    if (is_png(d, size)) {
        rc = decode_png(d, size, channels, &px, &lw, &lh, &lc, err, errlen);
        from_stb = 1;
    } else if (is_jpeg(d, size)) {
#ifdef TAESD_HAVE_LIBJPEG
        rc = decode_jpeg(d, size, channels, &px, &lw, &lh, &lc, err, errlen);
#else
        rc = io_err(err, errlen, "image: JPEG is not supported by this build (no libjpeg); use PNG");
#endif
    } else {
        rc = io_err(err, errlen, "image: not a readable image (not a PNG or JPEG file)");
    }
    if (rc != 0)
        return -1;
    size_t plane = (size_t)lw * (size_t)lh;
    float *f = malloc(plane * (size_t)channels * sizeof(float));
    if (f)
        for (size_t i = 0; i < plane; i++)
            for (int c = 0; c < channels; c++)
                f[(size_t)c * plane + i] = (float)px[i * (size_t)channels + (size_t)c] / 255.0f;
    if (from_stb)
        stbi_image_free(px);
    else
        free(px);
    if (!f)
        return io_err(err, errlen, "image: out of memory for %dx%d", lw, lh);
    *out = f;
    *w = lw;
    *h = lh;
    if (file_channels)
        *file_channels = lc;
    return 0;
}

int image_read_file(const char *path, int channels, float **out, int *w, int *h, int *file_channels, char *err,
                    size_t errlen)
{
    *out = NULL;
    *w = *h = 0;
    if (file_channels)
        *file_channels = 0;
    if (channels != 3 && channels != 4)
        return io_err(err, errlen, "image: %d channels requested (3 or 4)", channels);
    uint8_t *d;
    size_t size;
    if (file_read_all(path, (size_t)INT_MAX, &d, &size, err, errlen) != 0)
        return -1;
    int rc = image_read_memory(d, size, channels, out, w, h, file_channels, err, errlen);
    free(d);
    return rc;
}

typedef struct membuf {
    uint8_t *p;
    size_t n, cap;
    int failed;
} membuf;

static void membuf_write(void *ctx, void *data, int size)
{
    membuf *m = ctx;
    if (m->failed || size <= 0)
        return;
    size_t need;
    if (io_add(m->n, (size_t)size, &need) != 0) {
        m->failed = 1;
        return;
    }
    if (need > m->cap) {
        size_t nc = m->cap ? m->cap : 4096;
        while (nc < need)
            nc = nc > SIZE_MAX / 2 ? need : nc * 2;
        uint8_t *q = realloc(m->p, nc);
        if (!q) {
            m->failed = 1;
            return;
        }
        m->p = q;
        m->cap = nc;
    }
    memcpy(m->p + m->n, data, (size_t)size);
    m->n = need;
}

static uint8_t to_u8(float v, float scale, float offset)
{
    float x = v * scale + offset;
    if (!(x > 0.0f))        /* also NaN */
        x = 0.0f;
    if (x > 1.0f)
        x = 1.0f;
    return (uint8_t)lrintf(x * 255.0f);
}

int image_write_png(const char *path, const float *chw, int channels, int w, int h, float scale, float offset,
                    char *err, size_t errlen)
{
    if (channels != 3 && channels != 4)
        return io_err(err, errlen, "png: %d channels (3 or 4 supported)", channels);
    if (w <= 0 || h <= 0 || w > IMAGE_MAX_SIDE || h > IMAGE_MAX_SIDE || (int64_t)w * h > IMAGE_MAX_PIXELS)
        return io_err(err, errlen, "png: size %dx%d is out of range (1..%d on a side)", w, h, IMAGE_MAX_SIDE);
    if (!chw)
        return io_err(err, errlen, "png: no pixel data");
    size_t plane = (size_t)w * (size_t)h;
    uint8_t *px = malloc(plane * (size_t)channels);
    if (!px)
        return io_err(err, errlen, "png: out of memory");
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < channels; c++)
            px[i * (size_t)channels + (size_t)c] = to_u8(chw[(size_t)c * plane + i], scale, offset);
    membuf m = { NULL, 0, 0, 0 };
    int ok = stbi_write_png_to_func(membuf_write, &m, w, h, channels, px, w * channels);
    free(px);
    if (!ok || m.failed || m.n == 0) {
        free(m.p);
        return io_err(err, errlen, "png: encoding failed (out of memory)");
    }
    int rc = file_write_atomic(path, m.p, m.n, err, errlen);
    free(m.p);
    return rc;
}
