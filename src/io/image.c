/* image.c — images in (PNG/JPEG/... through stb_image) as float CHW, PNG out (stb_image_write), atomically. */
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
    int iw, ih, ic;
    if (!stbi_info_from_memory(d, (int)size, &iw, &ih, &ic)) {
        const char *why = stbi_failure_reason();
        free(d);
        return io_err(err, errlen, "image: not a readable image (%s)", why ? why : "unknown format");
    }
    if (iw <= 0 || ih <= 0 || iw > IMAGE_MAX_SIDE || ih > IMAGE_MAX_SIDE || (int64_t)iw * ih > IMAGE_MAX_PIXELS) {
        free(d);
        return io_err(err, errlen, "image: %dx%d is too large (at most %d on a side and %lld pixels)", iw, ih,
                      IMAGE_MAX_SIDE, (long long)IMAGE_MAX_PIXELS);
    }
    int lw, lh, lc;
    unsigned char *px = stbi_load_from_memory(d, (int)size, &lw, &lh, &lc, channels);
    free(d);
    if (!px) {
        const char *why = stbi_failure_reason();
        return io_err(err, errlen, "image: cannot decode (%s)", why ? why : "unknown error");
    }
    if (lw != iw || lh != ih) {
        stbi_image_free(px);
        return io_err(err, errlen, "image: decoded size %dx%d differs from the header's %dx%d", lw, lh, iw, ih);
    }
    size_t plane = (size_t)lw * (size_t)lh;
    float *f = malloc(plane * (size_t)channels * sizeof(float));
    if (!f) {
        stbi_image_free(px);
        return io_err(err, errlen, "image: out of memory for %dx%d", lw, lh);
    }
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < channels; c++)
            f[(size_t)c * plane + i] = (float)px[i * (size_t)channels + (size_t)c] / 255.0f;
    stbi_image_free(px);
    *out = f;
    *w = lw;
    *h = lh;
    if (file_channels)
        *file_channels = lc;
    return 0;
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
