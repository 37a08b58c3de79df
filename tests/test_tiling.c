/* test_tiling.c — exact tiling (taesd_model_desc.tile / max_memory): tiled decodes and encodes equal the untiled
 * ones, the halos derived from the ops, tiling chosen by a memory budget, and clean failures below it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "taesd.h"
#include "testutil.h"
#include "io/tensors.h"
#include "model/model.h"
#include "model/split.h"
#include "run/engine.h"

#define MSG_TILING 6          /* docs/api.md */
#define TOL 1e-4

static taesd_context *ctx;

/* The last tiling INFO message, and how many came. */
static struct {
    char msg[512];
    int count;
} tiling_log;

static void log_cb(taesd_log_level level, int id, const char *msg, void *user)
{
    (void)user;
    if (level == TAESD_LOG_INFO && id == MSG_TILING) {
        snprintf(tiling_log.msg, sizeof tiling_log.msg, "%s", msg);
        tiling_log.count++;
    }
}

static int setup(void **state)
{
    (void)state;
    taesd_context_desc d = { .enable_validation = true, .log = log_cb };
    return taesd_context_create(&d, &ctx) == TAESD_OK && shared_available() ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    uint32_t msgs = taesd_context_validation_messages(ctx);
    taesd_context_destroy(ctx);
    return msgs ? -1 : 0;
}

/* fp32 unless a test asks for fp16 */
static taesd_precision precision = TAESD_PRECISION_FP32;

static taesd_model *load(const char *rel, int tile, uint64_t max_memory)
{
    taesd_model_desc md = { .path = shared_path(rel), .precision = precision, .tile = tile,
                            .max_memory = max_memory };
    taesd_model *m = NULL;
    if (taesd_model_load(ctx, &md, &m) != TAESD_OK)
        fail_msg("%s: %s", rel, taesd_context_last_error(ctx));
    return m;
}

/* Tiles in the last tiling message ("... in N tiles ..."), 0 if none came since the reset. */
static int logged_tiles(void)
{
    const char *p = tiling_log.count ? strstr(tiling_log.msg, " in ") : NULL;
    return p ? atoi(p + 4) : 0;
}

/* Runs `part` of `rel` at input h×w (latent pixels for the decoder, image pixels for the encoder) untiled and with
 * the given tile / budget; returns the max abs difference and checks that tiles were used. */
static double compare(const char *rel, taesd_part part, int h, int w, int tile, uint64_t max_memory)
{
    taesd_model *plain = load(rel, 0, 0), *tiled = load(rel, tile, max_memory);
    taesd_model_info mi;
    taesd_model_get_info(plain, &mi);
    const bool dec = part == TAESD_PART_DECODER;
    const int ic = dec ? mi.latent_channels : 3;
    int oh, ow;
    assert_true(taesd_output_size(plain, part, h, w, &oh, &ow));
    const int oc = dec ? 3 : mi.latent_channels;
    const size_t nin = (size_t)ic * h * w, nout = (size_t)oc * oh * ow;
    float *in = malloc(nin * sizeof *in), *a = malloc(nout * sizeof *a), *b = malloc(nout * sizeof *b);
    assert_non_null(in);
    assert_non_null(a);
    assert_non_null(b);
    fill_random(in, nin, 1234u + (uint32_t)h * 31u + (uint32_t)w, dec ? -2.5f : 0.0f, dec ? 2.5f : 1.0f);
    tiling_log.count = 0;
    taesd_result r = dec ? taesd_decode(plain, in, ic, h, w, a) : taesd_encode(plain, in, h, w, a);
    assert_int_equal(r, TAESD_OK);
    assert_int_equal(tiling_log.count, 0);
    r = dec ? taesd_decode(tiled, in, ic, h, w, b) : taesd_encode(tiled, in, h, w, b);
    if (r != TAESD_OK)
        fail_msg("%s: %s", rel, taesd_context_last_error(ctx));
    int tiles = logged_tiles();
    double d = max_abs_diff(b, a, nout);
    printf("%-40s %s %s %dx%d tile %d budget %.1f MiB: %d tiles, max abs diff %.3g  [%s]\n", rel,
           dec ? "decode" : "encode", precision == TAESD_PRECISION_FP16 ? "fp16" : "fp32", w, h, tile,
           (double)max_memory / (1 << 20), tiles, d, tiling_log.msg);
    assert_true(tiles > 1);
    for (size_t i = 0; i < nout; i++)
        assert_true(isfinite(b[i]));
    free(in);
    free(a);
    free(b);
    taesd_model_destroy(plain);
    taesd_model_destroy(tiled);
    return d;
}

/* ---- halos, derived from the ops ---- */

static graph *part_graph(const char *rel, model_weights *m)
{
    tt_table t;
    char err[256];
    assert_int_equal(tt_load_file(shared_path(rel), &t, err, sizeof err), 0);
    assert_int_equal(model_build(&t, NULL, MV_AUTO, m, err, sizeof err), 0);
    tt_free(&t);
    return m->decoder ? m->decoder : m->encoder;
}

static void halos_of(const char *rel, int want_low, int want_high)
{
    model_weights m;
    graph *g = part_graph(rel, &m);
    int cut = graph_stage_cut(g);
    assert_true(cut > 0 && cut < g->nops);
    /* Decoder: at the first upsampling conv; encoder: after the last stride-2 conv. */
    if (g->part == GPART_DECODER)
        assert_true(g->ops[cut].upsample);
    else
        assert_int_equal(g->ops[cut - 1].stride, 2);
    graph a, b;
    char err[256];
    assert_int_equal(graph_extract(g, 0, cut, false, &a, err, sizeof err), 0);
    assert_int_equal(graph_extract(g, cut, g->nops, false, &b, err, sizeof err), 0);
    const bool dec = g->part == GPART_DECODER;
    int low = graph_halo(dec ? &a : &b), high = graph_halo(dec ? &b : &a);
    printf("%-40s cut at op %d (%s): halo latent-res stage %d, higher-res stages %d\n", rel, cut, g->ops[cut].name,
           low, high);
    assert_int_equal(low, want_low);
    assert_int_equal(high, want_high);
    /* The parts hand over at the latent resolution: channels meet, params add up (plus an identity copy where
     * the second part reads its input as a skip). */
    assert_int_equal(a.out_channels, b.in_channels);
    assert_int_equal(a.in_channels, g->in_channels);
    assert_int_equal(b.out_channels, g->out_channels);
    int64_t extra = (int64_t)b.in_channels * b.in_channels;
    assert_true(a.param_count + b.param_count == g->param_count ||
                a.param_count + b.param_count == g->param_count + extra);
    graph_free(&a);
    graph_free(&b);
    model_free(&m);
}

static void test_halos(void **state)
{
    (void)state;
    /* Decoder: 10 convs at 2x, 10 at 4x, 5 at 8x: 10/2 + 10/4 + 5/8 = 8.1 latent pixels, 9 with the rounding of
     * the nearest upsamples. Encoder: the same convs downwards, 65 image pixels = 9 latent pixels. The
     * latent-resolution stage: 10 convs; taef2's needs GroupNorm statistics (-1: runs whole). */
    halos_of("weights/synth_sd_decoder_f16.safetensors", 10, 9);
    halos_of("weights/synth_sd_encoder_f16.safetensors", 10, 9);
    halos_of("weights/synth_sd3_decoder_bf16.safetensors", 10, 9);
    halos_of("weights/taef2_decoder.pth", -1, 9);
    halos_of("weights/taef2_encoder.pth", -1, 9);
    halos_of("weights/synth_sana_decoder_f16.safetensors", 10, 10);
    halos_of("weights/taesana_encoder.pth", 10, 9);
}

/* plan_size (used to pick tiles before anything is built) must match what a plan really allocates. */
static void test_plan_size_matches(void **state)
{
    (void)state;
    taesd_model *m = load("weights/taef2_decoder.pth", 0, 0);
    model_weights mw;
    graph *g = part_graph("weights/taef2_decoder.pth", &mw);
    const int sizes[][2] = { { 5, 7 }, { 16, 9 } };
    for (int i = 0; i < 2; i++) {
        taesd_run_cost c;
        assert_int_equal(taesd_model_run_cost(m, TAESD_PART_DECODER, sizes[i][0], sizes[i][1], &c), TAESD_OK);
        uint64_t total, largest;
        assert_int_equal(plan_size(g, false, sizes[i][0], sizes[i][1], &total, &largest), 0);
        assert_int_equal(total, c.plan_bytes);
    }
    model_free(&mw);
    taesd_model_destroy(m);
}

/* ---- tiled equals untiled ---- */

static void test_decode_sd(void **state)
{
    (void)state;
    assert_true(compare("weights/synth_sd_decoder_f16.safetensors", TAESD_PART_DECODER, 40, 56, 8, 0) <= TOL);
}

static void test_decode_taef2(void **state)
{
    (void)state;
    assert_true(compare("weights/taef2_decoder.pth", TAESD_PART_DECODER, 40, 56, 8, 0) <= TOL);
}

static void test_encode_sd(void **state)
{
    (void)state;
    assert_true(compare("weights/synth_sd_encoder_f16.safetensors", TAESD_PART_ENCODER, 320, 448, 8, 0) <= TOL);
}

static void test_encode_taef2(void **state)
{
    (void)state;
    assert_true(compare("weights/taef2_encoder.pth", TAESD_PART_ENCODER, 320, 448, 8, 0) <= TOL);
}

/* Odd sizes: tiles that do not divide the latent, an image that is not a multiple of 8 (partial last latent
 * pixel in every encoder window). */
static void test_odd_sizes(void **state)
{
    (void)state;
    assert_true(compare("weights/synth_sd_decoder_f16.safetensors", TAESD_PART_DECODER, 37, 21, 5, 0) <= TOL);
    assert_true(compare("weights/taef2_decoder.pth", TAESD_PART_DECODER, 37, 21, 5, 0) <= TOL);
    assert_true(compare("weights/synth_sd_encoder_f16.safetensors", TAESD_PART_ENCODER, 37 * 8 - 3, 21 * 8 - 5, 5,
                        0) <= TOL);
    assert_true(compare("weights/taef2_encoder.pth", TAESD_PART_ENCODER, 37 * 8 - 5, 21 * 8 - 1, 5, 0) <= TOL);
}

/* fp16: the second side copies its float32 input into an fp16 buffer first, rounding it as the untiled run's store
 * did, so tiles match here too. */
static void test_fp16(void **state)
{
    (void)state;
    taesd_device_info di;
    taesd_context_device_info(ctx, &di);
    if (!di.fp16)
        skip();
    precision = TAESD_PRECISION_FP16;
    double d1 = compare("weights/synth_sd_decoder_f16.safetensors", TAESD_PART_DECODER, 24, 32, 6, 0);
    double d2 = compare("weights/taef2_encoder.pth", TAESD_PART_ENCODER, 192, 256, 6, 0);
    precision = TAESD_PRECISION_FP32;
    assert_true(d1 <= TOL);
    assert_true(d2 <= TOL);
}

/* ---- budgets ---- */

static uint64_t untiled_plan_bytes(const char *rel, taesd_part part, int h, int w)
{
    taesd_model *m = load(rel, 0, 0);
    taesd_run_cost c;
    assert_int_equal(taesd_model_run_cost(m, part, h, w, &c), TAESD_OK);
    taesd_model_destroy(m);
    return c.plan_bytes;
}

static void test_budget_tiles(void **state)
{
    (void)state;
    const char *dec = "weights/taef2_decoder.pth", *enc = "weights/synth_sd_encoder_f16.safetensors";
    /* Less than the untiled run needs: tiles are chosen, the result is the same. */
    uint64_t need_enc = untiled_plan_bytes(enc, TAESD_PART_ENCODER, 200, 256);
    assert_true(compare(enc, TAESD_PART_ENCODER, 200, 256, 0, need_enc / 10 * 9) <= TOL);
    uint64_t need = untiled_plan_bytes(dec, TAESD_PART_DECODER, 24, 32);
    assert_true(compare(dec, TAESD_PART_DECODER, 24, 32, 0, need / 10 * 9) <= TOL);

    /* The cost the API reports is the tiled one, within the budget: nothing of the whole size is built. */
    taesd_model *m = load(dec, 0, need / 10 * 9);
    taesd_run_cost c;
    assert_int_equal(taesd_model_run_cost(m, TAESD_PART_DECODER, 24, 32, &c), TAESD_OK);
    assert_true(c.plan_bytes <= need / 10 * 9);
    taesd_model_destroy(m);

    /* A budget the untiled run fits: no tiles. */
    m = load(dec, 0, 1ull << 30);
    float *lat = calloc(32 * 12 * 8, sizeof *lat), *rgb = malloc(3 * 96 * 64 * sizeof *rgb);
    tiling_log.count = 0;
    assert_int_equal(taesd_decode(m, lat, 32, 12, 8, rgb), TAESD_OK);
    assert_int_equal(tiling_log.count, 0);
    free(lat);
    free(rgb);
    taesd_model_destroy(m);
}

static void expect_oom(const char *rel, int tile, uint64_t budget, int h, int w, const char *must_contain)
{
    taesd_model *m = load(rel, tile, budget);
    taesd_model_info mi;
    taesd_model_get_info(m, &mi);
    float *lat = calloc((size_t)mi.latent_channels * h * w, sizeof *lat);
    float *rgb = malloc(3 * (size_t)h * w * 64 * sizeof *rgb);
    for (size_t i = 0; i < 3 * (size_t)h * w * 64; i++)
        rgb[i] = 42.0f;
    assert_int_equal(taesd_decode(m, lat, mi.latent_channels, h, w, rgb), TAESD_ERROR_OUT_OF_MEMORY);
    const char *e = taesd_context_last_error(ctx);
    printf("%s tile %d budget %llu: %s\n", rel, tile, (unsigned long long)budget, e);
    if (!strstr(e, must_contain))
        fail_msg("error '%s' does not contain '%s'", e, must_contain);
    assert_null(strchr(e, '\n'));
    assert_true(rgb[0] == 42.0f);   /* nothing ran */
    free(lat);
    free(rgb);
    taesd_model_destroy(m);
}

static void test_budget_too_small(void **state)
{
    (void)state;
    /* Even 1-pixel tiles do not fit. */
    expect_oom("weights/synth_sd_decoder_f16.safetensors", 0, 1u << 20, 40, 56, "even tiles of 1 latent pixel");
    /* taef2: the latent-resolution stage runs whole (GroupNorm statistics) and alone exceeds the budget. */
    expect_oom("weights/taef2_decoder.pth", 0, 1u << 20, 40, 56, "runs whole (GroupNorm statistics)");
    /* Forced tiles above the budget. */
    expect_oom("weights/synth_sd_decoder_f16.safetensors", 8, 4u << 20, 40, 56, "tiles of 8 latent pixels");
    /* A negative tile is refused at load. */
    taesd_model_desc md = { .path = shared_path("weights/taef2_decoder.pth"), .tile = -1 };
    taesd_model *m = (taesd_model *)1;
    assert_int_equal(taesd_model_load(ctx, &md, &m), TAESD_ERROR_INVALID_ARGUMENT);
    assert_null(m);
    assert_non_null(strstr(taesd_context_last_error(ctx), "tile"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_halos),
        cmocka_unit_test(test_plan_size_matches),
        cmocka_unit_test(test_decode_sd),
        cmocka_unit_test(test_decode_taef2),
        cmocka_unit_test(test_encode_sd),
        cmocka_unit_test(test_encode_taef2),
        cmocka_unit_test(test_odd_sizes),
        cmocka_unit_test(test_fp16),
        cmocka_unit_test(test_budget_tiles),
        cmocka_unit_test(test_budget_too_small),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
