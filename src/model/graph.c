/* graph.c — the op list shared by the Vulkan recorder, the C reference and the accounting: storage, sizes, FLOPs. */
#include "graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void graph_free(graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->nparams; i++)
        free(g->params[i].data);
    free(g->params);
    free(g->ops);
    memset(g, 0, sizeof *g);
}

int graph_add_param(graph *g, const char *name, int ndim, const int *shape, const float *data)
{
    if (!g || ndim < 0 || ndim > 4)
        return -1;
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] > 0 && numel > INT64_MAX / shape[i]))
            return -1;
        numel *= shape[i];
    }
    if ((uint64_t)numel > SIZE_MAX / sizeof(float))
        return -1;
    gparam *np = realloc(g->params, (size_t)(g->nparams + 1) * sizeof *np);
    if (!np)
        return -1;
    g->params = np;
    gparam *p = &g->params[g->nparams];
    memset(p, 0, sizeof *p);
    p->data = malloc(numel > 0 ? (size_t)numel * sizeof(float) : sizeof(float));
    if (!p->data)
        return -1;
    if (data)
        memcpy(p->data, data, (size_t)numel * sizeof(float));
    else
        memset(p->data, 0, (size_t)numel * sizeof(float));
    snprintf(p->name, sizeof p->name, "%s", name ? name : "");
    p->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        p->shape[i] = shape[i];
    p->numel = numel;
    g->param_count += numel;
    return g->nparams++;
}

gop *graph_add_op(graph *g, gop_kind kind)
{
    if (!g)
        return NULL;
    gop *no = realloc(g->ops, (size_t)(g->nops + 1) * sizeof *no);
    if (!no)
        return NULL;
    g->ops = no;
    gop *o = &g->ops[g->nops++];
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->stride = 1;
    o->src = o->dst = o->skip = o->aux = GBUF_NONE;
    o->weight = o->bias = o->gamma = o->beta = -1;
    return o;
}

static int is_rot(gbuf b) { return b == GBUF_A || b == GBUF_B || b == GBUF_C; }

void graph_finish(graph *g)
{
    if (!g)
        return;
    g->max_channels = 0;
    g->gn_channels = 0;
    g->gn_groups = 0;
    g->param_count = 0;
    for (int i = 0; i < g->nparams; i++)
        g->param_count += g->params[i].numel;
    for (int i = 0; i < g->nops; i++) {
        const gop *o = &g->ops[i];
        if (is_rot(o->src) && o->cin > g->max_channels)
            g->max_channels = o->cin;
        if (is_rot(o->dst) && o->cout > g->max_channels)
            g->max_channels = o->cout;
        if (is_rot(o->skip) && o->cout > g->max_channels)
            g->max_channels = o->cout;
        if (o->dst == GBUF_GN_T && o->cout > g->gn_channels)
            g->gn_channels = o->cout;
        if (o->src == GBUF_GN_T && o->cin > g->gn_channels)
            g->gn_channels = o->cin;
        if (o->kind == GOP_GN_STATS && o->groups > g->gn_groups)
            g->gn_groups = o->groups;
    }
}

#define ELEMS_MAX ((int64_t)1 << 31)

/* Output size of op o for an input (its src, before any upsample) of h×w. GN_STATS has no spatial output: {1, 1}. */
static int op_out(const gop *o, int64_t h, int64_t w, int64_t *oh, int64_t *ow)
{
    if (o->kind == GOP_GN_STATS) {
        *oh = *ow = 1;
        return 0;
    }
    if (o->kind == GOP_CONV3X3 && o->upsample) {
        h *= 2;
        w *= 2;
    }
    if (o->kind == GOP_CONV3X3 && o->stride == 2) {
        h = (h + 1) / 2;
        w = (w + 1) / 2;
    }
    *oh = h;
    *ow = w;
    return 0;
}

static int too_big(int64_t h, int64_t w, int ch)
{
    if (h > INT32_MAX || w > INT32_MAX)
        return 1;
    int64_t n = h * w;   /* both < 2^31: fits */
    if (ch < 1)
        ch = 1;
    return n > ELEMS_MAX / ch;
}

int graph_dims(const graph *g, int h, int w, gdims *in_dims, gdims *out_dims)
{
    if (!g || h < 1 || w < 1 || g->nops < 1)
        return -1;
    int64_t bh[GBUF_COUNT] = {0}, bw[GBUF_COUNT] = {0};
    bh[GBUF_INPUT] = h;
    bw[GBUF_INPUT] = w;
    for (int i = 0; i < g->nops; i++) {
        const gop *o = &g->ops[i];
        if (o->src < 0 || o->src >= GBUF_COUNT || o->dst < 0 || o->dst >= GBUF_COUNT)
            return -1;
        int64_t ih = bh[o->src], iw = bw[o->src], oh, ow;
        if (ih < 1 || iw < 1)
            return -1;   /* reads a buffer nothing wrote */
        op_out(o, ih, iw, &oh, &ow);
        if (too_big(ih, iw, o->cin) || too_big(oh, ow, o->cout))
            return -1;
        if (o->kind == GOP_CONV3X3 && o->upsample && too_big(2 * ih, 2 * iw, o->cin))
            return -1;
        if (in_dims) {
            in_dims[i].h = (int)ih;
            in_dims[i].w = (int)iw;
        }
        if (out_dims) {
            out_dims[i].h = (int)oh;
            out_dims[i].w = (int)ow;
        }
        bh[o->dst] = oh;
        bw[o->dst] = ow;
    }
    return 0;
}

int graph_output_size(const graph *g, int h, int w, int *oh, int *ow)
{
    if (!g || g->nops < 1)
        return -1;
    gdims *out = malloc((size_t)g->nops * sizeof *out);
    if (!out)
        return -1;
    int r = graph_dims(g, h, w, NULL, out);
    if (r == 0) {
        if (oh)
            *oh = out[g->nops - 1].h;
        if (ow)
            *ow = out[g->nops - 1].w;
    }
    free(out);
    return r;
}

double graph_op_flops(const gop *o, gdims in, gdims out)
{
    double pin = (double)in.h * in.w, pout = (double)out.h * out.w;
    switch (o->kind) {
    case GOP_CONV3X3: return 2.0 * o->cin * o->cout * 9.0 * pout;
    case GOP_CONV1X1: return 2.0 * o->cin * o->cout * pout;
    /* two passes: sum; then subtract, square, add */
    case GOP_GN_STATS: return 4.0 * o->cin * pin;
    /* normalize + affine + relu, the 1x1 conv, the residual add */
    case GOP_GN_APPLY: return 4.0 * o->cin * pin + 2.0 * o->cin * o->cout * pout + (double)o->cout * pout;
    default: return 0;
    }
}

double graph_flops(const graph *g, int h, int w)
{
    if (!g || g->nops < 1)
        return 0;
    gdims *in = malloc((size_t)g->nops * sizeof *in), *out = malloc((size_t)g->nops * sizeof *out);
    double f = 0;
    if (in && out && graph_dims(g, h, w, in, out) == 0)
        for (int i = 0; i < g->nops; i++)
            f += graph_op_flops(&g->ops[i], in[i], out[i]);
    free(in);
    free(out);
    return f;
}
