/* test_api.c — the public API's contracts: errors are reported (code + one line naming the file), never crash;
 * two contexts coexist; plans are reused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "taesd.h"
#include "testutil.h"


static taesd_context *ctx;

static int setup(void **state)
{
    (void)state;
    taesd_context_desc d = { .enable_validation = true };
    return taesd_context_create(&d, &ctx) == TAESD_OK && shared_available() ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    uint32_t msgs = taesd_context_validation_messages(ctx);
    taesd_context_destroy(ctx);
    return msgs ? -1 : 0;
}

static taesd_model *load(const char *rel, taesd_precision p)
{
    taesd_model_desc md = { .path = shared_path(rel), .precision = p };
    taesd_model *m = NULL;
    taesd_result r = taesd_model_load(ctx, &md, &m);
    if (r != TAESD_OK)
        fail_msg("%s: %s", rel, taesd_context_last_error(ctx));
    return m;
}

static void expect_error_line(const char *must_contain)
{
    const char *e = taesd_context_last_error(ctx);
    if (!strstr(e, must_contain))
        fail_msg("error '%s' does not contain '%s'", e, must_contain);
    assert_null(strchr(e, '\n'));
}

static void test_load_errors(void **state)
{
    (void)state;
    taesd_model *m = (taesd_model *)1;
    taesd_model_desc md = { .path = "/nonexistent/taesd_decoder.pth" };
    assert_int_equal(taesd_model_load(ctx, &md, &m), TAESD_ERROR_IO);
    assert_null(m);
    expect_error_line("/nonexistent/taesd_decoder.pth: ");

    const char *txt = write_temp(".pth", "hello, not weights\n", 19);
    md.path = txt;
    assert_int_equal(taesd_model_load(ctx, &md, &m), TAESD_ERROR_FORMAT);
    expect_error_line(txt);
    remove(txt);

    /* A real file, truncated. */
    size_t n;
    uint8_t *data = read_all(shared_path("weights/taef2_decoder.pth"), &n);
    assert_non_null(data);
    const size_t cuts[] = { 4, 1000, n / 2, n - 1 };
    for (int i = 0; i < 4; i++) {
        const char *p = write_temp(".pth", data, cuts[i]);
        md.path = p;
        assert_int_equal(taesd_model_load(ctx, &md, &m), TAESD_ERROR_FORMAT);
        expect_error_line(p);
        remove(p);
    }
    free(data);

    /* A variant the tensors do not fit. */
    md.path = shared_path("weights/synth_sd_decoder_f16.safetensors");
    md.variant = TAESD_VARIANT_TAESANA;
    assert_int_equal(taesd_model_load(ctx, &md, &m), TAESD_ERROR_FORMAT);
    expect_error_line("synth_sd_decoder_f16.safetensors: ");

    md.variant = (taesd_variant)77;
    assert_int_equal(taesd_model_load(ctx, &md, &m), TAESD_ERROR_INVALID_ARGUMENT);
}

static void test_variant_override(void **state)
{
    (void)state;
    taesd_model_desc md = { .path = shared_path("weights/synth_sd3_decoder_bf16.safetensors"),
                            .variant = TAESD_VARIANT_TAESD3 };
    taesd_model *m = NULL;
    assert_int_equal(taesd_model_load(ctx, &md, &m), TAESD_OK);
    taesd_model_info info;
    taesd_model_get_info(m, &info);
    assert_int_equal(info.variant, TAESD_VARIANT_TAESD3);
    assert_int_equal(info.latent_channels, 16);
    taesd_model_destroy(m);
}

static void test_run_errors(void **state)
{
    (void)state;
    taesd_model *m = load("weights/synth_sd_decoder_f16.safetensors", TAESD_PRECISION_FP32);
    float lat[4 * 3 * 5], rgb[3 * 24 * 40];
    fill_random(lat, 4 * 3 * 5, 1, -2, 2);

    assert_int_equal(taesd_decode(m, lat, 16, 3, 5, rgb), TAESD_ERROR_SHAPE);
    expect_error_line("16 channels");
    lat[7] = NAN;
    assert_int_equal(taesd_decode(m, lat, 4, 3, 5, rgb), TAESD_ERROR_NOT_FINITE);
    lat[7] = INFINITY;
    assert_int_equal(taesd_decode(m, lat, 4, 3, 5, rgb), TAESD_ERROR_NOT_FINITE);
    lat[7] = 0.5f;
    assert_int_equal(taesd_encode(m, rgb, 24, 40, lat), TAESD_ERROR_UNSUPPORTED);
    expect_error_line("no encoder");
    assert_int_equal(taesd_decode(m, lat, 4, 0, 5, rgb), TAESD_ERROR_INVALID_ARGUMENT);
    assert_int_equal(taesd_decode(m, NULL, 4, 3, 5, rgb), TAESD_ERROR_INVALID_ARGUMENT);

    /* Absurd sizes: a clear error before any buffer is made (the input pointer is never read). */
    taesd_result r = taesd_decode(m, lat, 4, 1 << 20, 1 << 20, rgb);
    assert_true(r == TAESD_ERROR_SHAPE || r == TAESD_ERROR_OUT_OF_MEMORY);
    int oh, ow;
    assert_false(taesd_output_size(m, TAESD_PART_DECODER, 1 << 20, 1 << 20, &oh, &ow));

    /* Still usable after the errors. */
    assert_int_equal(taesd_decode(m, lat, 4, 3, 5, rgb), TAESD_OK);
    for (int i = 0; i < 3 * 24 * 40; i++)
        assert_true(isfinite(rgb[i]));
    taesd_model_destroy(m);
}

/* Buffers above maxStorageBufferRange that tiling cannot avoid are refused with a clear error, not a crash: taef2's
 * latent-resolution stage runs whole (GroupNorm statistics), with a 256-channel buffer. (Larger sizes of the other
 * networks go in tiles: tests/test_tiling.c.) */
static void test_too_large_for_device(void **state)
{
    (void)state;
    taesd_device_info di;
    taesd_context_device_info(ctx, &di);
    taesd_model *m = load("weights/taef2_decoder.pth", TAESD_PRECISION_FP32);
    /* 256 channels × h² × 4 bytes > range  ⇒  h > sqrt(range / 1024) */
    int h = (int)sqrt((double)di.max_storage_buffer_range / 1024.0) + 8;
    if ((double)h * h * 32 * 4 > 512e6) {
        taesd_model_destroy(m);
        skip(); /* a device with a huge range: the input itself would be too large for this test */
    }
    float *lat = calloc((size_t)32 * h * h, sizeof(float));
    float *rgb = malloc((size_t)3 * 64 * h * h * sizeof(float));
    assert_int_equal(taesd_decode(m, lat, 32, h, h, rgb), TAESD_ERROR_OUT_OF_MEMORY);
    expect_error_line("maxStorageBufferRange");
    free(lat);
    free(rgb);
    taesd_model_destroy(m);
}

static void test_plan_reuse(void **state)
{
    (void)state;
    taesd_model *m = load("weights/taef2_decoder.pth", TAESD_PRECISION_AUTO);
    float lat[32 * 2 * 3], rgb[3 * 16 * 24], rgb2[3 * 16 * 24];
    fill_random(lat, sizeof lat / sizeof lat[0], 3, -2, 2);
    assert_int_equal(taesd_decode(m, lat, 32, 2, 3, rgb), TAESD_OK);
    taesd_context_stats st0, st1;
    taesd_context_get_stats(ctx, &st0);
    assert_true(st0.pipelines_created > 0 && st0.descriptor_sets_allocated > 0 && st0.command_buffers_recorded > 0);
    assert_int_equal(taesd_decode(m, lat, 32, 2, 3, rgb2), TAESD_OK);
    taesd_context_get_stats(ctx, &st1);
    assert_int_equal(st0.pipelines_created, st1.pipelines_created);
    assert_int_equal(st0.descriptor_sets_allocated, st1.descriptor_sets_allocated);
    assert_int_equal(st0.command_buffers_recorded, st1.command_buffers_recorded);
    assert_memory_equal(rgb, rgb2, sizeof rgb);
    taesd_model_destroy(m);
}

/* AUTO: fp16 on GPUs that have it, fp32 on CPU devices (where fp16 is slower) and devices without fp16. */
static void test_auto_precision(void **state)
{
    (void)state;
    taesd_device_info di;
    taesd_context_device_info(ctx, &di);
    taesd_model *m = load("weights/synth_sd_decoder_f16.safetensors", TAESD_PRECISION_AUTO);
    taesd_model_info info;
    taesd_model_get_info(m, &info);
    const int cpu = 4; /* VK_PHYSICAL_DEVICE_TYPE_CPU */
    assert_int_equal(info.precision, di.fp16 && di.type != cpu ? TAESD_PRECISION_FP16 : TAESD_PRECISION_FP32);
    taesd_model_destroy(m);
}

/* No global state: two contexts, each with a model, interleaved, give identical results. */
static void test_two_contexts(void **state)
{
    (void)state;
    taesd_context *c2 = NULL;
    taesd_context_desc d = { .enable_validation = true };
    assert_int_equal(taesd_context_create(&d, &c2), TAESD_OK);
    taesd_model_desc md = { .path = shared_path("weights/synth_sd_decoder_f16.safetensors"),
                            .precision = TAESD_PRECISION_FP32 };
    taesd_model *m2 = NULL;
    assert_int_equal(taesd_model_load(c2, &md, &m2), TAESD_OK);
    taesd_model *m1 = load("weights/synth_sd_decoder_f16.safetensors", TAESD_PRECISION_FP32);
    float lat[4 * 4 * 4], a[3 * 32 * 32], b[3 * 32 * 32];
    fill_random(lat, 64, 9, -2, 2);
    assert_int_equal(taesd_decode(m1, lat, 4, 4, 4, a), TAESD_OK);
    assert_int_equal(taesd_decode(m2, lat, 4, 4, 4, b), TAESD_OK);
    assert_memory_equal(a, b, sizeof a);
    taesd_model_destroy(m1);
    taesd_model_destroy(m2);
    assert_int_equal(taesd_context_validation_messages(c2), 0);
    taesd_context_destroy(c2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_variant_override),
        cmocka_unit_test(test_run_errors),
        cmocka_unit_test(test_too_large_for_device),
        cmocka_unit_test(test_plan_reuse),
        cmocka_unit_test(test_auto_precision),
        cmocka_unit_test(test_two_contexts),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
