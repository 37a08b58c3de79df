/* test_latent_format.c — latent formats (taesd_latent_*): constants and direction of each scaling, inverses,
 * FLUX.1 token unpacking and FLUX.2 unpatchifying against indices written out by hand and against the
 * view/permute of diffusers' _unpack_latents / _unpatchify_latents, shape rules and errors. Pure CPU. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "taesd.h"
#include "testutil.h"

static const char *const names[] = { "diffusion", "sd1-raw", "sdxl-raw", "sd3-raw",
                                     "flux1-raw", "flux1-packed", "flux2-patchified" };
#define NFORMATS 7

static void test_names(void **state)
{
    (void)state;
    for (int i = 0; i < NFORMATS; i++) {
        taesd_latent_format f = (taesd_latent_format)-1;
        assert_string_equal(taesd_latent_format_name((taesd_latent_format)i), names[i]);
        assert_int_equal(taesd_latent_format_parse(names[i], &f), TAESD_OK);
        assert_int_equal(f, i);
    }
    taesd_latent_format f;
    assert_int_equal(taesd_latent_format_parse("sd2-raw", &f), TAESD_ERROR_INVALID_ARGUMENT);
    assert_int_equal(taesd_latent_format_parse("", &f), TAESD_ERROR_INVALID_ARGUMENT);
    assert_int_equal(taesd_latent_format_parse(NULL, &f), TAESD_ERROR_INVALID_ARGUMENT);
    assert_int_equal(taesd_latent_format_parse("diffusion", NULL), TAESD_ERROR_INVALID_ARGUMENT);
    assert_null(taesd_latent_format_name((taesd_latent_format)NFORMATS));
    assert_null(taesd_latent_format_name((taesd_latent_format)-1));
}

/* raw -> diffusion follows the pipelines: diffusion = (raw - shift_factor) * scaling_factor. */
static void test_scaling_constants(void **state)
{
    (void)state;
    const struct { taesd_latent_format f; double scale, shift; } cases[] = {
        { TAESD_LATENT_DIFFUSION, 1.0, 0.0 },    { TAESD_LATENT_SD1_RAW, 0.18215, 0.0 },
        { TAESD_LATENT_SDXL_RAW, 0.13025, 0.0 }, { TAESD_LATENT_SD3_RAW, 1.5305, 0.0609 },
        { TAESD_LATENT_FLUX1_RAW, 0.3611, 0.1159 },
    };
    const float raw[4] = { 1.0f, -2.5f, 0.0f, 7.25f };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        float d[4], back[4];
        assert_int_equal(taesd_latent_to_diffusion(cases[i].f, raw, 1, 2, 2, d), TAESD_OK);
        for (int k = 0; k < 4; k++) {
            double want = ((double)raw[k] - cases[i].shift) * cases[i].scale;
            if (fabs(d[k] - want) > 1e-6 * (1 + fabs(want)))
                fail_msg("%s: raw %g -> %g, expected %g", names[cases[i].f], (double)raw[k], (double)d[k], want);
        }
        assert_int_equal(taesd_latent_from_diffusion(cases[i].f, d, 1, 2, 2, back), TAESD_OK);
        for (int k = 0; k < 4; k++)
            if (fabs(back[k] - raw[k]) > 1e-5 * (1 + fabs(raw[k])))
                fail_msg("%s: round trip %g -> %g", names[cases[i].f], (double)raw[k], (double)back[k]);
    }
    /* Spot values: SD1 raw 1 is diffusion 0.18215; FLUX.1 raw 0.1159 is diffusion 0. */
    float one = 1.0f, out = 0;
    taesd_latent_to_diffusion(TAESD_LATENT_SD1_RAW, &one, 1, 1, 1, &out);
    assert_true(fabsf(out - 0.18215f) < 1e-7f);
    float shift = 0.1159f;
    taesd_latent_to_diffusion(TAESD_LATENT_FLUX1_RAW, &shift, 1, 1, 1, &out);
    assert_true(fabsf(out) < 1e-7f);
}

static void test_elementwise_in_place(void **state)
{
    (void)state;
    float x[6], ref[6];
    fill_random(x, 6, 7, -3.0f, 3.0f);
    assert_int_equal(taesd_latent_to_diffusion(TAESD_LATENT_SD3_RAW, x, 1, 2, 3, ref), TAESD_OK);
    assert_int_equal(taesd_latent_to_diffusion(TAESD_LATENT_SD3_RAW, x, 1, 2, 3, x), TAESD_OK);
    assert_memory_equal(x, ref, sizeof x);
}

/* FLUX.1 tokens: hand-computed positions for a 2-channel latent (token width 8) on a 2x3 token grid. */
static void test_flux1_unpack_by_hand(void **state)
{
    (void)state;
    enum { C = 2, TH = 2, TW = 3, D = 4 * C, H = 2 * TH, W = 2 * TW };
    float tok[TH * TW * D], lat[C * H * W], back[TH * TW * D];
    for (int i = 0; i < TH * TW * D; i++)
        tok[i] = (float)i;   /* value = its own index: token t = i*TW + j at [t*D + k] */
    int oc, oh, ow;
    assert_int_equal(taesd_latent_shape(TAESD_LATENT_FLUX1_PACKED, true, D, TH, TW, &oc, &oh, &ow), TAESD_OK);
    assert_int_equal(oc, C);
    assert_int_equal(oh, H);
    assert_int_equal(ow, W);
    assert_int_equal(taesd_latent_to_diffusion(TAESD_LATENT_FLUX1_PACKED, tok, D, TH, TW, lat), TAESD_OK);
#define LAT(c, y, x) lat[((c) * H + (y)) * W + (x)]
    /* token (0,0): k = c*4 + py*2 + px */
    assert_true(LAT(0, 0, 0) == 0.0f);    /* k0: c0 py0 px0 */
    assert_true(LAT(0, 0, 1) == 1.0f);    /* k1: c0 py0 px1 */
    assert_true(LAT(0, 1, 0) == 2.0f);    /* k2: c0 py1 px0 */
    assert_true(LAT(0, 1, 1) == 3.0f);    /* k3: c0 py1 px1 */
    assert_true(LAT(1, 0, 0) == 4.0f);    /* k4: c1 py0 px0 */
    assert_true(LAT(1, 1, 1) == 7.0f);    /* k7: c1 py1 px1 */
    /* token (0,1) starts at 8: latent columns 2..3 */
    assert_true(LAT(0, 0, 2) == 8.0f);
    assert_true(LAT(1, 1, 3) == 15.0f);
    /* token (1,2) = token 5, starts at 40: latent rows 2..3, columns 4..5; k5 = c1 py0 px1 */
    assert_true(LAT(1, 2, 5) == 45.0f);
    assert_true(LAT(0, 3, 4) == 42.0f);   /* k2 = c0 py1 px0 */
    assert_true(LAT(1, 3, 5) == 47.0f);   /* last value of the last token is the last pixel of the last channel */
#undef LAT
    assert_int_equal(taesd_latent_from_diffusion(TAESD_LATENT_FLUX1_PACKED, lat, C, H, W, back), TAESD_OK);
    assert_memory_equal(back, tok, sizeof tok);
}

/* FLUX.2 patchified: 128 -> 32 channels shown on 8 -> 2, 1x2 patch grid. */
static void test_flux2_unpatchify_by_hand(void **state)
{
    (void)state;
    enum { C = 2, PH = 1, PW = 2, H = 2, W = 4 };
    float p[4 * C * PH * PW], lat[C * H * W], back[4 * C * PH * PW];
    for (int i = 0; i < 4 * C * PH * PW; i++)
        p[i] = (float)i;   /* patchified CHW: channel k at [k*PH*PW + y*PW + x] */
    assert_int_equal(taesd_latent_to_diffusion(TAESD_LATENT_FLUX2_PATCHIFIED, p, 4 * C, PH, PW, lat), TAESD_OK);
#define LAT(c, y, x) lat[((c) * H + (y)) * W + (x)]
    assert_true(LAT(0, 0, 0) == 0.0f);    /* k0 (c0 py0 px0) at patch (0,0) */
    assert_true(LAT(0, 0, 2) == 1.0f);    /* k0 at patch (0,1) */
    assert_true(LAT(0, 0, 1) == 2.0f);    /* k1 (c0 py0 px1) at patch (0,0) */
    assert_true(LAT(0, 1, 0) == 4.0f);    /* k2 (c0 py1 px0) */
    assert_true(LAT(0, 1, 3) == 7.0f);    /* k3 at patch (0,1) */
    assert_true(LAT(1, 0, 0) == 8.0f);    /* k4 (c1 py0 px0) */
    assert_true(LAT(1, 1, 3) == 15.0f);   /* k7 at patch (0,1) */
#undef LAT
    assert_int_equal(taesd_latent_from_diffusion(TAESD_LATENT_FLUX2_PATCHIFIED, lat, C, H, W, back), TAESD_OK);
    assert_memory_equal(back, p, sizeof p);
}

/* Real sizes against the diffusers formulas, written as their view/permute index maps:
 * FLUX.1 _unpack_latents: view(h2, w2, C, 2, 2).permute(C, h2, py, w2, px) (batch dropped);
 * FLUX.2 _unpatchify_latents: reshape(C, 2, 2, h2, w2).permute(C, h2, py, w2, px). */
static void test_against_diffusers_index_maps(void **state)
{
    (void)state;
    const int C1 = 16, C2 = 32, h2 = 5, w2 = 3, H = 2 * h2, W = 2 * w2;
    size_t n1 = (size_t)C1 * H * W, n2 = (size_t)C2 * H * W;
    float *in1 = malloc(n1 * sizeof(float)), *out1 = malloc(n1 * sizeof(float)), *rt1 = malloc(n1 * sizeof(float));
    float *in2 = malloc(n2 * sizeof(float)), *out2 = malloc(n2 * sizeof(float)), *rt2 = malloc(n2 * sizeof(float));
    fill_random(in1, n1, 1, -4.0f, 4.0f);
    fill_random(in2, n2, 2, -4.0f, 4.0f);
    assert_int_equal(taesd_latent_to_diffusion(TAESD_LATENT_FLUX1_PACKED, in1, 4 * C1, h2, w2, out1), TAESD_OK);
    assert_int_equal(taesd_latent_to_diffusion(TAESD_LATENT_FLUX2_PATCHIFIED, in2, 4 * C2, h2, w2, out2), TAESD_OK);
    for (int c = 0; c < C2; c++)
        for (int i = 0; i < h2; i++)
            for (int py = 0; py < 2; py++)
                for (int j = 0; j < w2; j++)
                    for (int px = 0; px < 2; px++) {
                        size_t o = (((size_t)c * h2 + i) * 2 + py) * (size_t)(2 * w2) + (size_t)j * 2 + px;
                        if (c < C1) {
                            size_t s1 = ((((size_t)i * w2 + j) * C1 + c) * 2 + py) * 2 + px;
                            assert_true(out1[o] == in1[s1]);
                        }
                        size_t s2 = (((((size_t)c * 2 + py) * 2 + px) * h2 + i) * w2) + j;
                        assert_true(out2[o] == in2[s2]);
                    }
    assert_int_equal(taesd_latent_from_diffusion(TAESD_LATENT_FLUX1_PACKED, out1, C1, H, W, rt1), TAESD_OK);
    assert_int_equal(taesd_latent_from_diffusion(TAESD_LATENT_FLUX2_PATCHIFIED, out2, C2, H, W, rt2), TAESD_OK);
    assert_memory_equal(rt1, in1, n1 * sizeof(float));
    assert_memory_equal(rt2, in2, n2 * sizeof(float));
    free(in1);
    free(out1);
    free(rt1);
    free(in2);
    free(out2);
    free(rt2);
}

static void test_shapes_and_errors(void **state)
{
    (void)state;
    int c = 0, h = 0, w = 0;
    assert_int_equal(taesd_latent_shape(TAESD_LATENT_SD1_RAW, true, 4, 7, 9, &c, &h, &w), TAESD_OK);
    assert_true(c == 4 && h == 7 && w == 9);
    assert_int_equal(taesd_latent_shape(TAESD_LATENT_FLUX1_PACKED, true, 64, 32, 48, &c, &h, &w), TAESD_OK);
    assert_true(c == 16 && h == 64 && w == 96);
    assert_int_equal(taesd_latent_shape(TAESD_LATENT_FLUX1_PACKED, false, 16, 64, 96, &c, &h, &w), TAESD_OK);
    assert_true(c == 64 && h == 32 && w == 48);
    assert_int_equal(taesd_latent_shape(TAESD_LATENT_FLUX2_PATCHIFIED, true, 128, 8, 8, &c, &h, &w), TAESD_OK);
    assert_true(c == 32 && h == 16 && w == 16);
    /* Errors. */
    assert_int_equal(taesd_latent_shape(TAESD_LATENT_FLUX1_PACKED, true, 63, 2, 2, &c, &h, &w), TAESD_ERROR_SHAPE);
    assert_int_equal(taesd_latent_shape(TAESD_LATENT_FLUX2_PATCHIFIED, false, 32, 5, 4, &c, &h, &w),
                     TAESD_ERROR_SHAPE);
    assert_int_equal(taesd_latent_shape(TAESD_LATENT_FLUX1_PACKED, false, 16, 4, 7, &c, &h, &w), TAESD_ERROR_SHAPE);
    assert_int_equal(taesd_latent_shape(TAESD_LATENT_FLUX2_PATCHIFIED, true, 128, 0x7fffffff, 1, &c, &h, &w),
                     TAESD_ERROR_SHAPE);
    assert_int_equal(taesd_latent_shape(TAESD_LATENT_DIFFUSION, true, 0, 1, 1, &c, &h, &w),
                     TAESD_ERROR_INVALID_ARGUMENT);
    assert_int_equal(taesd_latent_shape((taesd_latent_format)99, true, 4, 1, 1, &c, &h, &w),
                     TAESD_ERROR_INVALID_ARGUMENT);
    assert_int_equal(taesd_latent_shape(TAESD_LATENT_DIFFUSION, true, 4, 1, 1, NULL, &h, &w),
                     TAESD_ERROR_INVALID_ARGUMENT);
    float x[16] = { 0 };
    assert_int_equal(taesd_latent_to_diffusion(TAESD_LATENT_SD1_RAW, NULL, 4, 2, 2, x), TAESD_ERROR_INVALID_ARGUMENT);
    assert_int_equal(taesd_latent_from_diffusion(TAESD_LATENT_SD1_RAW, x, 4, 2, 2, NULL),
                     TAESD_ERROR_INVALID_ARGUMENT);
    assert_int_equal(taesd_latent_to_diffusion(TAESD_LATENT_FLUX1_PACKED, x, 6, 1, 1, x), TAESD_ERROR_SHAPE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_scaling_constants),
        cmocka_unit_test(test_elementwise_in_place),
        cmocka_unit_test(test_flux1_unpack_by_hand),
        cmocka_unit_test(test_flux2_unpatchify_by_hand),
        cmocka_unit_test(test_against_diffusers_index_maps),
        cmocka_unit_test(test_shapes_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
