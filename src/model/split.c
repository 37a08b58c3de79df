/* split.c — graph parts for exact tiling: op ranges as graphs of their own, and receptive fields. See split.h. */
#include "split.h"
#include "../io/ioutil.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


int graph_stage_cut(const graph *g)
{
    if (!g || g->nops < 2)
        return -1;
    int last_down = -1;
    for (int i = 0; i < g->nops; i++) {
        if (g->ops[i].kind == GOP_CONV3X3 && g->ops[i].upsample)
            return i > 0 ? i : -1;
        if (g->ops[i].kind == GOP_CONV3X3 && g->ops[i].stride == 2)
            last_down = i;
    }
    return last_down >= 0 && last_down + 1 < g->nops ? last_down + 1 : -1;
}

int graph_resample(const graph *g, int *up, int *down)
{
    int u = 0, d = 0;
    for (int i = 0; i < g->nops; i++) {
        if (g->ops[i].kind != GOP_CONV3X3)
            continue;
        u += g->ops[i].upsample;
        d += g->ops[i].stride == 2;
    }
    if ((u && d) || u > 16 || d > 16)
        return -1;
    *up = 1 << u;
    *down = 1 << d;
    return 0;
}

/* ---- receptive field ------------------------------------------------------------------------------------ */

typedef struct span {
    int64_t lo, hi;
    bool live;
} span;

static void widen(span *s, int64_t lo, int64_t hi)
{
    if (!s->live) {
        s->lo = lo;
        s->hi = hi;
        s->live = true;
        return;
    }
    if (lo < s->lo)
        s->lo = lo;
    if (hi > s->hi)
        s->hi = hi;
}

static int64_t floor_div2(int64_t v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); }

/* Input pixels (one axis) that output pixels [olo, ohi] depend on, following every path back through the ops: a
 * k×k conv reaches k/2 pixels further at its input's stride, an upsampling conv reads pixel floor(x/2), a skip adds
 * the same pixels. Returns -1 for a global op. */
static int input_span(const graph *g, int64_t olo, int64_t ohi, int64_t *lo, int64_t *hi)
{
    span need[GBUF_COUNT];
    memset(need, 0, sizeof need);
    widen(&need[GBUF_OUTPUT], olo, ohi);
    for (int i = g->nops - 1; i >= 0; i--) {
        const gop *op = &g->ops[i];
        if (op->kind == GOP_GN_STATS || op->aux != GBUF_NONE)
            return -1;
        if (op->dst < 0 || op->dst >= GBUF_COUNT || op->src < 0 || op->src >= GBUF_COUNT)
            return -1;
        if (!need[op->dst].live)
            continue;
        span d = need[op->dst];
        need[op->dst].live = false;   /* written here: what it held before is not what was needed */
        const int r = op->kind == GOP_CONV3X3 ? 1 : 0;
        const int s = op->stride == 2 ? 2 : 1;
        int64_t l = d.lo * s - r, h = d.hi * s + r;
        if (op->upsample) {
            l = floor_div2(l);
            h = floor_div2(h);
        }
        widen(&need[op->src], l, h);
        if (op->skip != GBUF_NONE && op->skip >= 0 && op->skip < GBUF_COUNT)
            widen(&need[op->skip], d.lo, d.hi);
    }
    if (!need[GBUF_INPUT].live)
        return -1;
    *lo = need[GBUF_INPUT].lo;
    *hi = need[GBUF_INPUT].hi;
    return 0;
}

int graph_halo(const graph *g)
{
    int up, down;
    if (!g || g->nops < 1 || graph_resample(g, &up, &down) != 0)
        return -1;
    const int64_t k = (int64_t)1 << 24;   /* a coarse pixel far from 0: no negative coordinates */
    int64_t halo = 0;
    if (up > 1) {
        /* Output pixel k·up + p lies in coarse pixel k; the window is counted in input (coarse) pixels. */
        for (int p = 0; p < up; p++) {
            int64_t lo, hi;
            if (input_span(g, k * up + p, k * up + p, &lo, &hi) != 0)
                return -1;
            if (k - lo > halo)
                halo = k - lo;
            if (hi - k > halo)
                halo = hi - k;
        }
    } else {
        /* Output (coarse) pixel k reads input pixels [lo, hi] around its footprint starting at k·down. Measured from
         * that start on both sides, so a window whose last coarse pixel is partial (an image size that is not a
         * multiple of `down`) still covers the right side. */
        int64_t lo, hi;
        if (input_span(g, k, k, &lo, &hi) != 0)
            return -1;
        int64_t a = k * down - lo, b = hi - k * down;
        int64_t m = a > b ? a : b;
        halo = (m + down - 1) / down;
    }
    return halo > INT32_MAX / 4 ? -1 : (int)halo;
}

/* ---- extracting an op range ----------------------------------------------------------------------------- */

static bool is_rot(gbuf b) { return b == GBUF_A || b == GBUF_B || b == GBUF_C; }

/* The param `src` of g as a param of out (copied on first use). */
static int map_param(const graph *g, int src, graph *out, int *map)
{
    if (src < 0)
        return -1;
    if (map[src] < 0) {
        const gparam *p = &g->params[src];
        map[src] = graph_add_param(out, p->name, p->ndim, p->shape, p->data);
        if (map[src] < 0)
            return -2;
    }
    return map[src];
}

int graph_extract(const graph *g, int begin, int end, bool copy_in, graph *out, char *err, size_t errlen)
{
    if (!out)
        return io_err(err, errlen, "invalid argument");
    memset(out, 0, sizeof *out);
    if (!g || begin < 0 || end > g->nops || begin >= end)
        return io_err(err, errlen, "invalid op range");
    out->part = g->part;
    out->scale = g->scale;
    out->in_channels = begin > 0 ? g->ops[begin - 1].cout : g->in_channels;
    out->out_channels = end < g->nops ? g->ops[end - 1].cout : g->out_channels;
    if (end < g->nops && g->ops[end - 1].kind == GOP_GN_STATS)
        return io_err(err, errlen, "cannot cut after op %d (GroupNorm statistics)", end - 1);

    /* The buffer live at the start cut, and whether it may be read as planar input in place: only as the input of
     * convs (IN_PLANAR), never as a skip or by the statistics, and not where the caller asks for the copy. */
    gbuf entry = GBUF_INPUT;
    bool in_place = !(copy_in && begin > 0);
    if (begin > 0) {
        entry = g->ops[begin - 1].dst;
        if (!is_rot(entry))
            return io_err(err, errlen, "cannot cut before op %d", begin);
        for (int i = begin; i < end; i++) {
            const gop *op = &g->ops[i];
            if (op->skip == entry || op->aux == entry || (op->src == entry && op->kind == GOP_GN_STATS))
                in_place = false;
            if (op->dst == entry)
                break;
        }
    }

    int *map = malloc((size_t)(g->nparams > 0 ? g->nparams : 1) * sizeof *map);
    if (!map)
        return io_err(err, errlen, "out of memory");
    for (int i = 0; i < g->nparams; i++)
        map[i] = -1;
    if (!in_place) {
        const int c = out->in_channels;
        const int shape[4] = { c, c, 1, 1 };
        int id = graph_add_param(out, "cut.identity", 4, shape, NULL);
        gop *op = id >= 0 ? graph_add_op(out, GOP_CONV1X1) : NULL;
        if (!op)
            goto oom;
        for (int k = 0; k < c; k++)
            out->params[id].data[(size_t)k * (size_t)c + (size_t)k] = 1.0f;
        op->src = GBUF_INPUT;
        op->dst = entry;
        op->cin = op->cout = c;
        op->weight = id;
        snprintf(op->name, sizeof op->name, "cut.identity");
    }
    bool renaming = begin > 0 && in_place;
    for (int i = begin; i < end; i++) {
        gop o = g->ops[i];
        int *idx[4] = { &o.weight, &o.bias, &o.gamma, &o.beta };
        for (int k = 0; k < 4; k++) {
            int v = map_param(g, *idx[k], out, map);
            if (v == -2)
                goto oom;
            *idx[k] = v;
        }
        if (renaming && o.src == entry)
            o.src = GBUF_INPUT;
        if (o.dst == entry)
            renaming = false;
        if (i == end - 1)
            o.dst = GBUF_OUTPUT;
        gop *slot = graph_add_op(out, o.kind);
        if (!slot)
            goto oom;
        *slot = o;
    }
    free(map);
    graph_finish(out);
    if (graph_dims(out, 16, 16, NULL, NULL) != 0) {
        graph_free(out);
        return io_err(err, errlen, "ops %d..%d do not form a graph of their own", begin, end - 1);
    }
    return 0;
oom:
    free(map);
    graph_free(out);
    return io_err(err, errlen, "out of memory");
}
