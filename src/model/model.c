/* model.c — from tensor tables to TAESD graphs.
 *
 * Each variant's encoder and decoder is written once below as a layer template in PyTorch Sequential order
 * (madebyollin/taesd taesd.py). A key scheme maps (Sequential index, suffix) to the name in the file; the builder
 * walks the template, checks every tensor's shape, widens it to float32 and emits the fused ops of graph.h.
 * Every tensor of a table must be consumed by some part (or be one of the ComfyUI scalars). */
#include "model.h"
#include "../io/ioutil.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- layer templates */

typedef enum lkind { LK_CLAMP, LK_CONV, LK_RELU, LK_BLOCK, LK_UP } lkind;

typedef struct ltmpl {
    lkind kind;
    int cin, cout;   /* CONV; BLOCK: cin = cout = width */
    int stride;      /* CONV */
    bool bias;       /* CONV */
    bool pool;       /* BLOCK: GroupNorm branch (taef2) */
} ltmpl;

#define MAX_LAYERS 40

typedef struct tmpl {
    ltmpl l[MAX_LAYERS];
    int n;
} tmpl;

static void t_add(tmpl *t, lkind k, int cin, int cout, int stride, bool bias, bool pool)
{
    t->l[t->n++] = (ltmpl){k, cin, cout, stride, bias, pool};
}
static void t_clamp(tmpl *t) { t_add(t, LK_CLAMP, 0, 0, 1, false, false); }
static void t_relu(tmpl *t) { t_add(t, LK_RELU, 0, 0, 1, false, false); }
static void t_up(tmpl *t) { t_add(t, LK_UP, 0, 0, 1, false, false); }
static void t_conv(tmpl *t, int cin, int cout, int stride, bool bias) { t_add(t, LK_CONV, cin, cout, stride, bias, false); }
static void t_blocks(tmpl *t, int n, int ch, bool pool)
{
    for (int i = 0; i < n; i++)
        t_add(t, LK_BLOCK, ch, ch, 1, false, pool);
}

/* Sequential index = position in the template. */
static void make_template(model_variant v, gpart part, int L, tmpl *t)
{
    t->n = 0;
    bool pool = v == MV_TAEF2;
    if (v == MV_TAESANA) {
        if (part == GPART_ENCODER) {
            t_conv(t, 3, 32, 2, true);    /* 0 */
            t_relu(t);                    /* 1 */
            t_conv(t, 32, 64, 2, true);   /* 2 */
            t_relu(t);                    /* 3 */
            t_blocks(t, 1, 64, false);    /* 4 */
            t_conv(t, 64, 64, 2, false);  /* 5 */
            t_blocks(t, 3, 64, false);    /* 6-8 */
            t_conv(t, 64, 64, 2, false);  /* 9 */
            t_blocks(t, 3, 64, false);    /* 10-12 */
            t_conv(t, 64, 64, 2, false);  /* 13 */
            t_blocks(t, 3, 64, false);    /* 14-16 */
            t_conv(t, 64, L, 1, true);    /* 17 */
        } else {
            t_clamp(t);                   /* 0 */
            t_conv(t, L, 256, 1, true);   /* 1 */
            t_relu(t);                    /* 2 */
            t_blocks(t, 3, 256, false);   /* 3-5 */
            t_up(t);                      /* 6 */
            t_conv(t, 256, 128, 1, false);/* 7 */
            t_blocks(t, 3, 128, false);   /* 8-10 */
            t_up(t);                      /* 11 */
            t_conv(t, 128, 64, 1, false); /* 12 */
            t_blocks(t, 3, 64, false);    /* 13-15 */
            t_up(t);                      /* 16 */
            t_conv(t, 64, 64, 1, false);  /* 17 */
            t_blocks(t, 3, 64, false);    /* 18-20 */
            t_up(t);                      /* 21 */
            t_conv(t, 64, 64, 1, false);  /* 22 */
            t_blocks(t, 3, 64, false);    /* 23-25 */
            t_up(t);                      /* 26 */
            t_conv(t, 64, 64, 1, false);  /* 27 */
            t_blocks(t, 1, 64, false);    /* 28 */
            t_conv(t, 64, 3, 1, true);    /* 29 */
        }
        return;
    }
    if (part == GPART_ENCODER) {
        t_conv(t, 3, 64, 1, true);        /* 0 */
        t_blocks(t, 1, 64, false);        /* 1 */
        t_conv(t, 64, 64, 2, false);      /* 2 */
        t_blocks(t, 3, 64, false);        /* 3-5 */
        t_conv(t, 64, 64, 2, false);      /* 6 */
        t_blocks(t, 3, 64, false);        /* 7-9 */
        t_conv(t, 64, 64, 2, false);      /* 10 */
        t_blocks(t, 3, 64, pool);         /* 11-13 */
        t_conv(t, 64, L, 1, true);        /* 14 */
    } else {
        t_clamp(t);                       /* 0 */
        t_conv(t, L, 64, 1, true);        /* 1 */
        t_relu(t);                        /* 2 */
        t_blocks(t, 3, 64, pool);         /* 3-5 */
        t_up(t);                          /* 6 */
        t_conv(t, 64, 64, 1, false);      /* 7 */
        t_blocks(t, 3, 64, false);        /* 8-10 */
        t_up(t);                          /* 11 */
        t_conv(t, 64, 64, 1, false);      /* 12 */
        t_blocks(t, 3, 64, false);        /* 13-15 */
        t_up(t);                          /* 16 */
        t_conv(t, 64, 64, 1, false);      /* 17 */
        t_blocks(t, 1, 64, false);        /* 18 */
        t_conv(t, 64, 3, 1, true);        /* 19 */
    }
}

#define GN_WIDTH 256
#define GN_GROUPS 4
#define GN_EPS 1e-5f

static int variant_latents(model_variant v)
{
    switch (v) {
    case MV_TAESD: return 4;
    case MV_TAESD3: return 16;
    case MV_TAEF2: return 32;
    case MV_TAESANA: return 32;
    default: return 0;
    }
}

/* ---------------------------------------------------------------- names and errors */

const char *model_variant_name(model_variant v)
{
    switch (v) {
    case MV_AUTO: return "auto";
    case MV_TAESD: return "taesd";
    case MV_TAESD3: return "taesd3";
    case MV_TAEF2: return "taef2";
    case MV_TAESANA: return "taesana";
    default: return "unknown";
    }
}

const char *key_scheme_name(key_scheme k)
{
    switch (k) {
    case KS_SEQUENTIAL: return "sequential";
    case KS_DIFFUSERS: return "diffusers";
    case KS_COMFYUI: return "comfyui";
    default: return "unknown";
    }
}


/* ---------------------------------------------------------------- one table, one part */

typedef struct table_ctx {
    const tt_table *t;
    key_scheme ks;
    bool has_enc, has_dec;
    bool *used;          /* per tensor */
    const char *where;   /* "" or " (second file)" */
} table_ctx;

static int find_index(const tt_table *t, const char *name)
{
    for (int i = 0; i < t->count; i++)
        if (strcmp(t->tensors[i].name, name) == 0)
            return i;
    return -1;
}

static bool starts_with(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

static const char *part_prefix(key_scheme ks, gpart part)
{
    switch (ks) {
    case KS_DIFFUSERS: return part == GPART_ENCODER ? "encoder.layers." : "decoder.layers.";
    case KS_COMFYUI: return part == GPART_ENCODER ? "taesd_encoder." : "taesd_decoder.";
    default: return "";
    }
}

/* File key of Sequential layer `seq`, tensor `suffix` ("weight", "conv.0.bias", ...). */
static void key_of(key_scheme ks, gpart part, int seq, const char *suffix, char *out, size_t n)
{
    int idx = (ks == KS_DIFFUSERS && part == GPART_DECODER) ? seq - 1 : seq;
    snprintf(out, n, "%s%d.%s", part_prefix(ks, part), idx, suffix);
}

/* Which scheme a table uses and which parts it holds. */
static void detect_layout(table_ctx *c)
{
    const tt_table *t = c->t;
    bool comfy = false, diff = false;
    for (int i = 0; i < t->count; i++) {
        const char *nm = t->tensors[i].name;
        if (starts_with(nm, "taesd_encoder.") || starts_with(nm, "taesd_decoder."))
            comfy = true;
        if (starts_with(nm, "encoder.layers.") || starts_with(nm, "decoder.layers."))
            diff = true;
    }
    c->has_enc = c->has_dec = false;
    if (comfy || diff) {
        c->ks = comfy ? KS_COMFYUI : KS_DIFFUSERS;
        const char *pe = part_prefix(c->ks, GPART_ENCODER), *pd = part_prefix(c->ks, GPART_DECODER);
        for (int i = 0; i < t->count; i++) {
            if (starts_with(t->tensors[i].name, pe))
                c->has_enc = true;
            if (starts_with(t->tensors[i].name, pd))
                c->has_dec = true;
        }
    } else {
        /* Sequential: one part per file. The encoder starts with conv 0 (3 input channels); the decoder's
         * first conv is 1 (index 0 is the Clamp). */
        c->ks = KS_SEQUENTIAL;
        if (find_index(t, "0.weight") >= 0)
            c->has_enc = true;
        else if (find_index(t, "1.weight") >= 0)
            c->has_dec = true;
    }
}

/* True if the part has any "<index>.pool.*" tensor. */
static bool part_has_pool(const table_ctx *c, gpart part)
{
    const char *pre = part_prefix(c->ks, part);
    for (int i = 0; i < c->t->count; i++) {
        const char *nm = c->t->tensors[i].name;
        if (!starts_with(nm, pre))
            continue;
        nm += strlen(pre);
        if (!isdigit((unsigned char)*nm))
            continue;
        while (isdigit((unsigned char)*nm))
            nm++;
        if (starts_with(nm, ".pool."))
            return true;
    }
    return false;
}

static int conv_weight_shape(const table_ctx *c, gpart part, int seq, const tt_tensor **out, char *err, size_t errlen)
{
    char key[TT_NAME_MAX + 32];
    key_of(c->ks, part, seq, "weight", key, sizeof key);
    int i = find_index(c->t, key);
    if (i < 0)
        return io_err(err, errlen, "missing tensor '%s'%s", key, c->where);
    const tt_tensor *w = &c->t->tensors[i];
    if (w->ndim != 4) {
        char s[96];
        tt_format_shape(s, sizeof s, w->ndim, w->shape);
        return io_err(err, errlen, "shape mismatch: %s is %s, expected a 4-d conv weight%s", key, s, c->where);
    }
    *out = w;
    return 0;
}

/* Variant and latent channel count of one part, from names and shapes. */
static int detect_variant(const table_ctx *c, gpart part, model_variant *v, int *L, char *err, size_t errlen)
{
    const tt_tensor *w;
    bool pool = part_has_pool(c, part);
    bool sana;
    if (part == GPART_DECODER) {
        if (conv_weight_shape(c, part, 1, &w, err, errlen))
            return -1;
        sana = w->shape[0] == 256;
        *L = (int)(w->shape[1] > 0 && w->shape[1] < 1 << 20 ? w->shape[1] : -1);
    } else {
        if (conv_weight_shape(c, part, 0, &w, err, errlen))
            return -1;
        sana = w->shape[0] == 32;
        if (conv_weight_shape(c, part, sana ? 17 : 14, &w, err, errlen))
            return -1;
        *L = (int)(w->shape[0] > 0 && w->shape[0] < 1 << 20 ? w->shape[0] : -1);
    }
    if (sana)
        *v = MV_TAESANA;
    else if (pool)
        *v = MV_TAEF2;
    else if (*L == 4)
        *v = MV_TAESD;
    else if (*L == 16)
        *v = MV_TAESD3;
    else
        return io_err(err, errlen, "unsupported latent channel count %d%s", *L, c->where);
    if (*L != variant_latents(*v))
        return io_err(err, errlen, "unsupported latent channel count %d for %s%s", *L, model_variant_name(*v), c->where);
    return 0;
}

typedef struct builder {
    table_ctx *c;
    gpart part;
    graph *g;
    const char *forced;  /* "" or " for variant X" */
    char *err;
    size_t errlen;
} builder;

/* Looks up the tensor for (seq, suffix), checks its shape, adds it as a float32 param. Returns the param index. */
static int take(builder *b, int seq, const char *suffix, int ndim, int d0, int d1, int d2, int d3)
{
    char key[TT_NAME_MAX + 32], pname[64];
    key_of(b->c->ks, b->part, seq, suffix, key, sizeof key);
    snprintf(pname, sizeof pname, "%d.%s", seq, suffix);
    int64_t want[4] = {d0, d1, d2, d3};
    int i = find_index(b->c->t, key);
    if (i < 0)
        return io_err(b->err, b->errlen, "missing tensor '%s'%s%s", key, b->forced, b->c->where);
    const tt_tensor *t = &b->c->t->tensors[i];
    bool ok = t->ndim == ndim;
    for (int k = 0; ok && k < ndim; k++)
        ok = t->shape[k] == want[k];
    if (!ok) {
        char s1[96], s2[96];
        tt_format_shape(s1, sizeof s1, t->ndim, t->shape);
        tt_format_shape(s2, sizeof s2, ndim, want);
        return io_err(b->err, b->errlen, "shape mismatch: %s is %s, expected %s%s%s", key, s1, s2, b->forced,
                    b->c->where);
    }
    if (b->c->used[i])
        return io_err(b->err, b->errlen, "tensor '%s' used twice%s", key, b->c->where);
    b->c->used[i] = true;
    int shape[4] = {d0, d1, d2, d3};
    int p = graph_add_param(b->g, pname, ndim, shape, NULL);
    if (p < 0)
        return io_err(b->err, b->errlen, "out of memory");
    float *dst = b->g->params[p].data;
    for (int64_t k = 0; k < t->numel; k++)
        dst[k] = tt_get(t, k);
    return p;
}

static gbuf pick(gbuf avoid1, gbuf avoid2)
{
    static const gbuf rot[3] = {GBUF_A, GBUF_B, GBUF_C};
    for (int i = 0; i < 3; i++)
        if (rot[i] != avoid1 && rot[i] != avoid2)
            return rot[i];
    return GBUF_NONE;   /* unreachable */
}

static gop *new_op(builder *b, gop_kind kind, const char *name)
{
    gop *o = graph_add_op(b->g, kind);
    if (!o) {
        io_err(b->err, b->errlen, "out of memory");
        return NULL;
    }
    snprintf(o->name, sizeof o->name, "%s", name);
    return o;
}

static gop *conv3(builder *b, const char *name, gbuf src, gbuf dst, gbuf skip, int cin, int cout, int stride,
                  bool relu, int w, int bias)
{
    gop *o = new_op(b, GOP_CONV3X3, name);
    if (!o)
        return NULL;
    o->src = src;
    o->dst = dst;
    o->skip = skip;
    o->cin = cin;
    o->cout = cout;
    o->stride = stride;
    o->relu = relu;
    o->weight = w;
    o->bias = bias;
    return o;
}

/* Emits a Block at buffer x; returns the buffer holding its result, or GBUF_NONE on error. */
static gbuf emit_block(builder *b, int seq, const ltmpl *l, gbuf x)
{
    char key[TT_NAME_MAX + 32], nm[48];
    key_of(b->c->ks, b->part, seq, "skip.weight", key, sizeof key);
    if (find_index(b->c->t, key) >= 0) {
        io_err(b->err, b->errlen, "unsupported tensor '%s' (a Block with a skip conv)%s", key, b->c->where);
        return GBUF_NONE;
    }
    int ch = l->cin;
    if (l->pool) {
        int w0 = take(b, seq, "pool.0.weight", 4, GN_WIDTH, ch, 1, 1);
        if (w0 < 0)
            return GBUF_NONE;
        int gamma = take(b, seq, "pool.1.weight", 1, GN_WIDTH, 0, 0, 0);
        if (gamma < 0)
            return GBUF_NONE;
        int beta = take(b, seq, "pool.1.bias", 1, GN_WIDTH, 0, 0, 0);
        if (beta < 0)
            return GBUF_NONE;
        int w3 = take(b, seq, "pool.3.weight", 4, ch, GN_WIDTH, 1, 1);
        if (w3 < 0)
            return GBUF_NONE;
        snprintf(nm, sizeof nm, "%d.pool.0", seq);
        gop *o = new_op(b, GOP_CONV1X1, nm);
        if (!o)
            return GBUF_NONE;
        o->src = x;
        o->dst = GBUF_GN_T;
        o->cin = ch;
        o->cout = GN_WIDTH;
        o->weight = w0;
        snprintf(nm, sizeof nm, "%d.pool.1", seq);
        if (!(o = new_op(b, GOP_GN_STATS, nm)))
            return GBUF_NONE;
        o->src = GBUF_GN_T;
        o->dst = GBUF_GN_STATS;
        o->cin = o->cout = GN_WIDTH;
        o->groups = GN_GROUPS;
        o->eps = GN_EPS;
        snprintf(nm, sizeof nm, "%d.pool.3", seq);
        if (!(o = new_op(b, GOP_GN_APPLY, nm)))
            return GBUF_NONE;
        gbuf x2 = pick(x, GBUF_NONE);
        o->src = GBUF_GN_T;
        o->aux = GBUF_GN_STATS;
        o->skip = x;
        o->dst = x2;
        o->cin = GN_WIDTH;
        o->cout = ch;
        o->weight = w3;
        o->gamma = gamma;
        o->beta = beta;
        o->groups = GN_GROUPS;
        o->eps = GN_EPS;
        x = x2;   /* x + pool(x) is both the conv input and the skip */
    }
    static const char *const sfx[3][3] = {{"conv.0.weight", "conv.0.bias", "conv.0"},
                                          {"conv.2.weight", "conv.2.bias", "conv.2"},
                                          {"conv.4.weight", "conv.4.bias", "conv.4"}};
    int w[3], bias[3];
    for (int k = 0; k < 3; k++) {
        if ((w[k] = take(b, seq, sfx[k][0], 4, ch, ch, 3, 3)) < 0)
            return GBUF_NONE;
        if ((bias[k] = take(b, seq, sfx[k][1], 1, ch, 0, 0, 0)) < 0)
            return GBUF_NONE;
    }
    gbuf y = pick(x, GBUF_NONE), z = pick(x, y);
    snprintf(nm, sizeof nm, "%d.%s", seq, sfx[0][2]);
    if (!conv3(b, nm, x, y, GBUF_NONE, ch, ch, 1, true, w[0], bias[0]))
        return GBUF_NONE;
    snprintf(nm, sizeof nm, "%d.%s", seq, sfx[1][2]);
    if (!conv3(b, nm, y, z, GBUF_NONE, ch, ch, 1, true, w[1], bias[1]))
        return GBUF_NONE;
    snprintf(nm, sizeof nm, "%d.%s", seq, sfx[2][2]);
    if (!conv3(b, nm, z, y, x, ch, ch, 1, true, w[2], bias[2]))
        return GBUF_NONE;
    return y;
}

static int build_part(table_ctx *c, gpart part, model_variant v, int L, bool forced, graph **out, char *err,
                      size_t errlen)
{
    tmpl t;
    make_template(v, part, L, &t);
    graph *g = calloc(1, sizeof *g);
    if (!g)
        return io_err(err, errlen, "out of memory");
    char forced_s[48] = "";
    if (forced)
        snprintf(forced_s, sizeof forced_s, " for variant %s", model_variant_name(v));
    builder b = {c, part, g, forced_s, err, errlen};
    g->part = part;
    g->in_channels = part == GPART_DECODER ? L : 3;
    g->out_channels = part == GPART_DECODER ? 3 : L;
    g->scale = v == MV_TAESANA ? 32 : 8;

    gbuf cur = GBUF_INPUT;
    bool tanh_next = false, up_next = false;
    int last_conv = -1;   /* op index of the latest conv (for a following ReLU) */
    for (int i = 0; i < t.n; i++) {
        const ltmpl *l = &t.l[i];
        char nm[48];
        snprintf(nm, sizeof nm, "%d", i);
        switch (l->kind) {
        case LK_CLAMP: tanh_next = true; break;
        case LK_UP: up_next = true; break;
        case LK_RELU:
            if (last_conv < 0 || last_conv != g->nops - 1) {
                io_err(err, errlen, "internal error: ReLU %d does not follow a conv", i);
                goto fail;
            }
            g->ops[last_conv].relu = true;
            break;
        case LK_CONV: {
            int w = take(&b, i, "weight", 4, l->cout, l->cin, 3, 3);
            if (w < 0)
                goto fail;
            int bias = -1;
            if (l->bias && (bias = take(&b, i, "bias", 1, l->cout, 0, 0, 0)) < 0)
                goto fail;
            gbuf dst = pick(cur, GBUF_NONE);
            gop *o = conv3(&b, nm, cur, dst, GBUF_NONE, l->cin, l->cout, l->stride, false, w, bias);
            if (!o)
                goto fail;
            o->tanh_clamp = tanh_next;
            o->upsample = up_next;
            tanh_next = up_next = false;
            last_conv = g->nops - 1;
            cur = dst;
            break;
        }
        case LK_BLOCK:
            if (tanh_next || up_next) {
                io_err(err, errlen, "internal error: Block %d after a Clamp or Upsample", i);
                goto fail;
            }
            if ((cur = emit_block(&b, i, l, cur)) == GBUF_NONE)
                goto fail;
            break;
        }
    }
    if (g->nops < 1) {
        io_err(err, errlen, "internal error: empty graph");
        goto fail;
    }
    g->ops[g->nops - 1].dst = GBUF_OUTPUT;
    graph_finish(g);
    *out = g;
    return 0;
fail:
    graph_free(g);
    free(g);
    return -1;
}

/* ---------------------------------------------------------------- whole model */

static int read_scalar(table_ctx *c, const char *name, bool *found, float *v, char *err, size_t errlen)
{
    int i = find_index(c->t, name);
    if (i < 0)
        return 0;
    const tt_tensor *t = &c->t->tensors[i];
    if (t->numel != 1 || t->ndim > 1) {
        char s[96];
        tt_format_shape(s, sizeof s, t->ndim, t->shape);
        return io_err(err, errlen, "shape mismatch: %s is %s, expected []%s", name, s, c->where);
    }
    c->used[i] = true;
    *found = true;
    *v = tt_get(t, 0);
    return 0;
}

void model_free(model_weights *m)
{
    if (!m)
        return;
    if (m->encoder) {
        graph_free(m->encoder);
        free(m->encoder);
    }
    if (m->decoder) {
        graph_free(m->decoder);
        free(m->decoder);
    }
    memset(m, 0, sizeof *m);
    m->vae_scale = 1.0f;
}

static const char *NO_PARTS = "no TAESD encoder or decoder tensors found (keys like '1.weight', "
                              "'decoder.layers.0.weight', 'taesd_decoder.1.weight')";

int model_build(const tt_table *t1, const tt_table *t2, model_variant force, model_weights *out, char *err,
                size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!out)
        return io_err(err, errlen, "invalid argument");
    memset(out, 0, sizeof *out);
    out->vae_scale = 1.0f;
    if (!t1)
        return io_err(err, errlen, "invalid argument");
    if (force < MV_AUTO || force > MV_TAESANA)
        return io_err(err, errlen, "unknown variant %d", (int)force);

    table_ctx c[2];
    memset(c, 0, sizeof c);
    int nt = t2 ? 2 : 1;
    int rc = -1;
    c[0].t = t1;
    c[0].where = "";
    c[1].t = t2;
    c[1].where = " (second file)";
    for (int k = 0; k < nt; k++) {
        c[k].used = calloc((size_t)(c[k].t->count > 0 ? c[k].t->count : 1), sizeof(bool));
        if (!c[k].used) {
            io_err(err, errlen, "out of memory");
            goto done;
        }
        detect_layout(&c[k]);
        if (!c[k].has_enc && !c[k].has_dec) {
            io_err(err, errlen, "%s%s", NO_PARTS, c[k].where);
            goto done;
        }
    }
    if (nt == 2 && c[0].has_enc && c[1].has_enc) {
        io_err(err, errlen, "both files hold a TAESD encoder");
        goto done;
    }
    if (nt == 2 && c[0].has_dec && c[1].has_dec) {
        io_err(err, errlen, "both files hold a TAESD decoder");
        goto done;
    }

    /* Variant of each part, then agreement. */
    model_variant pv[2] = {MV_AUTO, MV_AUTO};   /* [0] encoder, [1] decoder */
    int pl[2] = {0, 0};
    table_ctx *pc[2] = {NULL, NULL};
    for (int k = 0; k < nt; k++) {
        if (c[k].has_enc)
            pc[0] = &c[k];
        if (c[k].has_dec)
            pc[1] = &c[k];
    }
    for (int p = 0; p < 2; p++) {
        if (!pc[p])
            continue;
        gpart part = p == 0 ? GPART_ENCODER : GPART_DECODER;
        if (force != MV_AUTO) {
            pv[p] = force;
            pl[p] = variant_latents(force);
        } else if (detect_variant(pc[p], part, &pv[p], &pl[p], err, errlen)) {
            goto done;
        }
    }
    if (pc[0] && pc[1] && (pv[0] != pv[1] || pl[0] != pl[1])) {
        io_err(err, errlen, "encoder and decoder disagree: encoder is %s (%d latent channels), decoder is %s (%d latent "
             "channels)", model_variant_name(pv[0]), pl[0], model_variant_name(pv[1]), pl[1]);
        goto done;
    }
    for (int p = 0; p < 2; p++) {
        if (!pc[p])
            continue;
        gpart part = p == 0 ? GPART_ENCODER : GPART_DECODER;
        if (build_part(pc[p], part, pv[p], pl[p], force != MV_AUTO, p == 0 ? &out->encoder : &out->decoder, err,
                       errlen))
            goto done;
    }

    /* ComfyUI scalars (accepted in any file), then nothing may be left over. */
    for (int k = 0; k < nt; k++) {
        float v;
        bool found = false;
        if (read_scalar(&c[k], "vae_scale", &found, &v, err, errlen))
            goto done;
        if (found) {
            out->has_vae_scale = true;
            out->vae_scale = v;
        }
        found = false;
        if (read_scalar(&c[k], "vae_shift", &found, &v, err, errlen))
            goto done;
        if (found) {
            out->has_vae_scale = true;
            out->vae_shift = v;
        }
        for (int i = 0; i < c[k].t->count; i++) {
            if (!c[k].used[i]) {
                const char *nm = c[k].t->tensors[i].name;   /* from the file: quoted (no control characters) */
                char q[96];
                io_err(err, errlen, "unexpected tensor '%s'%s", io_quote(q, sizeof q, nm, strlen(nm)), c[k].where);
                goto done;
            }
        }
    }

    out->variant = pc[0] ? pv[0] : pv[1];
    out->latent_channels = pc[0] ? pl[0] : pl[1];
    out->scale = out->variant == MV_TAESANA ? 32 : 8;
    out->has_gn = out->variant == MV_TAEF2;
    out->scheme = c[0].ks;
    out->dtype = t1->count > 0 ? t1->tensors[0].dtype : TT_F32;
    rc = 0;
done:
    for (int k = 0; k < nt; k++)
        free(c[k].used);
    if (rc)
        model_free(out);
    return rc;
}
