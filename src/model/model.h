/* model.h — from a tensor table to TAESD graphs: key schemes, variant detection, graph builders. Pure C. */
#ifndef TAESD_MODEL_MODEL_H
#define TAESD_MODEL_MODEL_H

#include <stdbool.h>
#include <stddef.h>

#include "../io/tensors.h"
#include "graph.h"

typedef enum model_variant {
    MV_AUTO = 0, MV_TAESD = 1, MV_TAESD3 = 2, MV_TAEF2 = 3, MV_TAESANA = 4   /* = taesd_variant */
} model_variant;

typedef enum key_scheme { KS_SEQUENTIAL = 0, KS_DIFFUSERS = 1, KS_COMFYUI = 2 } key_scheme;

typedef struct model_weights {
    model_variant variant;
    int latent_channels;
    int scale;                       /* 8, or 32 for taesana */
    bool has_gn;                     /* GroupNorm branch in the lowest-res Blocks */
    graph *encoder;                  /* NULL if the file(s) hold no encoder */
    graph *decoder;                  /* NULL if the file(s) hold no decoder */
    key_scheme scheme;
    tt_dtype dtype;                  /* of the (first) file */
    bool has_vae_scale;
    float vae_scale, vae_shift;      /* ComfyUI combined files; else 1, 0 */
} model_weights;

/* Builds encoder and/or decoder graphs from one or two tensor tables (t2 may be NULL). Parts are recognised by
 * their keys and shapes; `force` (MV_AUTO: detect) overrides the variant. Every tensor a part needs must be present
 * with the right shape, and no unknown tensor may be present. Returns 0, or non-zero with one line in err. */
int model_build(const tt_table *t1, const tt_table *t2, model_variant force, model_weights *out, char *err,
                size_t errlen);
void model_free(model_weights *m);

const char *model_variant_name(model_variant v);
const char *key_scheme_name(key_scheme k);

#endif
