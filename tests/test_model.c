/* test_model.c — key schemes, variant detection, graph builders and the plain C reference (against the golden
 * cases in ../shared/golden). Pure C, no Vulkan. */
#include "testutil.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io/tensors.h"
#include "model/graph.h"
#include "model/model.h"
#include "ref/ref.h"

/* ------------------------------------------------------------------ helpers */

#define SKIP_WITHOUT_SHARED()                                                                                         \
    do {                                                                                                              \
        if (!shared_available()) {                                                                                    \
            fprintf(stderr, "shared data not found; skipping\n");                                                     \
            skip();                                                                                                   \
        }                                                                                                             \
    } while (0)

static void load(const char *rel, tt_table *t)
{
    char err[256] = "";
    int r = tt_load_file(shared_path(rel), t, err, sizeof err);
    if (r)
        fprintf(stderr, "%s: %s\n", rel, err);
    assert_int_equal(r, 0);
}

/* Builds from one or two shared files; returns model_build's result, err filled. */
static int build_files(const char *f1, const char *f2, model_variant force, model_weights *m, char *err, size_t n)
{
    tt_table t1, t2;
    load(f1, &t1);
    if (f2)
        load(f2, &t2);
    int r = model_build(&t1, f2 ? &t2 : NULL, force, m, err, n);
    tt_free(&t1);
    if (f2)
        tt_free(&t2);
    return r;
}

/* A copy of a table's tensor list with room for `extra` more; shares the blob (do not tt_free it). */
static tt_table clone_table(const tt_table *src, int extra)
{
    tt_table t = *src;
    t.tensors = calloc((size_t)(src->count + extra), sizeof *t.tensors);
    assert_non_null(t.tensors);
    memcpy(t.tensors, src->tensors, (size_t)src->count * sizeof *t.tensors);
    t.blob = NULL;
    t.blob_size = 0;
    return t;
}

static tt_tensor *find_mut(tt_table *t, const char *name)
{
    for (int i = 0; i < t->count; i++)
        if (strcmp(t->tensors[i].name, name) == 0)
            return &t->tensors[i];
    return NULL;
}

static void remove_tensor(tt_table *t, const char *name)
{
    tt_tensor *x = find_mut(t, name);
    assert_non_null(x);
    int i = (int)(x - t->tensors);
    memmove(&t->tensors[i], &t->tensors[i + 1], (size_t)(t->count - i - 1) * sizeof *x);
    t->count--;
}

static int64_t table_numel(const tt_table *t, const char *prefix)
{
    int64_t n = 0;
    for (int i = 0; i < t->count; i++)
        if (strncmp(t->tensors[i].name, prefix, strlen(prefix)) == 0 && strcmp(t->tensors[i].name, "vae_scale") &&
            strcmp(t->tensors[i].name, "vae_shift"))
            n += t->tensors[i].numel;
    return n;
}

/* Minimal .npy reader: little-endian float32, C order. */
typedef struct arr {
    int ndim;
    int64_t shape[4];
    int64_t n;
    float *d;
} arr;

static void read_npy(const char *rel, arr *a)
{
    size_t size = 0;
    uint8_t *b = read_all(shared_path(rel), &size);
    assert_non_null(b);
    assert_true(size > 10 && memcmp(b, "\x93NUMPY", 6) == 0);
    size_t hl, off;
    if (b[6] == 1) {
        hl = (size_t)(b[8] | b[9] << 8);
        off = 10;
    } else {
        hl = (size_t)(b[8] | b[9] << 8 | b[10] << 16 | (size_t)b[11] << 24);
        off = 12;
    }
    assert_true(off + hl <= size);
    char *h = calloc(1, hl + 1);
    memcpy(h, b + off, hl);
    assert_non_null(strstr(h, "'<f4'"));
    assert_non_null(strstr(h, "'fortran_order': False"));
    char *s = strstr(h, "'shape': (");
    assert_non_null(s);
    s += strlen("'shape': (");
    memset(a, 0, sizeof *a);
    a->n = 1;
    while (*s && *s != ')') {
        char *e;
        long long v = strtoll(s, &e, 10);
        if (e == s) {
            s++;
            continue;
        }
        assert_true(a->ndim < 4);
        a->shape[a->ndim++] = v;
        a->n *= v;
        s = e;
    }
    free(h);
    off += hl;
    assert_int_equal(size - off, (size_t)a->n * 4);
    a->d = malloc((size_t)a->n * 4);
    memcpy(a->d, b + off, (size_t)a->n * 4);
    free(b);
}

/* ------------------------------------------------------------------ every weight file */

typedef struct file_case {
    const char *file;
    model_variant variant;
    int L, scale;
    key_scheme scheme;
    bool has_gn, enc, dec;
    tt_dtype dtype;
} file_case;

static const file_case FILES[] = {
    {"weights/taef2_encoder.pth", MV_TAEF2, 32, 8, KS_SEQUENTIAL, true, true, false, TT_F16},
    {"weights/taef2_decoder.pth", MV_TAEF2, 32, 8, KS_SEQUENTIAL, true, false, true, TT_F16},
    {"weights/taesana_encoder.pth", MV_TAESANA, 32, 32, KS_SEQUENTIAL, false, true, false, TT_F16},
    {"weights/synth_sd_encoder_f32.pth", MV_TAESD, 4, 8, KS_SEQUENTIAL, false, true, false, TT_F32},
    {"weights/synth_sd_decoder_f32.pth", MV_TAESD, 4, 8, KS_SEQUENTIAL, false, false, true, TT_F32},
    {"weights/synth_sd_encoder_f16.safetensors", MV_TAESD, 4, 8, KS_SEQUENTIAL, false, true, false, TT_F16},
    {"weights/synth_sd_decoder_f16.safetensors", MV_TAESD, 4, 8, KS_SEQUENTIAL, false, false, true, TT_F16},
    {"weights/synth_sd_diffusers_f32.safetensors", MV_TAESD, 4, 8, KS_DIFFUSERS, false, true, true, TT_F32},
    {"weights/synth_sd_comfy_combined_f16.safetensors", MV_TAESD, 4, 8, KS_COMFYUI, false, true, true, TT_F16},
    {"weights/synth_sd3_decoder_bf16.safetensors", MV_TAESD3, 16, 8, KS_SEQUENTIAL, false, false, true, TT_BF16},
    {"weights/synth_sana_decoder_f16.safetensors", MV_TAESANA, 32, 32, KS_SEQUENTIAL, false, false, true, TT_F16},
};
#define NFILES (int)(sizeof FILES / sizeof FILES[0])

/* Structure every graph must have: buffers never alias within an op, and each op reads exactly the values the
 * network's dataflow says (checked by tracking which op last wrote each buffer). */
static void check_graph(const graph *g)
{
    assert_true(g->nops > 0);
    assert_int_equal(g->ops[0].src, GBUF_INPUT);
    assert_int_equal(g->ops[g->nops - 1].dst, GBUF_OUTPUT);
    int val[GBUF_COUNT];
    int *srcval = calloc((size_t)g->nops, sizeof(int));
    for (int b = 0; b < GBUF_COUNT; b++)
        val[b] = -2;   /* never written */
    val[GBUF_INPUT] = -1;
    for (int i = 0; i < g->nops; i++) {
        const gop *o = &g->ops[i];
        assert_true(o->src >= 0 && o->src < GBUF_COUNT);
        assert_true(o->dst >= 0 && o->dst < GBUF_COUNT);
        assert_true(o->dst != o->src && o->dst != o->skip && o->dst != o->aux);
        assert_true(o->dst != GBUF_INPUT);
        assert_true(o->src != GBUF_OUTPUT && o->skip != GBUF_OUTPUT && o->aux != GBUF_OUTPUT);
        if (i < g->nops - 1)
            assert_true(o->dst != GBUF_OUTPUT);
        if (i > 0)
            assert_true(o->src != GBUF_INPUT);
        int want_src = o->kind == GOP_GN_APPLY ? i - 2 : i - 1;
        assert_int_equal(val[o->src], want_src);
        srcval[i] = val[o->src];
        if (o->skip != GBUF_NONE) {
            /* conv.4 adds its Block's input (what conv.0 read); pool.3 adds what pool.0 read */
            assert_true(i >= 2);
            assert_int_equal(val[o->skip], srcval[i - 2]);
            assert_true(strstr(o->name, ".conv.4") || strstr(o->name, ".pool.3"));
        }
        if (o->kind == GOP_GN_APPLY) {
            assert_int_equal(o->aux, GBUF_GN_STATS);
            assert_int_equal(val[o->aux], i - 1);
            assert_int_equal(g->ops[i - 1].kind, GOP_GN_STATS);
            assert_int_equal(g->ops[i - 2].kind, GOP_CONV1X1);
            assert_true(o->gamma >= 0 && o->beta >= 0 && o->weight >= 0);
        } else {
            assert_int_equal(o->aux, GBUF_NONE);
        }
        if (o->kind == GOP_CONV3X3 || o->kind == GOP_CONV1X1 || o->kind == GOP_GN_APPLY) {
            assert_true(o->weight >= 0 && o->weight < g->nparams);
            const gparam *w = &g->params[o->weight];
            assert_int_equal(w->shape[0], o->cout);
            assert_int_equal(w->shape[1], o->cin);
            assert_int_equal(w->shape[2], o->kind == GOP_CONV3X3 ? 3 : 1);
        }
        if (o->bias >= 0)
            assert_int_equal(g->params[o->bias].shape[0], o->cout);
        val[o->dst] = i;
    }
    free(srcval);
}

typedef struct counts {
    int ops, relu, up, s2, gn_stats, convs;
} counts;

static counts count_ops(const graph *g)
{
    counts c = {0};
    c.ops = g->nops;
    for (int i = 0; i < g->nops; i++) {
        const gop *o = &g->ops[i];
        c.relu += o->relu;
        c.up += o->upsample;
        c.s2 += o->stride == 2;
        c.gn_stats += o->kind == GOP_GN_STATS;
        c.convs += o->kind == GOP_CONV3X3;
        if (o->tanh_clamp)
            assert_int_equal(i, 0);
    }
    return c;
}

/* Expected op lists. 8x: 10 Blocks x 3 convs + 5 plain convs = 35; the GroupNorm branch adds 3 ops to each of 3
 * Blocks; TAESana encoder: 2 + 10x3 + 3 + 1 = 36; TAESana decoder: 1 + 16x3 + 5 + 1 = 55. */
static void check_counts(const graph *g, model_variant v, gpart part)
{
    counts c = count_ops(g);
    bool sana = v == MV_TAESANA, gn = v == MV_TAEF2;
    if (part == GPART_DECODER) {
        assert_int_equal(c.ops, sana ? 55 : gn ? 44 : 35);
        assert_int_equal(c.convs, sana ? 55 : 35);
        assert_int_equal(c.relu, sana ? 49 : 31);
        assert_int_equal(c.up, sana ? 5 : 3);
        assert_int_equal(c.s2, 0);
        assert_true(g->ops[0].tanh_clamp && g->ops[0].relu);
        assert_int_equal(g->max_channels, sana ? 256 : 64);
    } else {
        assert_int_equal(c.ops, sana ? 36 : gn ? 44 : 35);
        assert_int_equal(c.convs, sana ? 36 : 35);
        assert_int_equal(c.relu, sana ? 32 : 30);
        assert_int_equal(c.up, 0);
        assert_int_equal(c.s2, sana ? 5 : 3);
        assert_false(g->ops[0].tanh_clamp);
        assert_int_equal(g->max_channels, 64);
    }
    assert_int_equal(c.gn_stats, gn ? 3 : 0);
    assert_int_equal(g->gn_channels, gn ? 256 : 0);
    assert_int_equal(g->gn_groups, gn ? 4 : 0);
    assert_false(g->ops[g->nops - 1].relu);
}

static void test_weight_files(void **state)
{
    (void)state;
    SKIP_WITHOUT_SHARED();
    for (int i = 0; i < NFILES; i++) {
        const file_case *f = &FILES[i];
        tt_table t;
        load(f->file, &t);
        model_weights m;
        char err[256] = "";
        int r = model_build(&t, NULL, MV_AUTO, &m, err, sizeof err);
        if (r)
            fprintf(stderr, "%s: %s\n", f->file, err);
        assert_int_equal(r, 0);
        assert_int_equal(m.variant, f->variant);
        assert_int_equal(m.latent_channels, f->L);
        assert_int_equal(m.scale, f->scale);
        assert_int_equal(m.scheme, f->scheme);
        assert_int_equal(m.has_gn, f->has_gn);
        assert_int_equal(m.dtype, f->dtype);
        assert_int_equal(m.encoder != NULL, f->enc);
        assert_int_equal(m.decoder != NULL, f->dec);
        if (f->scheme == KS_COMFYUI) {
            assert_true(m.has_vae_scale);
            assert_true(fabsf(m.vae_scale - 0.18215f) < 1e-3f);
            assert_true(fabsf(m.vae_shift) < 1e-6f);
        } else {
            assert_false(m.has_vae_scale);
            assert_true(m.vae_scale == 1.0f && m.vae_shift == 0.0f);
        }
        int64_t params = 0;
        if (m.encoder) {
            check_graph(m.encoder);
            check_counts(m.encoder, f->variant, GPART_ENCODER);
            assert_int_equal(m.encoder->part, GPART_ENCODER);
            assert_int_equal(m.encoder->in_channels, 3);
            assert_int_equal(m.encoder->out_channels, f->L);
            assert_int_equal(m.encoder->scale, f->scale);
            params += m.encoder->param_count;
        }
        if (m.decoder) {
            check_graph(m.decoder);
            check_counts(m.decoder, f->variant, GPART_DECODER);
            assert_int_equal(m.decoder->part, GPART_DECODER);
            assert_int_equal(m.decoder->in_channels, f->L);
            assert_int_equal(m.decoder->out_channels, 3);
            params += m.decoder->param_count;
        }
        assert_int_equal(params, table_numel(&t, ""));   /* every tensor became a parameter */
        model_free(&m);
        assert_null(m.encoder);
        tt_free(&t);
    }
    assert_string_equal(model_variant_name(MV_TAEF2), "taef2");
    assert_string_equal(model_variant_name(MV_TAESANA), "taesana");
    assert_string_equal(key_scheme_name(KS_COMFYUI), "comfyui");
    assert_string_equal(key_scheme_name(KS_DIFFUSERS), "diffusers");
    assert_string_equal(key_scheme_name(KS_SEQUENTIAL), "sequential");
}

static void test_two_tables(void **state)
{
    (void)state;
    SKIP_WITHOUT_SHARED();
    model_weights m;
    char err[256] = "";
    static const char *const pairs[][2] = {
        {"weights/synth_sd_encoder_f32.pth", "weights/synth_sd_decoder_f32.pth"},
        {"weights/synth_sd_decoder_f16.safetensors", "weights/synth_sd_encoder_f32.pth"},
        {"weights/taef2_encoder.pth", "weights/taef2_decoder.pth"},
    };
    for (int i = 0; i < 3; i++) {
        int r = build_files(pairs[i][0], pairs[i][1], MV_AUTO, &m, err, sizeof err);
        if (r)
            fprintf(stderr, "%s\n", err);
        assert_int_equal(r, 0);
        assert_non_null(m.encoder);
        assert_non_null(m.decoder);
        assert_int_equal(m.variant, i == 2 ? MV_TAEF2 : MV_TAESD);
        assert_int_equal(m.dtype, i == 1 ? TT_F16 : i == 2 ? TT_F16 : TT_F32);
        model_free(&m);
    }
    /* forcing the variant the file is */
    assert_int_equal(build_files("weights/taef2_decoder.pth", NULL, MV_TAEF2, &m, err, sizeof err), 0);
    assert_int_equal(m.variant, MV_TAEF2);
    model_free(&m);
    assert_int_equal(build_files("weights/synth_sd3_decoder_bf16.safetensors", NULL, MV_TAESD3, &m, err, sizeof err),
                     0);
    model_free(&m);
}

/* Same weights, three key schemes: identical parameters. */
static void test_schemes_same_params(void **state)
{
    (void)state;
    SKIP_WITHOUT_SHARED();
    model_weights a, b, c;
    char err[256];
    assert_int_equal(build_files("weights/synth_sd_encoder_f32.pth", "weights/synth_sd_decoder_f32.pth", MV_AUTO, &a,
                                 err, sizeof err), 0);
    assert_int_equal(build_files("weights/synth_sd_diffusers_f32.safetensors", NULL, MV_AUTO, &b, err, sizeof err), 0);
    assert_int_equal(build_files("weights/synth_sd_comfy_combined_f16.safetensors", NULL, MV_AUTO, &c, err,
                                 sizeof err), 0);
    const graph *ga[2] = {a.encoder, a.decoder}, *gb[2] = {b.encoder, b.decoder}, *gc[2] = {c.encoder, c.decoder};
    for (int p = 0; p < 2; p++) {
        assert_int_equal(ga[p]->nparams, gb[p]->nparams);
        assert_int_equal(ga[p]->nparams, gc[p]->nparams);
        assert_int_equal(ga[p]->nops, gb[p]->nops);
        for (int i = 0; i < ga[p]->nparams; i++) {
            assert_string_equal(ga[p]->params[i].name, gb[p]->params[i].name);
            assert_string_equal(ga[p]->params[i].name, gc[p]->params[i].name);
            size_t n = (size_t)ga[p]->params[i].numel;
            assert_memory_equal(ga[p]->params[i].data, gb[p]->params[i].data, n * sizeof(float));
            assert_memory_equal(ga[p]->params[i].data, gc[p]->params[i].data, n * sizeof(float));
        }
        for (int i = 0; i < ga[p]->nops; i++)
            assert_string_equal(ga[p]->ops[i].name, gb[p]->ops[i].name);
    }
    assert_string_equal(a.decoder->ops[0].name, "1");
    assert_string_equal(a.decoder->ops[1].name, "3.conv.0");
    assert_string_equal(a.decoder->params[a.decoder->ops[1].weight].name, "3.conv.0.weight");
    model_free(&a);
    model_free(&b);
    model_free(&c);
}

/* ------------------------------------------------------------------ sizes and FLOPs */

static graph *load_part(const char *file, gpart part, model_weights *m)
{
    char err[256] = "";
    int r = build_files(file, NULL, MV_AUTO, m, err, sizeof err);
    if (r)
        fprintf(stderr, "%s: %s\n", file, err);
    assert_int_equal(r, 0);
    graph *g = part == GPART_ENCODER ? m->encoder : m->decoder;
    assert_non_null(g);
    return g;
}

static void expect_size(const graph *g, int h, int w, int eh, int ew)
{
    int oh = -1, ow = -1;
    assert_int_equal(graph_output_size(g, h, w, &oh, &ow), 0);
    assert_int_equal(oh, eh);
    assert_int_equal(ow, ew);
}

static void test_sizes(void **state)
{
    (void)state;
    SKIP_WITHOUT_SHARED();
    model_weights me, md, mse, msd;
    graph *enc = load_part("weights/synth_sd_encoder_f16.safetensors", GPART_ENCODER, &me);
    graph *dec = load_part("weights/synth_sd_decoder_f16.safetensors", GPART_DECODER, &md);
    graph *senc = load_part("weights/taesana_encoder.pth", GPART_ENCODER, &mse);
    graph *sdec = load_part("weights/synth_sana_decoder_f16.safetensors", GPART_DECODER, &msd);

    expect_size(enc, 60, 44, 8, 6);   /* 60 -> 30 -> 15 -> 8, 44 -> 22 -> 11 -> 6 */
    expect_size(enc, 96, 64, 12, 8);
    expect_size(enc, 1, 1, 1, 1);
    expect_size(dec, 5, 7, 40, 56);
    expect_size(dec, 1, 1, 8, 8);
    expect_size(sdec, 3, 4, 96, 128);
    expect_size(senc, 256, 256, 8, 8);
    expect_size(senc, 33, 65, 2, 3);

    /* per-op dims: the decoder's first upsampling conv reads 5x7 and writes 10x14 */
    gdims in[64], out[64];
    assert_int_equal(graph_dims(dec, 5, 7, in, out), 0);
    for (int i = 0; i < dec->nops; i++) {
        if (dec->ops[i].upsample) {
            assert_int_equal(in[i].h, 5);
            assert_int_equal(out[i].h, 10);
            assert_int_equal(out[i].w, 14);
            break;
        }
    }
    assert_int_equal(out[dec->nops - 1].h, 40);

    /* invalid and oversized inputs */
    int oh, ow;
    assert_int_equal(graph_dims(dec, 0, 5, in, out), -1);
    assert_int_equal(graph_dims(dec, 5, -1, in, out), -1);
    assert_int_equal(graph_output_size(dec, 0, 0, &oh, &ow), -1);
    assert_int_equal(graph_output_size(dec, 8192, 8192, &oh, &ow), -1);      /* 64x65536x65536 activations */
    assert_int_equal(graph_output_size(enc, 1 << 30, 1 << 30, &oh, &ow), -1);
    assert_int_equal(graph_output_size(dec, 512, 512, &oh, &ow), 0);         /* 64x4096x4096 = 2^30: fits */

    /* FLOPs: exact for the SD decoder (2*Cin*Cout*9*pixels per conv), and 4x for twice the size */
    double hw = 5.0 * 7.0;
    double want = 2.0 * 9.0 *
                  (4.0 * 64 * hw + 64.0 * 64 * (9 * hw + 10 * 4 * hw + 10 * 16 * hw + 4 * 64 * hw) + 64.0 * 3 * 64 * hw);
    assert_true(graph_flops(dec, 5, 7) == want);
    assert_true(graph_flops(dec, 10, 14) == 4.0 * graph_flops(dec, 5, 7));
    assert_true(graph_flops(dec, 0, 7) == 0.0);
    assert_true(graph_flops(enc, 64, 64) > 0.0);

    model_free(&me);
    model_free(&md);
    model_free(&mse);
    model_free(&msd);
}

static void test_gn_flops_and_sizes(void **state)
{
    (void)state;
    SKIP_WITHOUT_SHARED();
    model_weights m;
    graph *g = load_part("weights/taef2_decoder.pth", GPART_DECODER, &m);
    expect_size(g, 5, 7, 40, 56);
    model_weights ms;
    graph *sd = load_part("weights/synth_sd_decoder_f32.pth", GPART_DECODER, &ms);
    /* taef2 = the SD graph with L=32 plus three GroupNorm branches at latent resolution */
    double hw = 35, per_branch = 2.0 * 64 * 256 * hw + 4.0 * 256 * hw + (4.0 * 256 * hw + 2.0 * 256 * 64 * hw + 64 * hw);
    double diff_first = 2.0 * 9 * (32 - 4) * 64 * hw;
    assert_true(fabs(graph_flops(g, 5, 7) - graph_flops(sd, 5, 7) - 3 * per_branch - diff_first) < 1.0);
    model_free(&m);
    model_free(&ms);
}

/* ------------------------------------------------------------------ errors */

static int build_err(const tt_table *t1, const tt_table *t2, model_variant force, char *err, size_t n)
{
    model_weights m;
    memset(&m, 0x5a, sizeof m);
    int r = model_build(t1, t2, force, &m, err, n);
    if (r == 0) {
        model_free(&m);
        return 0;
    }
    assert_null(m.encoder);
    assert_null(m.decoder);
    assert_null(strchr(err, '\n'));
    assert_true(strlen(err) > 0);
    return r;
}

static void test_errors(void **state)
{
    (void)state;
    SKIP_WITHOUT_SHARED();
    tt_table dec, enc, comfy;
    load("weights/synth_sd_decoder_f16.safetensors", &dec);
    load("weights/synth_sd_encoder_f16.safetensors", &enc);
    load("weights/synth_sd_comfy_combined_f16.safetensors", &comfy);
    char err[512];

    /* baseline: the clone builds */
    tt_table t = clone_table(&dec, 2);
    assert_int_equal(build_err(&t, NULL, MV_AUTO, err, sizeof err), 0);

    /* shape mismatch */
    tt_tensor *x = find_mut(&t, "3.conv.0.weight");
    x->shape[1] = 32;
    x->numel /= 2;
    assert_int_not_equal(build_err(&t, NULL, MV_AUTO, err, sizeof err), 0);
    assert_string_equal(err, "shape mismatch: 3.conv.0.weight is [64, 32, 3, 3], expected [64, 64, 3, 3]");
    free(t.tensors);

    /* wrong rank of a bias */
    t = clone_table(&dec, 0);
    x = find_mut(&t, "19.bias");
    x->ndim = 2;
    x->shape[1] = 1;
    assert_int_not_equal(build_err(&t, NULL, MV_AUTO, err, sizeof err), 0);
    assert_string_equal(err, "shape mismatch: 19.bias is [3, 1], expected [3]");
    free(t.tensors);

    /* an extra tensor */
    t = clone_table(&dec, 1);
    t.tensors[t.count] = t.tensors[0];
    snprintf(t.tensors[t.count].name, TT_NAME_MAX, "foo.bar");
    t.count++;
    assert_int_not_equal(build_err(&t, NULL, MV_AUTO, err, sizeof err), 0);
    assert_string_equal(err, "unexpected tensor 'foo.bar'");
    free(t.tensors);

    /* a missing tensor */
    t = clone_table(&dec, 0);
    remove_tensor(&t, "8.conv.2.bias");
    assert_int_not_equal(build_err(&t, NULL, MV_AUTO, err, sizeof err), 0);
    assert_string_equal(err, "missing tensor '8.conv.2.bias'");
    free(t.tensors);

    /* a Block with a skip conv is not supported */
    t = clone_table(&dec, 1);
    t.tensors[t.count] = *find_mut(&t, "9.conv.0.weight");
    snprintf(t.tensors[t.count].name, TT_NAME_MAX, "9.skip.weight");
    t.count++;
    assert_int_not_equal(build_err(&t, NULL, MV_AUTO, err, sizeof err), 0);
    assert_non_null(strstr(err, "9.skip.weight"));
    free(t.tensors);

    /* unsupported latent channel count */
    t = clone_table(&dec, 0);
    x = find_mut(&t, "1.weight");
    x->shape[1] = 2;
    x->numel /= 2;
    assert_int_not_equal(build_err(&t, NULL, MV_AUTO, err, sizeof err), 0);
    assert_string_equal(err, "unsupported latent channel count 2");
    free(t.tensors);

    /* forcing a variant the shapes do not fit */
    assert_int_not_equal(build_err(&dec, NULL, MV_TAESANA, err, sizeof err), 0);
    assert_non_null(strstr(err, "shape mismatch: 1.weight is [64, 4, 3, 3], expected [256, 32, 3, 3]"));
    assert_int_not_equal(build_err(&enc, NULL, MV_TAESANA, err, sizeof err), 0);
    assert_non_null(strstr(err, "shape mismatch: 0.weight"));
    assert_int_not_equal(build_err(&dec, NULL, MV_TAEF2, err, sizeof err), 0);
    assert_non_null(strstr(err, "shape mismatch"));
    assert_int_not_equal(build_err(&dec, NULL, MV_TAESD3, err, sizeof err), 0);
    assert_int_not_equal(build_err(&dec, NULL, (model_variant)9, err, sizeof err), 0);
    assert_int_equal(build_err(&dec, NULL, MV_TAESD, err, sizeof err), 0);

    /* two tables giving the same part */
    assert_int_not_equal(build_err(&enc, &enc, MV_AUTO, err, sizeof err), 0);
    assert_string_equal(err, "both files hold a TAESD encoder");
    assert_int_not_equal(build_err(&comfy, &dec, MV_AUTO, err, sizeof err), 0);
    assert_string_equal(err, "both files hold a TAESD decoder");

    /* no part at all */
    t = clone_table(&dec, 0);
    t.count = 1;
    snprintf(t.tensors[0].name, TT_NAME_MAX, "model.diffusion.weight");
    assert_int_not_equal(build_err(&t, NULL, MV_AUTO, err, sizeof err), 0);
    assert_string_equal(err, "no TAESD encoder or decoder tensors found (keys like '1.weight', "
                             "'decoder.layers.0.weight', 'taesd_decoder.1.weight')");
    t.count = 0;
    assert_int_not_equal(build_err(&t, NULL, MV_AUTO, err, sizeof err), 0);
    assert_non_null(strstr(err, "no TAESD encoder or decoder"));
    free(t.tensors);

    /* a ComfyUI file with a stray Sequential key */
    t = clone_table(&comfy, 1);
    t.tensors[t.count] = *find_mut(&t, "taesd_decoder.19.bias");
    snprintf(t.tensors[t.count].name, TT_NAME_MAX, "19.bias");
    t.count++;
    assert_int_not_equal(build_err(&t, NULL, MV_AUTO, err, sizeof err), 0);
    assert_string_equal(err, "unexpected tensor '19.bias'");
    free(t.tensors);

    /* vae_scale that is not a scalar */
    t = clone_table(&comfy, 0);
    x = find_mut(&t, "vae_scale");
    *x = *find_mut(&t, "taesd_decoder.19.bias");
    snprintf(x->name, TT_NAME_MAX, "vae_scale");
    assert_int_not_equal(build_err(&t, NULL, MV_AUTO, err, sizeof err), 0);
    assert_string_equal(err, "shape mismatch: vae_scale is [3], expected []");
    free(t.tensors);

    /* encoder and decoder of different variants */
    tt_table sd3;
    load("weights/synth_sd3_decoder_bf16.safetensors", &sd3);
    assert_int_not_equal(build_err(&enc, &sd3, MV_AUTO, err, sizeof err), 0);
    assert_string_equal(err, "encoder and decoder disagree: encoder is taesd (4 latent channels), decoder is taesd3 "
                             "(16 latent channels)");
    tt_free(&sd3);

    /* the second file's problems are labelled */
    t = clone_table(&dec, 0);
    remove_tensor(&t, "19.bias");
    assert_int_not_equal(build_err(&enc, &t, MV_AUTO, err, sizeof err), 0);
    assert_string_equal(err, "missing tensor '19.bias' (second file)");
    free(t.tensors);

    /* NULL arguments */
    model_weights m;
    assert_int_not_equal(model_build(NULL, NULL, MV_AUTO, &m, err, sizeof err), 0);
    assert_int_not_equal(model_build(&dec, NULL, MV_AUTO, NULL, err, sizeof err), 0);

    tt_free(&dec);
    tt_free(&enc);
    tt_free(&comfy);
}

/* A diffusers file's decoder indices are shifted by one: a key at the Sequential index is wrong. */
static void test_diffusers_shift(void **state)
{
    (void)state;
    SKIP_WITHOUT_SHARED();
    tt_table d;
    load("weights/synth_sd_diffusers_f32.safetensors", &d);
    tt_table t = clone_table(&d, 0);
    tt_tensor *x = find_mut(&t, "decoder.layers.18.bias");
    assert_non_null(x);
    snprintf(x->name, TT_NAME_MAX, "decoder.layers.19.bias");
    char err[256];
    assert_int_not_equal(build_err(&t, NULL, MV_AUTO, err, sizeof err), 0);
    assert_string_equal(err, "missing tensor 'decoder.layers.18.bias'");
    free(t.tensors);
    tt_free(&d);
}

/* ------------------------------------------------------------------ the reference on hand-made graphs */

static void test_ref_ops(void **state)
{
    (void)state;
    /* 1 channel: identity conv with upsample; then a stride-2 all-ones conv with bias; relu after skip. */
    graph g;
    memset(&g, 0, sizeof g);
    g.in_channels = 1;
    g.out_channels = 1;
    float ident[9] = {0, 0, 0, 0, 1, 0, 0, 0, 0}, ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, bias = 0.5f;
    int shp[4] = {1, 1, 3, 3}, bshp[1] = {1};
    int wi = graph_add_param(&g, "ident", 4, shp, ident);
    int wo = graph_add_param(&g, "ones", 4, shp, ones);
    int bi = graph_add_param(&g, "bias", 1, bshp, &bias);
    assert_true(wi >= 0 && wo >= 0 && bi >= 0);
    gop *o = graph_add_op(&g, GOP_CONV3X3);
    *o = (gop){.kind = GOP_CONV3X3, .cin = 1, .cout = 1, .stride = 1, .upsample = true, .tanh_clamp = true,
               .src = GBUF_INPUT, .dst = GBUF_A, .skip = GBUF_NONE, .aux = GBUF_NONE, .weight = wi, .bias = -1,
               .gamma = -1, .beta = -1};
    o = graph_add_op(&g, GOP_CONV3X3);
    *o = (gop){.kind = GOP_CONV3X3, .cin = 1, .cout = 1, .stride = 2, .src = GBUF_A, .dst = GBUF_OUTPUT,
               .skip = GBUF_NONE, .aux = GBUF_NONE, .weight = wo, .bias = bi, .gamma = -1, .beta = -1};
    graph_finish(&g);
    assert_int_equal(g.max_channels, 1);
    assert_int_equal(g.param_count, 19);
    float in[6] = {1, 2, 3, 4, 5, 30};   /* 2x3 */
    int oh, ow;
    assert_int_equal(graph_output_size(&g, 2, 3, &oh, &ow), 0);   /* up 4x6, stride 2: 2x3 */
    assert_int_equal(oh, 2);
    assert_int_equal(ow, 3);
    float out[6];
    assert_int_equal(ref_run(&g, in, 2, 3, out), 0);
    /* upsampled clamped input u (4x6): u[y][x] = c(in[y/2][x/2]); out[y][x] = 0.5 + sum of u over 3x3 at (2y, 2x) */
    float c[6];
    for (int i = 0; i < 6; i++)
        c[i] = (float)(tanh(in[i] / 3.0) * 3.0);
    float u[4][6];
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 6; x++)
            u[y][x] = c[(y / 2) * 3 + x / 2];
    for (int y = 0; y < 2; y++) {
        for (int x = 0; x < 3; x++) {
            double s = 0.5;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int yy = 2 * y + dy, xx = 2 * x + dx;
                    if (yy >= 0 && yy < 4 && xx >= 0 && xx < 6)
                        s += u[yy][xx];
                }
            assert_true(fabs(out[y * 3 + x] - s) < 1e-5);
        }
    }
    assert_true(c[5] <= 3.0f && c[5] > 2.99f);   /* tanh(10) * 3 */
    graph_free(&g);

    /* relu after the residual add: conv gives -5, skip +3 -> 0 (not 3) */
    memset(&g, 0, sizeof g);
    g.in_channels = g.out_channels = 1;
    float neg[9] = {0, 0, 0, 0, -5, 0, 0, 0, 0};
    int wn = graph_add_param(&g, "neg", 4, shp, neg);
    o = graph_add_op(&g, GOP_CONV3X3);
    o->cin = o->cout = 1;
    o->src = GBUF_INPUT;
    o->dst = GBUF_A;
    o->weight = wn;
    o = graph_add_op(&g, GOP_CONV3X3);
    o->cin = o->cout = 1;
    o->src = GBUF_A;
    o->dst = GBUF_OUTPUT;
    o->skip = GBUF_A;
    o->relu = true;
    o->weight = wn;
    graph_finish(&g);
    float one = -0.2f, r;
    /* A = -5 * -0.2 = 1; out = relu(-5 * 1 + 1) = 0 */
    assert_int_equal(ref_run(&g, &one, 1, 1, &r), 0);
    assert_true(r == 0.0f);
    one = 0.1f;   /* A = -0.5; out = relu(2.5 - 0.5) = 2 */
    assert_int_equal(ref_run(&g, &one, 1, 1, &r), 0);
    assert_true(fabsf(r - 2.0f) < 1e-6f);
    graph_free(&g);

    /* GroupNorm branch: 2 channels -> 1x1 to 4 -> GN(2 groups) -> relu -> 1x1 to 2, + skip */
    memset(&g, 0, sizeof g);
    g.in_channels = g.out_channels = 2;
    float w0[8] = {1, 0, 0, 1, 1, 1, 2, -1}, gam[4] = {1, 2, 1, 1}, bet[4] = {0, 0.5f, -1, 0}, w3[8] = {1, 1, 1, 1,
                                                                                                        0, 1, 0, -1};
    int s0[4] = {4, 2, 1, 1}, s3[4] = {2, 4, 1, 1}, s1[1] = {4};
    int p0 = graph_add_param(&g, "w0", 4, s0, w0), pg = graph_add_param(&g, "g", 1, s1, gam);
    int pb = graph_add_param(&g, "b", 1, s1, bet), p3 = graph_add_param(&g, "w3", 4, s3, w3);
    o = graph_add_op(&g, GOP_CONV1X1);
    o->cin = 2, o->cout = 4, o->src = GBUF_INPUT, o->dst = GBUF_GN_T, o->weight = p0;
    o = graph_add_op(&g, GOP_GN_STATS);
    o->cin = o->cout = 4, o->src = GBUF_GN_T, o->dst = GBUF_GN_STATS, o->groups = 2, o->eps = 1e-5f;
    o = graph_add_op(&g, GOP_GN_APPLY);
    o->cin = 4, o->cout = 2, o->src = GBUF_GN_T, o->aux = GBUF_GN_STATS, o->skip = GBUF_INPUT, o->dst = GBUF_OUTPUT;
    o->weight = p3, o->gamma = pg, o->beta = pb, o->groups = 2, o->eps = 1e-5f;
    graph_finish(&g);
    assert_int_equal(g.gn_channels, 4);
    assert_int_equal(g.gn_groups, 2);
    float gin[2 * 3] = {1, 2, 3, -1, 0, 4};   /* 2 channels, 1x3 */
    float gout[6];
    assert_int_equal(ref_run(&g, gin, 1, 3, gout), 0);
    /* independent computation */
    double t4[4][3];
    for (int co = 0; co < 4; co++)
        for (int p = 0; p < 3; p++)
            t4[co][p] = w0[co * 2] * gin[p] + w0[co * 2 + 1] * gin[3 + p];
    for (int gi = 0; gi < 2; gi++) {
        double mean = 0, var = 0;
        for (int cc = 0; cc < 2; cc++)
            for (int p = 0; p < 3; p++)
                mean += t4[gi * 2 + cc][p] / 6.0;
        for (int cc = 0; cc < 2; cc++)
            for (int p = 0; p < 3; p++)
                var += (t4[gi * 2 + cc][p] - mean) * (t4[gi * 2 + cc][p] - mean) / 6.0;
        for (int cc = 0; cc < 2; cc++)
            for (int p = 0; p < 3; p++) {
                int ch = gi * 2 + cc;
                double v = gam[ch] * (t4[ch][p] - mean) / sqrt(var + 1e-5) + bet[ch];
                t4[ch][p] = v > 0 ? v : 0;
            }
    }
    for (int co = 0; co < 2; co++)
        for (int p = 0; p < 3; p++) {
            double s = gin[co * 3 + p];
            for (int ci = 0; ci < 4; ci++)
                s += w3[co * 4 + ci] * t4[ci][p];
            assert_true(fabs(gout[co * 3 + p] - s) < 1e-5);
        }
    graph_free(&g);
}

/* ------------------------------------------------------------------ golden cases */

typedef struct golden_case {
    const char *name;
    gpart part;
    const char *files[4];   /* "weights" first, then "same_values_in" */
    bool slow;              /* 256x256 taef2: ~12 s each in the naive reference; skipped with TAESD_QUICK_TESTS=1 */
} golden_case;

static const golden_case CASES[] = {
    {"taef2_enc_dog256", GPART_ENCODER, {"weights/taef2_encoder.pth"}, true},
    {"taef2_dec_dog256", GPART_DECODER, {"weights/taef2_decoder.pth"}, true},
    {"taesana_enc_dog256", GPART_ENCODER, {"weights/taesana_encoder.pth"}, false},
    {"taef2_dec_rand_5x7", GPART_DECODER, {"weights/taef2_decoder.pth"}, false},
    {"synth_sd_dec_12x8", GPART_DECODER,
     {"weights/synth_sd_decoder_f32.pth", "weights/synth_sd_decoder_f16.safetensors",
      "weights/synth_sd_diffusers_f32.safetensors", "weights/synth_sd_comfy_combined_f16.safetensors"}, false},
    {"synth_sd_enc_96x64", GPART_ENCODER,
     {"weights/synth_sd_encoder_f32.pth", "weights/synth_sd_encoder_f16.safetensors",
      "weights/synth_sd_diffusers_f32.safetensors", "weights/synth_sd_comfy_combined_f16.safetensors"}, false},
    {"synth_sd_enc_odd_60x44", GPART_ENCODER, {"weights/synth_sd_encoder_f16.safetensors"}, false},
    {"synth_sd3_dec_6x10", GPART_DECODER, {"weights/synth_sd3_decoder_bf16.safetensors"}, false},
    {"synth_sana_dec_3x4", GPART_DECODER, {"weights/synth_sana_decoder_f16.safetensors"}, false},
};
#define NCASES (int)(sizeof CASES / sizeof CASES[0])

static void test_golden(void **state)
{
    const golden_case *c = *state;
    SKIP_WITHOUT_SHARED();
    const char *quick = getenv("TAESD_QUICK_TESTS");   /* valgrind runs: no 256x256 taef2 cases, one file per case */
    bool is_quick = quick && *quick == '1';
    if (c->slow && is_quick) {
        fprintf(stderr, "%s: skipped (TAESD_QUICK_TESTS=1)\n", c->name);
        skip();
    }
    char rel[256];
    arr in, want;
    snprintf(rel, sizeof rel, "golden/%s.in.npy", c->name);
    read_npy(rel, &in);
    snprintf(rel, sizeof rel, "golden/%s.out.npy", c->name);
    read_npy(rel, &want);
    assert_int_equal(in.ndim, 4);
    assert_int_equal(want.ndim, 4);
    for (int f = 0; f < 4 && c->files[f]; f++) {
        if (f > 0 && is_quick)
            break;
        model_weights m;
        graph *g = load_part(c->files[f], c->part, &m);
        assert_int_equal(in.shape[1], g->in_channels);
        int h = (int)in.shape[2], w = (int)in.shape[3], oh, ow;
        assert_int_equal(graph_output_size(g, h, w, &oh, &ow), 0);
        assert_int_equal(want.shape[1], g->out_channels);
        assert_int_equal(want.shape[2], oh);
        assert_int_equal(want.shape[3], ow);
        float *out = malloc((size_t)want.n * sizeof(float));
        assert_non_null(out);
        clock_t t0 = clock();
        assert_int_equal(ref_run(g, in.d, h, w, out), 0);
        double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
        double e = rel_l2(out, want.d, (size_t)want.n);
        printf("  %-24s %-50s rel_l2 %.3e  max_abs %.3e  %.1f s  %.2f GFLOP\n", c->name, c->files[f], e,
               max_abs_diff(out, want.d, (size_t)want.n), secs, graph_flops(g, h, w) * 1e-9);
        assert_true(e <= 1e-5);
        free(out);
        model_free(&m);
    }
    free(in.d);
    free(want.d);
}

int main(void)
{
    struct CMUnitTest tests[8 + NCASES] = {
        cmocka_unit_test(test_weight_files),
        cmocka_unit_test(test_two_tables),
        cmocka_unit_test(test_schemes_same_params),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_gn_flops_and_sizes),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_diffusers_shift),
        cmocka_unit_test(test_ref_ops),
    };
    for (int i = 0; i < NCASES; i++)
        tests[8 + i] = (struct CMUnitTest){CASES[i].name, test_golden, NULL, NULL, (void *)&CASES[i]};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
