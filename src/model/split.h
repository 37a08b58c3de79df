/* split.h — cutting a graph at its latent-resolution stage for exact tiling (src/run/tiling.c), and the receptive
 * field of a part, derived from its ops. Pure C, no Vulkan. */
#ifndef TAESD_MODEL_SPLIT_H
#define TAESD_MODEL_SPLIT_H

#include <stdbool.h>
#include <stddef.h>

#include "graph.h"

/* Op index where the latent-resolution stage meets the rest: decoder, the first upsampling conv (ops before it run
 * at the latent's resolution); encoder, the op after the last stride-2 conv. -1 if the graph has no such boundary. */
int graph_stage_cut(const graph *g);

/* Copies ops [begin, end) of g, with the params they use, into *out (a fresh graph: graph_free it). At an inner
 * cut the buffer live there becomes the planar float32 GBUF_INPUT / GBUF_OUTPUT of the new graph. Where the second
 * part reads it other than as a conv input (a Block's skip), or where copy_in is set, an identity 1x1 conv first
 * copies it into the activation buffer it had: in fp16 that store rounds the values exactly as the whole graph's did.
 * Returns 0, or -1 with a message. */
int graph_extract(const graph *g, int begin, int end, bool copy_in, graph *out, char *err, size_t errlen);

/* Resolution change of a graph: its output is `up` times (decoder) or 1/`down` times (encoder) its input size;
 * the other is 1. Returns 0, or -1 where it both up- and downsamples. */
int graph_resample(const graph *g, int *up, int *down);

/* Halo for tiling: how far, in pixels of the coarser of input and output, an output pixel's receptive field reaches
 * beyond that pixel's own footprint (rounded up). A tile computed over a window grown by the halo on each side is
 * exact in its interior. -1 if an op needs the whole image (GroupNorm statistics) or the graph cannot be tiled. */
int graph_halo(const graph *g);

#endif
