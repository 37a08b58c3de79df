/* tiling.h — exact tiled decodes and encodes (taesd_model_desc.tile and .max_memory; docs/tiling.md).
 *
 * Each part is cut where its latent-resolution stage meets the rest (graph_stage_cut). Each side runs either whole
 * or in tiles: windows grown by the side's halo (its receptive field, graph_halo) on every side, of which only the
 * interior is kept, so tiles reproduce the untiled result up to float rounding. A side with a global op (taef2's
 * GroupNorm statistics) always runs whole. Between the sides a float32 array at latent resolution lives on the host. */
#ifndef TAESD_RUN_TILING_H
#define TAESD_RUN_TILING_H

#include <stdbool.h>
#include <stdint.h>

#include "engine.h"

typedef struct tiling tiling;

/* What a run did (or would do). */
typedef struct tiling_report {
    bool tiled;
    int tile;               /* interior of a tile, in latent pixels */
    int tiles;              /* runs of the higher-resolution side */
    int low_tiles;          /* runs of the latent-resolution side (1: whole) */
    int halo_high, halo_low;/* in latent pixels; halo_low -1: that side runs whole */
    int win_h, win_w;       /* window of the higher-resolution side, in latent pixels */
    uint64_t plan_bytes;    /* device bytes of the plans the run uses (activations and staging) */
} tiling_report;

/* tile, max_memory: as in taesd_model_desc. enc/dec: the model's parts on the device (either may be NULL; kept,
 * not owned). Nothing is built on the device until a run needs tiles. */
taesd_result tiling_create(int tile, uint64_t max_memory, bool fp16, gpu_graph *enc, gpu_graph *dec, tiling **out);
void tiling_destroy(engine *e, tiling *t);

/* Runs the part on a planar float32 input of h×w (the caller has checked channels and size): untiled where the
 * options and the device allow, else in tiles. rep (may be NULL) says which. */
taesd_result tiling_run(engine *e, tiling *t, gpart part, const float *in, int h, int w, float *out,
                        tiling_report *rep, char *err, size_t errlen);
/* How a run at h×w would go, without running or building anything. */
taesd_result tiling_plan(engine *e, tiling *t, gpart part, int h, int w, tiling_report *rep, char *err,
                         size_t errlen);

#endif
