/* latent_format.h — latent layouts and scalings around TAESD's diffusion space. Pure C, no Vulkan.
 *
 * TAESD decodes (and its encoder produces) diffusion-space latents: what the diffusion model sees. The formats
 * here convert other layouts into that space and back (docs/latent-formats.md gives each constant's source):
 *   diffusion          identity
 *   sd1-raw            SD 1.x/2.x VAE latents:  d = raw · 0.18215
 *   sdxl-raw           SDXL VAE latents:        d = raw · 0.13025
 *   sd3-raw            SD3 VAE latents:         d = (raw − 0.0609) · 1.5305
 *   flux1-raw          FLUX.1 VAE latents:      d = (raw − 0.1159) · 0.3611
 *   flux1-packed       FLUX.1 transformer tokens (diffusion space), token-major (HWC) c×h×w with c = 4·C:
 *                      token (i,j) value k = ch·4 + py·2 + px  ->  d[ch][2i+py][2j+px]
 *   flux2-patchified   FLUX.2 2×2-patchified CHW, c = 4·C channels at h×w: channel ch·4 + py·2 + px
 *                      ->  d[ch][2y+py][2x+px] (a reorder only; no normalization is undone)
 * Dims are always (c, h, w) of the array as laid out in its own format; for flux1-packed that is the token grid
 * (h·w tokens of c values each).
 */
#ifndef TAESD_MODEL_LATENT_FORMAT_H
#define TAESD_MODEL_LATENT_FORMAT_H

#include <stdbool.h>

#include "taesd.h"

#define LF_FORMAT_COUNT 7

/* "diffusion", "sd1-raw", ...; NULL for a value out of range. */
const char *lf_name(taesd_latent_format f);
/* Name -> format; returns false for an unknown name. */
bool lf_parse(const char *name, taesd_latent_format *out);
/* True for formats that only scale/shift element-wise (the shape is unchanged). */
bool lf_is_elementwise(taesd_latent_format f);
/* Scale and shift of the element-wise formats: d = (raw − shift) · scale (1, 0 for the others). */
void lf_scale_shift(taesd_latent_format f, float *scale, float *shift);

/* Dims on the other side of a conversion: to_diffusion maps the format's (c,h,w) to diffusion dims, else the
 * reverse. TAESD_ERROR_INVALID_ARGUMENT: a bad format, dims < 1 or NULL outputs; TAESD_ERROR_SHAPE: channels not a
 * multiple of 4 (unpacking), odd h or w (packing), or dims whose element count overflows. */
taesd_result lf_shape(taesd_latent_format f, bool to_diffusion, int c, int h, int w, int *oc, int *oh, int *ow);

/* Converts `in`, dims (c,h,w) of its side, to the other side. in and out must not overlap, except in == out for
 * the element-wise formats. Same errors as lf_shape (plus NULL buffers). */
taesd_result lf_to_diffusion(taesd_latent_format f, const float *in, int c, int h, int w, float *out);
taesd_result lf_from_diffusion(taesd_latent_format f, const float *in, int c, int h, int w, float *out);

#endif
