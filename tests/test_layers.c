/* test_layers.c — every op kind of the Vulkan engine against the plain C reference (src/ref), at odd sizes,
 * in fp32 and fp16, reading through storage buffers and through texel buffers, plus plan reuse. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "model/graph.h"
#include "ref/ref.h"
#include "run/engine.h"

static engine *g_engine;

static int setup(void **state)
{
    (void)state;
    g_engine = calloc(1, sizeof *g_engine);
    char err[512];
    taesd_result r = engine_init(g_engine, NULL, 0, true, NULL, NULL, err, sizeof err);
    if (r != TAESD_OK) {
        fprintf(stderr, "engine_init: %s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    uint32_t msgs = g_engine->rt.validation_messages;
    engine_destroy(g_engine);
    free(g_engine);
    if (msgs) {
        fprintf(stderr, "%u validation messages\n", msgs);
        return -1;
    }
    return 0;
}

static int add_random_param(graph *g, const char *name, int ndim, const int *shape, uint32_t seed, float scale,
                            float offset)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    float *d = malloc((size_t)n * sizeof(float));
    fill_random(d, (size_t)n, seed, offset - scale, offset + scale);
    int idx = graph_add_param(g, name, ndim, shape, d);
    free(d);
    return idx;
}

static gop *add_conv(graph *g, gop_kind kind, int cin, int cout, bool bias, gbuf src, gbuf dst, uint32_t seed)
{
    int k = kind == GOP_CONV3X3 ? 3 : 1;
    int ws[4] = { cout, cin, k, k };
    float s = 1.5f / sqrtf((float)(cin * k * k));
    int wi = add_random_param(g, "w", 4, ws, seed, s, 0.0f);
    int bi = -1;
    if (bias) {
        int bs[1] = { cout };
        bi = add_random_param(g, "b", 1, bs, seed + 1, 0.5f, 0.0f);
    }
    gop *op = graph_add_op(g, kind);
    op->cin = cin;
    op->cout = cout;
    op->stride = 1;
    op->src = src;
    op->dst = dst;
    op->skip = GBUF_NONE;
    op->aux = GBUF_NONE;
    op->weight = wi;
    op->bias = bi;
    op->gamma = op->beta = -1;
    return op;
}

/* Compares engine and reference on graph g at h×w; both precisions. */
static void check_graph(graph *g, int h, int w, const char *what)
{
    graph_finish(g);
    int oh, ow;
    assert_int_equal(graph_output_size(g, h, w, &oh, &ow), 0);
    size_t nin = (size_t)g->in_channels * h * w, nout = (size_t)g->out_channels * oh * ow;
    float *in = malloc(nin * sizeof(float)), *ref = malloc(nout * sizeof(float)), *out = malloc(nout * sizeof(float));
    fill_random(in, nin, (uint32_t)(h * 131 + w), -2.0f, 2.0f);
    assert_int_equal(ref_run(g, in, h, w, ref), 0);
    /* Both ways of reading activations and weights: storage buffers (GPUs) and texel buffers (CPU devices). */
    const bool texel_default = g_engine->texel_src;
    for (int path = 0; path < 4; path++) {
        const int fp16 = path & 1;
        g_engine->texel_src = (path >> 1) != 0;
        if (fp16 && !g_engine->rt.fp16)
            continue;
        char err[512] = "";
        gpu_graph gg;
        taesd_result r = gpu_graph_create(g_engine, g, fp16, false, &gg, err, sizeof err);
        if (r != TAESD_OK)
            fail_msg("%s: gpu_graph_create: %s", what, err);
        memset(out, 0xff, nout * sizeof(float));  /* NaN: a pixel never written fails the comparison */
        r = gpu_graph_run(g_engine, &gg, in, h, w, out, err, sizeof err);
        if (r != TAESD_OK)
            fail_msg("%s: gpu_graph_run: %s", what, err);
        double e = rel_l2(out, ref, nout);
        double tol = fp16 ? 1e-2 : 1e-5;
        if (!(e <= tol))
            fail_msg("%s %dx%d %s %s: relative L2 %.3g > %.1g", what, h, w, fp16 ? "fp16" : "fp32",
                     g_engine->texel_src ? "texel buffers" : "storage buffers", e, tol);
        gpu_graph_destroy(g_engine, &gg);
    }
    g_engine->texel_src = texel_default;
    free(in);
    free(ref);
    free(out);
    assert_int_equal(g_engine->rt.validation_messages, 0);
}

static const int sizes[][2] = { { 1, 1 }, { 3, 5 }, { 17, 9 } };
#define NSIZES (int)(sizeof sizes / sizeof sizes[0])

/* in -> A (conv3x3 + relu), the op under test A -> B, B -> out (conv3x3): packed-layout paths. */
typedef void (*middle_fn)(graph *g);

static void run_sandwich(middle_fn middle, int cin, int cmid_out, const char *what)
{
    for (int s = 0; s < NSIZES; s++) {
        graph g = { 0 };
        g.part = GPART_DECODER;
        g.in_channels = cin;
        g.out_channels = 3;
        g.scale = 1;
        gop *a = add_conv(&g, GOP_CONV3X3, cin, 8, true, GBUF_INPUT, GBUF_A, 11);
        a->relu = true;
        middle(&g);
        add_conv(&g, GOP_CONV3X3, cmid_out, 3, true, GBUF_B, GBUF_OUTPUT, 99);
        check_graph(&g, sizes[s][0], sizes[s][1], what);
        graph_free(&g);
    }
}

static void mid_conv_bias_relu(graph *g)
{
    gop *op = add_conv(g, GOP_CONV3X3, 8, 12, true, GBUF_A, GBUF_B, 21);
    op->relu = true;
}
static void mid_conv_stride2(graph *g) { add_conv(g, GOP_CONV3X3, 8, 12, false, GBUF_A, GBUF_B, 22)->stride = 2; }
static void mid_conv_upsample(graph *g) { add_conv(g, GOP_CONV3X3, 8, 12, false, GBUF_A, GBUF_B, 23)->upsample = true; }
static void mid_conv_residual(graph *g)
{
    gop *op = add_conv(g, GOP_CONV3X3, 8, 8, true, GBUF_A, GBUF_B, 24);
    op->skip = GBUF_A;
    op->relu = true;
}
static void mid_conv1x1(graph *g) { add_conv(g, GOP_CONV1X1, 8, 20, false, GBUF_A, GBUF_B, 25); }
static void mid_gn_branch(graph *g)
{
    /* x + conv1x1(relu(GroupNorm(conv1x1(x)))) with 4 groups of 4 channels */
    add_conv(g, GOP_CONV1X1, 8, 16, false, GBUF_A, GBUF_GN_T, 26);
    gop *st = graph_add_op(g, GOP_GN_STATS);
    st->cin = st->cout = 16;
    st->groups = 4;
    st->eps = 1e-5f;
    st->src = GBUF_GN_T;
    st->dst = GBUF_GN_STATS;
    st->skip = st->aux = GBUF_NONE;
    st->weight = st->bias = st->gamma = st->beta = -1;
    int cs[1] = { 16 };
    int gamma = add_random_param(g, "gamma", 1, cs, 27, 0.5f, 1.0f);
    int beta = add_random_param(g, "beta", 1, cs, 28, 0.5f, 0.0f);
    gop *ap = add_conv(g, GOP_GN_APPLY, 16, 8, false, GBUF_GN_T, GBUF_B, 29);
    ap->aux = GBUF_GN_STATS;
    ap->skip = GBUF_A;
    ap->groups = 4;
    ap->eps = 1e-5f;
    ap->gamma = gamma;
    ap->beta = beta;
}

static void test_conv3x3_bias_relu(void **s) { (void)s; run_sandwich(mid_conv_bias_relu, 4, 12, "conv3x3+bias+relu"); }
static void test_conv3x3_stride2(void **s) { (void)s; run_sandwich(mid_conv_stride2, 3, 12, "conv3x3 stride 2"); }
static void test_conv3x3_upsample(void **s) { (void)s; run_sandwich(mid_conv_upsample, 16, 12, "upsample+conv3x3"); }
static void test_conv3x3_residual(void **s) { (void)s; run_sandwich(mid_conv_residual, 32, 8, "conv3x3+skip+relu"); }
static void test_conv1x1(void **s) { (void)s; run_sandwich(mid_conv1x1, 4, 20, "conv1x1"); }
static void test_gn_branch(void **s) { (void)s; run_sandwich(mid_gn_branch, 4, 8, "groupnorm branch"); }

/* Planar in and out in one op, with the decoder's tanh clamp, on inputs large enough to saturate it. */
static void test_conv3x3_tanh_planar(void **state)
{
    (void)state;
    for (int s = 0; s < NSIZES; s++) {
        graph g = { 0 };
        g.in_channels = 5;
        g.out_channels = 7;
        gop *op = add_conv(&g, GOP_CONV3X3, 5, 7, true, GBUF_INPUT, GBUF_OUTPUT, 31);
        op->tanh_clamp = true;
        op->relu = true;
        check_graph(&g, sizes[s][0], sizes[s][1], "tanh+conv3x3 planar");
        graph_free(&g);
    }
}

/* A second run at the same size records nothing new; a new size builds one more plan. */
static void test_plan_reuse(void **state)
{
    (void)state;
    graph g = { 0 };
    g.in_channels = 4;
    g.out_channels = 3;
    gop *a = add_conv(&g, GOP_CONV3X3, 4, 8, true, GBUF_INPUT, GBUF_A, 41);
    a->relu = true;
    add_conv(&g, GOP_CONV3X3, 8, 3, true, GBUF_A, GBUF_OUTPUT, 42);
    graph_finish(&g);
    char err[512];
    gpu_graph gg;
    assert_int_equal(gpu_graph_create(g_engine, &g, false, false, &gg, err, sizeof err), TAESD_OK);
    float in[4 * 6 * 7], out[3 * 6 * 7];
    fill_random(in, 4 * 6 * 7, 5, -1, 1);
    assert_int_equal(gpu_graph_run(g_engine, &gg, in, 6, 7, out, err, sizeof err), TAESD_OK);
    engine_stats first = g_engine->stats;
    assert_int_equal(gpu_graph_run(g_engine, &gg, in, 6, 7, out, err, sizeof err), TAESD_OK);
    assert_memory_equal(&first, &g_engine->stats, sizeof first);
    assert_int_equal(gpu_graph_run(g_engine, &gg, in, 7, 6, out, err, sizeof err), TAESD_OK);
    assert_int_equal(g_engine->stats.command_buffers_recorded, first.command_buffers_recorded + 1);
    assert_int_equal(g_engine->stats.pipelines_created, first.pipelines_created);
    gpu_graph_destroy(g_engine, &gg);
    graph_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv3x3_tanh_planar),
        cmocka_unit_test(test_conv3x3_bias_relu),
        cmocka_unit_test(test_conv3x3_stride2),
        cmocka_unit_test(test_conv3x3_upsample),
        cmocka_unit_test(test_conv3x3_residual),
        cmocka_unit_test(test_conv1x1),
        cmocka_unit_test(test_gn_branch),
        cmocka_unit_test(test_plan_reuse),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
