/* graph.h — a TAESD network described once, as data: a short list of fused ops over a few buffers.
 * The Vulkan recorder, the plain C reference, FLOP accounting and `taesd info` all read this list.
 * Pure C, no Vulkan. */
#ifndef TAESD_MODEL_GRAPH_H
#define TAESD_MODEL_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../io/tensors.h"

/* Buffers an op reads or writes. INPUT and OUTPUT are the caller's planar float32 CHW arrays; every
 * other buffer holds activations in the engine's own layout. A, B, C rotate (ping-pong plus the skip). */
typedef enum gbuf {
    GBUF_NONE = -1,
    GBUF_INPUT = 0,
    GBUF_OUTPUT,
    GBUF_A,
    GBUF_B,
    GBUF_C,
    GBUF_GN_T,        /* the GroupNorm branch's wide (256-channel) activations */
    GBUF_GN_STATS,    /* per-group mean and 1/std */
    GBUF_COUNT
} gbuf;

typedef enum gop_kind {
    /* dst = act(conv3x3(pre(src)) [+ bias] [+ skip]); pad 1; stride 1 or 2 (output ceil(H/2)).
     * pre: optional tanh(x/3)*3 clamp, then optional nearest 2x upsample (folded into the input indexing).
     * act: ReLU when relu is set (applied after the residual add). */
    GOP_CONV3X3 = 0,
    /* dst = conv1x1(src), no bias (GroupNorm branch: 64 -> 256). */
    GOP_CONV1X1,
    /* dst[g] = (mean, 1/sqrt(var + eps)) over all channels of group g and all pixels of src (a global reduction). */
    GOP_GN_STATS,
    /* dst = skip + conv1x1(relu(gamma * (src - mean) * rstd + beta)), stats from aux (GroupNorm branch: 256 -> 64). */
    GOP_GN_APPLY,
    GOP_KIND_COUNT
} gop_kind;

typedef struct gop {
    gop_kind kind;
    int cin, cout;
    int stride;          /* 1 or 2 (conv3x3) */
    bool upsample;       /* nearest 2x upsample of the input (conv3x3) */
    bool tanh_clamp;     /* tanh(x/3)*3 on the input (conv3x3) */
    bool relu;
    gbuf src, dst, skip, aux;
    int weight, bias;    /* indices into graph.params, -1 if none */
    int gamma, beta;     /* GN_APPLY: affine parameters; GN_STATS: unused */
    int groups;          /* GN: number of groups */
    float eps;
    char name[48];       /* where it came from, e.g. "3.conv.0" (Sequential index) */
} gop;

/* A parameter tensor in PyTorch layout ([Cout][Cin][kh][kw] for convs), widened to float32. */
typedef struct gparam {
    char name[64];
    int ndim;
    int shape[4];
    int64_t numel;
    float *data;         /* owned */
} gparam;

typedef enum gpart { GPART_ENCODER = 1, GPART_DECODER = 2 } gpart;

typedef struct graph {
    gpart part;
    int in_channels, out_channels;
    int scale;            /* 8 or 32: image pixels per latent pixel */
    int max_channels;     /* widest activation held in A/B/C */
    int gn_channels;      /* width of GBUF_GN_T (0: no GroupNorm branch) */
    int gn_groups;
    gop *ops;
    int nops;
    gparam *params;
    int nparams;
    int64_t param_count;  /* learned scalars */
} graph;

void graph_free(graph *g);

/* Spatial size after op i for an input of h×w at the graph's input. dims[i] is the output of op i. */
typedef struct gdims { int h, w; } gdims;
/* Fills in_dims/out_dims (arrays of g->nops) for a graph input of h×w. Returns 0, or -1 if a size is < 1
 * or overflows. */
int graph_dims(const graph *g, int h, int w, gdims *in_dims, gdims *out_dims);
/* Output size of the whole graph. */
int graph_output_size(const graph *g, int h, int w, int *oh, int *ow);
/* Multiply-adds ×2 for one run at h×w. */
double graph_flops(const graph *g, int h, int w);
/* FLOPs of one op given its input and output sizes (from graph_dims). */
double graph_op_flops(const gop *op, gdims in, gdims out);

/* Builds a graph by hand (tests): add params and ops. Returns the new param index. */
int graph_add_param(graph *g, const char *name, int ndim, const int *shape, const float *data);
gop *graph_add_op(graph *g, gop_kind kind);
/* Recomputes max_channels / gn_channels / param_count from ops and params. */
void graph_finish(graph *g);

#endif
