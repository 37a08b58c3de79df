/* ref.h — the plain C reference: runs a graph op by op on float32 CHW arrays. Slow and obvious on purpose;
 * tests compare every Vulkan kernel with it. */
#ifndef TAESD_REF_REF_H
#define TAESD_REF_REF_H

#include "../model/graph.h"

/* Runs the graph on input (in_channels×h×w CHW float32); writes out (out_channels×oh×ow). Returns 0 or -1 (OOM). */
int ref_run(const graph *g, const float *input, int h, int w, float *output);

#endif
