/* api_internal.h — what api.c shares with the other files of the public API (cmd.c): the objects behind the
 * opaque handles stay defined in api.c; these accessors reach into them. */
#ifndef TAESD_RUN_API_INTERNAL_H
#define TAESD_RUN_API_INTERNAL_H

#include "engine.h"

/* Stable message ids passed to the log callback (documented in docs/api.md). */
enum {
    MSG_CONTEXT_CREATE = 1,
    MSG_MODEL_LOAD = 2,
    MSG_RUN = 3,
    MSG_INVALID_ARGUMENT = 4,
    MSG_CMD = 5,
    MSG_TILING = 6,          /* INFO: a run went in tiles (how many, their size) */
};

engine *api_model_engine(taesd_model *m);
/* The model's decoder on the device; NULL if the weights hold none. */
gpu_graph *api_model_decoder(taesd_model *m);
/* Sets the context's last error and sends it to the log callback. */
void api_model_error(taesd_model *m, int id, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif
