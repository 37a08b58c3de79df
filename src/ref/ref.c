/* ref.c — the plain C reference: one obvious function per op kind, float32 storage, double accumulation.
 * Every buffer is planar CHW float32. The Vulkan kernels are tested against this file; keep it simple. */
#include "ref.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct tensor {
    float *d;
    int c, h, w;
} tensor;

static const float *param(const graph *g, int i) { return i >= 0 && i < g->nparams ? g->params[i].data : NULL; }

/* The conv epilogue for output channel co: out = act(acc + skip), act = ReLU when o->relu. */
static void store_plane(const gop *o, const double *acc, const tensor *skip, int co, size_t plane, tensor *out)
{
    float *op = out->d + (size_t)co * plane;
    const float *sp = skip ? skip->d + (size_t)co * plane : NULL;
    for (size_t i = 0; i < plane; i++) {
        double v = acc[i] + (sp ? (double)sp[i] : 0.0);
        if (o->relu && v < 0)
            v = 0;
        op[i] = (float)v;
    }
}

/* out = act(conv3x3(up(clamp(in))) + bias + skip), padding 1, stride 1 or 2. */
static int ref_conv3x3(const graph *g, const gop *o, const tensor *in, const tensor *skip, tensor *out)
{
    const float *w = param(g, o->weight), *bias = param(g, o->bias);
    int uh = o->upsample ? 2 * in->h : in->h, uw = o->upsample ? 2 * in->w : in->w;   /* logical input size */
    int oh = out->h, ow = out->w, s = o->stride;
    size_t in_plane = (size_t)in->h * in->w, out_plane = (size_t)oh * ow;

    /* The clamp first, on a copy of the input. */
    const float *src = in->d;
    float *clamped = NULL;
    if (o->tanh_clamp) {
        clamped = malloc((size_t)o->cin * in_plane * sizeof(float));
        if (!clamped)
            return -1;
        for (size_t i = 0; i < (size_t)o->cin * in_plane; i++)
            clamped[i] = (float)(tanh((double)in->d[i] / 3.0) * 3.0);
        src = clamped;
    }
    double *acc = malloc(out_plane * sizeof(double));
    if (!acc) {
        free(clamped);
        return -1;
    }
    for (int co = 0; co < o->cout; co++) {
        for (size_t i = 0; i < out_plane; i++)
            acc[i] = bias ? (double)bias[co] : 0.0;
        for (int ci = 0; ci < o->cin; ci++) {
            const float *ip = src + (size_t)ci * in_plane;
            for (int ky = 0; ky < 3; ky++) {
                for (int kx = 0; kx < 3; kx++) {
                    double wv = w[(((size_t)co * o->cin + ci) * 3 + ky) * 3 + kx];
                    for (int y = 0; y < oh; y++) {
                        int uy = y * s + ky - 1;   /* row in the (upsampled) input */
                        if (uy < 0 || uy >= uh)
                            continue;
                        int iy = o->upsample ? uy / 2 : uy;
                        const float *row = ip + (size_t)iy * in->w;
                        double *arow = acc + (size_t)y * ow;
                        for (int x = 0; x < ow; x++) {
                            int ux = x * s + kx - 1;
                            if (ux < 0 || ux >= uw)
                                continue;
                            int ix = o->upsample ? ux / 2 : ux;
                            arow[x] += wv * row[ix];
                        }
                    }
                }
            }
        }
        store_plane(o, acc, skip, co, out_plane, out);
    }
    free(acc);
    free(clamped);
    return 0;
}

/* out = act(conv1x1(in) + bias + skip). */
static int ref_conv1x1(const graph *g, const gop *o, const tensor *in, const tensor *skip, tensor *out)
{
    const float *w = param(g, o->weight), *bias = param(g, o->bias);
    size_t plane = (size_t)in->h * in->w;
    double *acc = malloc(plane * sizeof(double));
    if (!acc)
        return -1;
    for (int co = 0; co < o->cout; co++) {
        for (size_t i = 0; i < plane; i++)
            acc[i] = bias ? (double)bias[co] : 0.0;
        for (int ci = 0; ci < o->cin; ci++) {
            double wv = w[(size_t)co * o->cin + ci];
            const float *ip = in->d + (size_t)ci * plane;
            for (size_t i = 0; i < plane; i++)
                acc[i] += wv * ip[i];
        }
        store_plane(o, acc, skip, co, plane, out);
    }
    free(acc);
    return 0;
}

/* stats[2g] = mean, stats[2g+1] = 1/sqrt(var + eps) over the channels of group g and all pixels (biased var). */
static int ref_gn_stats(const gop *o, const tensor *in, float *stats)
{
    size_t plane = (size_t)in->h * in->w;
    int per = o->cin / o->groups;
    for (int gi = 0; gi < o->groups; gi++) {
        const float *p = in->d + (size_t)gi * per * plane;
        size_t n = (size_t)per * plane;
        double sum = 0;
        for (size_t i = 0; i < n; i++)
            sum += p[i];
        double mean = sum / (double)n;
        double sq = 0;
        for (size_t i = 0; i < n; i++)
            sq += ((double)p[i] - mean) * ((double)p[i] - mean);
        double var = sq / (double)n;
        stats[2 * gi] = (float)mean;
        stats[2 * gi + 1] = (float)(1.0 / sqrt(var + (double)o->eps));
    }
    return 0;
}

/* out = skip + conv1x1(relu(gamma * (in - mean) * rstd + beta)). */
static int ref_gn_apply(const graph *g, const gop *o, const tensor *in, const float *stats, const tensor *skip,
                        tensor *out)
{
    const float *gamma = param(g, o->gamma), *beta = param(g, o->beta);
    size_t plane = (size_t)in->h * in->w;
    int per = o->cin / o->groups;
    tensor t = {malloc((size_t)o->cin * plane * sizeof(float)), o->cin, in->h, in->w};
    if (!t.d)
        return -1;
    for (int c = 0; c < o->cin; c++) {
        int gi = c / per;
        double mean = stats[2 * gi], rstd = stats[2 * gi + 1];
        for (size_t i = 0; i < plane; i++) {
            double v = (double)gamma[c] * (((double)in->d[(size_t)c * plane + i] - mean) * rstd) + (double)beta[c];
            t.d[(size_t)c * plane + i] = (float)(v > 0 ? v : 0);
        }
    }
    gop conv = *o;
    conv.kind = GOP_CONV1X1;
    conv.bias = -1;
    int r = ref_conv1x1(g, &conv, &t, skip, out);
    free(t.d);
    return r;
}

static int is_act(gbuf b) { return b >= GBUF_A && b <= GBUF_GN_T; }

int ref_run(const graph *g, const float *input, int h, int w, float *output)
{
    if (!g || !input || !output || g->nops < 1)
        return -1;
    gdims *in_d = malloc((size_t)g->nops * sizeof *in_d), *out_d = malloc((size_t)g->nops * sizeof *out_d);
    float *buf[GBUF_COUNT] = {0};
    tensor cur[GBUF_COUNT];
    memset(cur, 0, sizeof cur);
    int rc = -1;
    if (!in_d || !out_d || graph_dims(g, h, w, in_d, out_d))
        goto done;

    /* Size each intermediate buffer for the largest tensor written into it. */
    size_t need[GBUF_COUNT] = {0};
    for (int i = 0; i < g->nops; i++) {
        const gop *o = &g->ops[i];
        size_t n = o->kind == GOP_GN_STATS ? 2 * (size_t)o->groups : (size_t)o->cout * out_d[i].h * out_d[i].w;
        if ((is_act(o->dst) || o->dst == GBUF_GN_STATS) && n > need[o->dst])
            need[o->dst] = n;
    }
    for (int b = GBUF_A; b < GBUF_COUNT; b++) {
        if (need[b] && !(buf[b] = calloc(need[b], sizeof(float))))
            goto done;
    }
    cur[GBUF_INPUT] = (tensor){(float *)input, g->in_channels, h, w};

    for (int i = 0; i < g->nops; i++) {
        const gop *o = &g->ops[i];
        tensor *src = &cur[o->src];
        const tensor *skip = o->skip != GBUF_NONE ? &cur[o->skip] : NULL;
        tensor out = {o->dst == GBUF_OUTPUT ? output : buf[o->dst], o->cout, out_d[i].h, out_d[i].w};
        if (!src->d || !out.d || (skip && !skip->d) || src->c != o->cin)
            goto done;
        if (skip && (skip->c != o->cout || skip->h != out.h || skip->w != out.w))
            goto done;
        int r = 0;
        switch (o->kind) {
        case GOP_CONV3X3: r = ref_conv3x3(g, o, src, skip, &out); break;
        case GOP_CONV1X1: r = ref_conv1x1(g, o, src, skip, &out); break;
        case GOP_GN_STATS:
            r = ref_gn_stats(o, src, out.d);
            out.c = out.h = out.w = 0;
            break;
        case GOP_GN_APPLY:
            if (o->aux == GBUF_NONE || !cur[o->aux].d)
                goto done;
            r = ref_gn_apply(g, o, src, cur[o->aux].d, skip, &out);
            break;
        default: r = -1;
        }
        if (r)
            goto done;
        cur[o->dst] = out;
    }
    rc = 0;
done:
    for (int b = GBUF_A; b < GBUF_COUNT; b++)
        free(buf[b]);
    free(in_d);
    free(out_d);
    return rc;
}
