/* tiling.c — exact tiled decodes and encodes. See tiling.h; docs/tiling.md has the derivation and the numbers. */
#include "tiling.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../model/split.h"

/* One side of the cut: its ops as a graph of their own, on the device once a run needs it. */
typedef struct side {
    graph g;
    gpu_graph gg;
    bool on_device;
    int halo;               /* latent pixels; -1: runs whole */
    int in_f, out_f;        /* pixels per latent pixel at its input and its output */
} side;

typedef struct tpart {
    gpu_graph *full;        /* the model's, untiled; NULL: no such part */
    int split;              /* 0: not yet, 1: sides built, -1: cannot be split (split_err says why) */
    char split_err[160];
    side s[2];              /* in run order */
    int low;                /* which of them is the latent-resolution stage */
} tpart;

struct tiling {
    int tile;
    uint64_t max_memory;
    bool fp16;
    tpart p[2];             /* encoder, decoder */
};

/* How one run is carried out. */
typedef struct layout {
    bool tiled;
    int lh, lw;             /* latent size */
    int tile;
    int wh[2], ww[2];       /* window of each side, latent pixels */
    int ih[2], iw[2];       /* input size of one run of each side */
    uint64_t bytes[2], largest[2];
    uint64_t total, biggest;
} layout;

typedef struct span {
    int s;                  /* window start */
    int c, e;               /* the latent pixels [c, e) this window supplies */
} span;

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }
static double mib(uint64_t b) { return (double)b / (1024.0 * 1024.0); }

static tpart *part_of(tiling *t, gpart part) { return &t->p[part == GPART_DECODER]; }

taesd_result tiling_create(int tile, uint64_t max_memory, bool fp16, gpu_graph *enc, gpu_graph *dec, tiling **out)
{
    *out = NULL;
    if (tile < 0)
        return TAESD_ERROR_INVALID_ARGUMENT;
    tiling *t = calloc(1, sizeof *t);
    if (!t)
        return TAESD_ERROR_OUT_OF_MEMORY;
    t->tile = tile;
    t->max_memory = max_memory;
    t->fp16 = fp16;
    t->p[0].full = enc;
    t->p[1].full = dec;
    *out = t;
    return TAESD_OK;
}

void tiling_destroy(engine *e, tiling *t)
{
    if (!t)
        return;
    for (int q = 0; q < 2; q++)
        for (int k = 0; k < 2; k++) {
            side *s = &t->p[q].s[k];
            if (s->on_device)
                gpu_graph_destroy(e, &s->gg);
            graph_free(&s->g);
        }
    free(t);
}

/* Cuts the part's graph into its two sides (host only; once). In fp16 the second side copies its float32 input into
 * an fp16 buffer first, so that it sees the values the untiled run stored. */
static int split_part(tpart *tp, bool fp16)
{
    if (tp->split)
        return tp->split > 0 ? 0 : -1;
    const graph *g = tp->full->g;
    int cut = graph_stage_cut(g);
    char err[160] = "";
    tp->split = -1;
    if (cut < 0) {
        snprintf(tp->split_err, sizeof tp->split_err, "the network has no latent-resolution stage to cut at");
        return -1;
    }
    for (int k = 0; k < 2; k++) {
        side *s = &tp->s[k];
        int up, down;
        if (graph_extract(g, k ? cut : 0, k ? g->nops : cut, fp16, &s->g, err, sizeof err) != 0 ||
            graph_resample(&s->g, &up, &down) != 0) {
            snprintf(tp->split_err, sizeof tp->split_err, "cannot split the network: %s", err[0] ? err : "resampling");
            return -1;
        }
        s->halo = graph_halo(&s->g);
        s->in_f = down;
        s->out_f = up;
    }
    tp->low = g->part == GPART_DECODER ? 0 : 1;
    const side *hi = &tp->s[1 - tp->low], *lo = &tp->s[tp->low];
    if (hi->halo < 0 || lo->in_f != 1 || lo->out_f != 1 || hi->in_f * hi->out_f != g->scale) {
        snprintf(tp->split_err, sizeof tp->split_err, "its higher-resolution stages cannot be tiled");
        return -1;
    }
    tp->split = 1;
    return 0;
}

/* Window of a side along one axis of L latent pixels, and the input size of one run (full_in: the side's whole
 * input; at a fine input the window's last latent pixel may be partial, as the image's is). */
static void side_window(const side *s, int tile, int L, int full_in, int *win, int *in)
{
    *win = s->halo < 0 || tile >= L - 2 * s->halo ? L : tile + 2 * s->halo;
    *in = s->in_f * *win - (s->in_f * L - full_in);
}

static int layout_for(const tiling *t, const tpart *tp, int tile, int h, int w, int lh, int lw, layout *lo)
{
    memset(lo, 0, sizeof *lo);
    lo->tiled = true;
    lo->tile = tile;
    lo->lh = lh;
    lo->lw = lw;
    for (int k = 0; k < 2; k++) {
        side_window(&tp->s[k], tile, lh, k ? lh : h, &lo->wh[k], &lo->ih[k]);
        side_window(&tp->s[k], tile, lw, k ? lw : w, &lo->ww[k], &lo->iw[k]);
        if (plan_size(&tp->s[k].g, t->fp16, lo->ih[k], lo->iw[k], &lo->bytes[k], &lo->largest[k]) != 0)
            return -1;
        lo->total += lo->bytes[k];
        if (lo->largest[k] > lo->biggest)
            lo->biggest = lo->largest[k];
    }
    return 0;
}

static bool fits(const tiling *t, const layout *lo, uint64_t limit)
{
    return lo->biggest <= limit && (!t->max_memory || lo->total <= t->max_memory);
}

/* Why a tiled layout does not fit, as one line. */
static taesd_result no_fit(const tiling *t, const tpart *tp, const layout *lo, uint64_t limit, char *err,
                           size_t errlen)
{
    const int l = tp->low;
    char what[96];
    if (tp->s[l].halo < 0 && (lo->largest[l] > limit || (t->max_memory && lo->bytes[l] > t->max_memory))) {
        /* The stage that must run whole does not fit by itself: no tile size helps. */
        if (lo->largest[l] > limit)
            set_err(err, errlen,
                    "a %dx%d latent needs a %.1f MiB buffer in its latent-resolution stage, which runs whole "
                    "(GroupNorm statistics), above this device's maxStorageBufferRange (%.1f MiB)",
                    lo->lw, lo->lh, mib(lo->largest[l]), mib(limit));
        else
            set_err(err, errlen,
                    "a %dx%d latent needs %.1f MiB for its latent-resolution stage, which runs whole (GroupNorm "
                    "statistics), above the memory budget of %.1f MiB",
                    lo->lw, lo->lh, mib(lo->bytes[l]), mib(t->max_memory));
        return TAESD_ERROR_OUT_OF_MEMORY;
    }
    char whole[96] = "";
    if (tp->s[l].halo < 0)
        snprintf(whole, sizeof whole, " (%.1f MiB of it for the latent-resolution stage, which runs whole)",
                 mib(lo->bytes[l]));
    snprintf(what, sizeof what, "%s of %d latent pixel%s (windows of %dx%d)", t->tile ? "tiles" : "even tiles",
             lo->tile, lo->tile == 1 ? "" : "s", lo->ww[1 - l], lo->wh[1 - l]);
    if (lo->biggest > limit)
        set_err(err, errlen, "%s need a %.1f MiB buffer, above this device's maxStorageBufferRange (%.1f MiB)", what,
                mib(lo->biggest), mib(limit));
    else
        set_err(err, errlen, "%s need %.1f MiB%s, above the memory budget of %.1f MiB", what, mib(lo->total), whole,
                mib(t->max_memory));
    return TAESD_ERROR_OUT_OF_MEMORY;
}

/* Untiled where the options and the device allow, else the largest tiles that fit (or the forced ones). */
static taesd_result choose(engine *e, tiling *t, gpart part, int h, int w, layout *lo, char *err, size_t errlen)
{
    tpart *tp = part_of(t, part);
    const graph *g = tp->full->g;
    const uint64_t limit = e->rt.props.limits.maxStorageBufferRange;
    memset(lo, 0, sizeof *lo);
    uint64_t tot = 0, big = 0;
    if (plan_size(g, t->fp16, h, w, &tot, &big) != 0) {
        set_err(err, errlen, "input size %dx%d is not supported", w, h);
        return TAESD_ERROR_SHAPE;
    }
    lo->total = tot;
    lo->biggest = big;
    if (t->tile == 0 && big <= limit && (!t->max_memory || tot <= t->max_memory))
        return TAESD_OK;
    if (split_part(tp, t->fp16) != 0) {
        if (big > limit)
            set_err(err, errlen, "a %dx%d input needs a %.1f MiB buffer, above this device's maxStorageBufferRange "
                    "(%.1f MiB), and %s", w, h, mib(big), mib(limit), tp->split_err);
        else if (t->max_memory && tot > t->max_memory)
            set_err(err, errlen, "a %dx%d input needs %.1f MiB, above the memory budget of %.1f MiB, and %s", w, h,
                    mib(tot), mib(t->max_memory), tp->split_err);
        else
            set_err(err, errlen, "tiles were asked for, but %s", tp->split_err);
        return TAESD_ERROR_OUT_OF_MEMORY;
    }
    int lh = h, lw = w;
    if (part == GPART_ENCODER && graph_output_size(g, h, w, &lh, &lw) != 0) {
        set_err(err, errlen, "input size %dx%d is not supported", w, h);
        return TAESD_ERROR_SHAPE;
    }
    const int lmax = imax(lh, lw);
    int tile = t->tile ? imin(t->tile, lmax) : 1;
    if (layout_for(t, tp, tile, h, w, lh, lw, lo) != 0) {
        set_err(err, errlen, "input size %dx%d is not supported", w, h);
        return TAESD_ERROR_SHAPE;
    }
    if (!fits(t, lo, limit))
        return no_fit(t, tp, lo, limit, err, errlen);
    if (t->tile)
        return TAESD_OK;
    /* Memory grows with the tile: the largest that fits. */
    int good = 1, bad = lmax + 1;
    while (bad - good > 1) {
        int mid = good + (bad - good) / 2;
        layout m;
        if (layout_for(t, tp, mid, h, w, lh, lw, &m) == 0 && fits(t, &m, limit))
            good = mid;
        else
            bad = mid;
    }
    layout_for(t, tp, good, h, w, lh, lw, lo);
    return TAESD_OK;
}

/* Windows along one axis of L latent pixels: the first reaches the border, then each supplies `win - 2·halo` new
 * pixels (the border windows a halo more); windows are clamped inside the image so all have the same size. */
static int axis_spans(int L, int win, int halo, span *out)
{
    if (win >= L) {
        out[0] = (span){ 0, 0, L };
        return 1;
    }
    int n = 0;
    for (int c = 0; c < L;) {
        int s = imin(imax(c - halo, 0), L - win);
        int e = s + win >= L ? L : s + win - halo;
        out[n++] = (span){ s, c, e };
        c = e;
    }
    return n;
}

static int side_runs(const side *s, const layout *lo, int k)
{
    span *sp = malloc(sizeof *sp * (size_t)imax(lo->lh, lo->lw));
    if (!sp)
        return 0;
    int n = axis_spans(lo->lh, lo->wh[k], s->halo, sp) * axis_spans(lo->lw, lo->ww[k], s->halo, sp);
    free(sp);
    return n;
}

static void report(const tpart *tp, const layout *lo, tiling_report *rep)
{
    if (!rep)
        return;
    memset(rep, 0, sizeof *rep);
    rep->tiled = lo->tiled;
    rep->plan_bytes = lo->total;
    if (!lo->tiled)
        return;
    const int hk = 1 - tp->low;
    rep->tile = lo->tile;
    rep->tiles = side_runs(&tp->s[hk], lo, hk);
    rep->low_tiles = side_runs(&tp->s[tp->low], lo, tp->low);
    rep->halo_high = tp->s[hk].halo;
    rep->halo_low = tp->s[tp->low].halo;
    rep->win_h = lo->wh[hk];
    rep->win_w = lo->ww[hk];
}

/* c×h×w block at (y0, x0) of a c×sh×sw array. */
static void crop(const float *src, int c, int sh, int sw, int y0, int x0, int h, int w, float *dst)
{
    for (int k = 0; k < c; k++)
        for (int y = 0; y < h; y++)
            memcpy(dst + ((size_t)k * h + y) * w, src + ((size_t)k * sh + y0 + y) * sw + x0, sizeof(float) * w);
}

/* The h×w block at (ty, tx) of a c×th×tw tile into a c×dh×dw array at (y0, x0). */
static void paste(const float *tile, int c, int th, int tw, int ty, int tx, int h, int w, float *dst, int dh, int dw,
                  int y0, int x0)
{
    for (int k = 0; k < c; k++)
        for (int y = 0; y < h; y++)
            memcpy(dst + ((size_t)k * dh + y0 + y) * dw + x0, tile + ((size_t)k * th + ty + y) * tw + tx,
                   sizeof(float) * w);
}

/* Runs side k of a layout from src (its whole input, sh×sw) into dst (its whole output, dh×dw). */
static taesd_result run_side(engine *e, tiling *t, tpart *tp, int k, const layout *lo, const float *src, int sh,
                             int sw, float *dst, int dh, int dw, char *err, size_t errlen)
{
    side *s = &tp->s[k];
    taesd_result r;
    if (!s->on_device) {
        r = gpu_graph_create(e, &s->g, t->fp16, false, &s->gg, err, errlen);
        if (r != TAESD_OK)
            return r;
        s->on_device = true;
    }
    const int ih = lo->ih[k], iw = lo->iw[k];
    if (lo->wh[k] == lo->lh && lo->ww[k] == lo->lw)
        return gpu_graph_run(e, &s->gg, src, sh, sw, dst, err, errlen);
    int oh, ow;
    if (graph_output_size(&s->g, ih, iw, &oh, &ow) != 0) {
        set_err(err, errlen, "tile size %dx%d is not supported", iw, ih);
        return TAESD_ERROR_SHAPE;
    }
    const int cin = s->g.in_channels, cout = s->g.out_channels;
    span *ys = malloc(sizeof *ys * (size_t)lo->lh), *xs = malloc(sizeof *xs * (size_t)lo->lw);
    float *tin = malloc(sizeof(float) * (size_t)cin * (size_t)ih * (size_t)iw);
    float *tout = malloc(sizeof(float) * (size_t)cout * (size_t)oh * (size_t)ow);
    r = TAESD_OK;
    if (!ys || !xs || !tin || !tout) {
        set_err(err, errlen, "out of host memory for tiles of %dx%d", iw, ih);
        r = TAESD_ERROR_OUT_OF_MEMORY;
    }
    const int ny = r == TAESD_OK ? axis_spans(lo->lh, lo->wh[k], s->halo, ys) : 0;
    const int nx = r == TAESD_OK ? axis_spans(lo->lw, lo->ww[k], s->halo, xs) : 0;
    for (int ty = 0; ty < ny && r == TAESD_OK; ty++) {
        for (int tx = 0; tx < nx && r == TAESD_OK; tx++) {
            const span *a = &ys[ty], *b = &xs[tx];
            crop(src, cin, sh, sw, s->in_f * a->s, s->in_f * b->s, ih, iw, tin);
            r = gpu_graph_run(e, &s->gg, tin, ih, iw, tout, err, errlen);
            if (r != TAESD_OK)
                break;
            /* Keep what this window supplies; output pixels of a partial last latent pixel end at the image. */
            const int y0 = s->out_f * a->c, y1 = imin(s->out_f * a->e, dh);
            const int x0 = s->out_f * b->c, x1 = imin(s->out_f * b->e, dw);
            const int oy = s->out_f * a->s, ox = s->out_f * b->s;
            if (y1 - oy > oh || x1 - ox > ow) {
                set_err(err, errlen, "internal error: tile output %dx%d too small", ow, oh);
                r = TAESD_ERROR_SHAPE;
                break;
            }
            paste(tout, cout, oh, ow, y0 - oy, x0 - ox, y1 - y0, x1 - x0, dst, dh, dw, y0, x0);
        }
    }
    free(ys);
    free(xs);
    free(tin);
    free(tout);
    return r;
}

/* With a budget, only the plans this run uses stay on the device (of both parts), so the budget bounds them. */
static void drop_unused(engine *e, tiling *t, gpart part, const layout *lo, int h, int w)
{
    for (int q = 0; q < 2; q++) {
        tpart *tp = &t->p[q];
        if (!tp->full)
            continue;
        const bool cur = tp == part_of(t, part);
        if (cur && !lo->tiled)
            gpu_graph_drop_plans(e, tp->full, h, w);
        else
            gpu_graph_drop_plans(e, tp->full, 0, 0);
        for (int k = 0; k < 2; k++) {
            if (!tp->s[k].on_device)
                continue;
            if (cur && lo->tiled)
                gpu_graph_drop_plans(e, &tp->s[k].gg, lo->ih[k], lo->iw[k]);
            else
                gpu_graph_drop_plans(e, &tp->s[k].gg, 0, 0);
        }
    }
}

taesd_result tiling_plan(engine *e, tiling *t, gpart part, int h, int w, tiling_report *rep, char *err,
                         size_t errlen)
{
    layout lo;
    tpart *tp = part_of(t, part);
    if (!tp->full) {
        set_err(err, errlen, "no such part");
        return TAESD_ERROR_UNSUPPORTED;
    }
    taesd_result r = choose(e, t, part, h, w, &lo, err, errlen);
    if (r == TAESD_OK)
        report(tp, &lo, rep);
    return r;
}

taesd_result tiling_run(engine *e, tiling *t, gpart part, const float *in, int h, int w, float *out,
                        tiling_report *rep, char *err, size_t errlen)
{
    layout lo;
    tpart *tp = part_of(t, part);
    if (!tp->full) {
        set_err(err, errlen, "no such part");
        return TAESD_ERROR_UNSUPPORTED;
    }
    taesd_result r = choose(e, t, part, h, w, &lo, err, errlen);
    if (r != TAESD_OK)
        return r;
    report(tp, &lo, rep);
    if (t->max_memory)
        drop_unused(e, t, part, &lo, h, w);
    if (!lo.tiled)
        return gpu_graph_run(e, tp->full, in, h, w, out, err, errlen);

    int oh, ow;
    graph_output_size(tp->full->g, h, w, &oh, &ow);
    const int mc = tp->s[0].g.out_channels;
    float *mid = malloc(sizeof(float) * (size_t)mc * (size_t)lo.lh * (size_t)lo.lw);
    if (!mid) {
        set_err(err, errlen, "out of host memory for a %dx%dx%d intermediate", mc, lo.lh, lo.lw);
        return TAESD_ERROR_OUT_OF_MEMORY;
    }
    r = run_side(e, t, tp, 0, &lo, in, h, w, mid, lo.lh, lo.lw, err, errlen);
    if (r == TAESD_OK)
        r = run_side(e, t, tp, 1, &lo, mid, lo.lh, lo.lw, out, oh, ow, err, errlen);
    free(mid);
    return r;
}
