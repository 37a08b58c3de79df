/* latent_format.c — conversions between latent formats and TAESD's diffusion space (see latent_format.h). */
#include "latent_format.h"

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct lf_info {
    const char *name;
    float scale, shift;   /* d = (raw − shift) · scale */
    int kind;             /* 0: element-wise, 1: flux1-packed (HWC tokens), 2: flux2-patchified (CHW) */
} lf_info;

/* Indexed by taesd_latent_format. Constants: the VAE configs' scaling_factor / shift_factor (diffusers), see
 * docs/latent-formats.md. */
static const lf_info formats[LF_FORMAT_COUNT] = {
    [TAESD_LATENT_DIFFUSION] = { "diffusion", 1.0f, 0.0f, 0 },
    [TAESD_LATENT_SD1_RAW] = { "sd1-raw", 0.18215f, 0.0f, 0 },
    [TAESD_LATENT_SDXL_RAW] = { "sdxl-raw", 0.13025f, 0.0f, 0 },
    [TAESD_LATENT_SD3_RAW] = { "sd3-raw", 1.5305f, 0.0609f, 0 },
    [TAESD_LATENT_FLUX1_RAW] = { "flux1-raw", 0.3611f, 0.1159f, 0 },
    [TAESD_LATENT_FLUX1_PACKED] = { "flux1-packed", 1.0f, 0.0f, 1 },
    [TAESD_LATENT_FLUX2_PATCHIFIED] = { "flux2-patchified", 1.0f, 0.0f, 2 },
};

static const lf_info *info(taesd_latent_format f)
{
    return (int)f >= 0 && (int)f < LF_FORMAT_COUNT ? &formats[f] : NULL;
}

const char *lf_name(taesd_latent_format f)
{
    const lf_info *i = info(f);
    return i ? i->name : NULL;
}

bool lf_parse(const char *name, taesd_latent_format *out)
{
    if (!name || !out)
        return false;
    for (int i = 0; i < LF_FORMAT_COUNT; i++)
        if (strcmp(name, formats[i].name) == 0) {
            *out = (taesd_latent_format)i;
            return true;
        }
    return false;
}

bool lf_is_elementwise(taesd_latent_format f)
{
    const lf_info *i = info(f);
    return i && i->kind == 0;
}

void lf_scale_shift(taesd_latent_format f, float *scale, float *shift)
{
    const lf_info *i = info(f);
    if (scale)
        *scale = i ? i->scale : 1.0f;
    if (shift)
        *shift = i ? i->shift : 0.0f;
}

/* c·h·w elements fit a size_t byte count of floats. */
static bool count_ok(int c, int h, int w)
{
    size_t limit = SIZE_MAX / sizeof(float);
    return (size_t)c <= limit / (size_t)h && (size_t)c * (size_t)h <= limit / (size_t)w;
}

taesd_result lf_shape(taesd_latent_format f, bool to_diffusion, int c, int h, int w, int *oc, int *oh, int *ow)
{
    const lf_info *i = info(f);
    if (!i || !oc || !oh || !ow || c < 1 || h < 1 || w < 1)
        return TAESD_ERROR_INVALID_ARGUMENT;
    if (!count_ok(c, h, w))
        return TAESD_ERROR_SHAPE;
    if (i->kind == 0) {
        *oc = c;
        *oh = h;
        *ow = w;
        return TAESD_OK;
    }
    if (to_diffusion) {                    /* (4C, h, w) -> (C, 2h, 2w) */
        if (c % 4 != 0 || h > INT_MAX / 2 || w > INT_MAX / 2)
            return TAESD_ERROR_SHAPE;
        *oc = c / 4;
        *oh = h * 2;
        *ow = w * 2;
    } else {                               /* (C, H, W) -> (4C, H/2, W/2) */
        if (h % 2 != 0 || w % 2 != 0 || c > INT_MAX / 4)
            return TAESD_ERROR_SHAPE;
        *oc = c * 4;
        *oh = h / 2;
        *ow = w / 2;
    }
    return TAESD_OK;
}

/* Index of (patch channel k, patch row y, patch column x) in the packed/patchified array of dims (pc, ph, pw). */
static size_t patch_index(int kind, size_t k, size_t y, size_t x, size_t pc, size_t ph, size_t pw)
{
    return kind == 1 ? (y * pw + x) * pc + k          /* flux1-packed: token-major (HWC) */
                     : (k * ph + y) * pw + x;         /* flux2-patchified: CHW */
}

static taesd_result convert(taesd_latent_format f, bool to_diffusion, const float *in, int c, int h, int w,
                            float *out)
{
    int oc, oh, ow;
    taesd_result r = lf_shape(f, to_diffusion, c, h, w, &oc, &oh, &ow);
    if (r != TAESD_OK)
        return r;
    if (!in || !out)
        return TAESD_ERROR_INVALID_ARGUMENT;
    const lf_info *i = info(f);
    size_t n = (size_t)c * (size_t)h * (size_t)w;
    if (i->kind == 0) {
        const float scale = i->scale, shift = i->shift;
        if (to_diffusion)
            for (size_t e = 0; e < n; e++)
                out[e] = (in[e] - shift) * scale;
        else
            for (size_t e = 0; e < n; e++)
                out[e] = in[e] / scale + shift;
        return TAESD_OK;
    }
    /* Diffusion dims (C, H, W) and patch dims (4C, H/2, W/2). */
    size_t C = (size_t)(to_diffusion ? oc : c);
    size_t H = (size_t)(to_diffusion ? oh : h);
    size_t W = (size_t)(to_diffusion ? ow : w);
    size_t pc = C * 4, ph = H / 2, pw = W / 2;
    for (size_t ch = 0; ch < C; ch++)
        for (size_t y = 0; y < H; y++)
            for (size_t x = 0; x < W; x++) {
                size_t k = ch * 4 + (y % 2) * 2 + (x % 2);
                size_t p = patch_index(i->kind, k, y / 2, x / 2, pc, ph, pw);
                size_t d = (ch * H + y) * W + x;
                if (to_diffusion)
                    out[d] = in[p];
                else
                    out[p] = in[d];
            }
    return TAESD_OK;
}

taesd_result lf_to_diffusion(taesd_latent_format f, const float *in, int c, int h, int w, float *out)
{
    return convert(f, true, in, c, h, w, out);
}

taesd_result lf_from_diffusion(taesd_latent_format f, const float *in, int c, int h, int w, float *out)
{
    return convert(f, false, in, c, h, w, out);
}
