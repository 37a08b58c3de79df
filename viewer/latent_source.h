/* latent_source.h — where taesd-view's latents come from: a stream of .npy arrays (stdin or a named pipe) or a
 * .npy file that is re-read whenever it is replaced. A thread reads and parses; the window thread takes the newest
 * frame (older ones not yet taken are dropped, so a fast producer never waits for the window). A malformed frame is
 * reported and skipped; the stream goes on (resynchronised on the next "\x93NUMPY" magic). */
#ifndef TAESD_VIEW_LATENT_SOURCE_H
#define TAESD_VIEW_LATENT_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "taesd.h"

typedef enum latent_source_kind { SOURCE_STDIN, SOURCE_FIFO, SOURCE_WATCH } latent_source_kind;

typedef struct latent_source_desc {
    latent_source_kind kind;
    const char *path;                  /* FIFO / WATCH: the path; kept by the source until it is destroyed */
    taesd_latent_format format;        /* layout of the arrays; converted to diffusion space on the reader thread */
    int packed_h, packed_w;            /* flux1-packed: latent H,W of the token grid (0: a square grid) */
    int channels;                      /* the decoder's latent channels: other counts are reported (0: any) */
    bool reopen_fifo;                  /* FIFO: after a writer closes, wait for the next one (else: end of stream) */
    void (*wake)(void *user);          /* called (on the reader thread) when a frame, an error or the end arrives */
    void *wake_user;
} latent_source_desc;

/* A diffusion-space latent, C×H×W, as float32 or (float16 arrays in diffusion space) IEEE halves. */
typedef struct latent_frame {
    uint64_t index;                    /* 1-based position in the stream (malformed frames count too) */
    int c, h, w;
    bool f16;
    void *data;                        /* c·h·w values; owned, free with latent_frame_free */
} latent_frame;

typedef struct latent_source latent_source;

/* Starts the reader thread. Returns 0, or -1 with one line in err (path missing, not a FIFO, thread failure). */
int latent_source_start(const latent_source_desc *desc, latent_source **out, char *err, size_t errlen);
/* Moves the newest frame not yet taken into *out and returns 1; 0 when there is none. */
int latent_source_take(latent_source *s, latent_frame *out);
/* 1 if a frame is waiting to be taken. */
int latent_source_pending(latent_source *s);
/* 1 while a newer latent may be about to come: one waits to be taken, or the reader is inside a frame or has
 * bytes to read (stdin/FIFO). 0 when it waits for a writer to send the first byte of a frame. */
int latent_source_busy(latent_source *s);
/* The newest error not yet fetched (one line, already printed on stderr by the reader): 1 and copied into buf, or 0. */
int latent_source_error(latent_source *s, char *buf, size_t len);
/* 1 once the stream has ended (stdin/FIFO end of file) and its newest frame has been taken. */
int latent_source_ended(latent_source *s);
/* Frames replaced by a newer one before the window took them. */
uint64_t latent_source_dropped(latent_source *s);
/* Problems reported so far (malformed frames, skipped bytes, read errors). */
uint64_t latent_source_errors(latent_source *s);
/* Stops and joins the reader thread, frees everything (a frame not taken too). NULL is a no-op. */
void latent_source_stop(latent_source *s);

void latent_frame_free(latent_frame *f);

/* Checks one .npy array held in memory (the whole file) and converts it into a diffusion-space frame, as the
 * stream reader does for each array. Returns 0, or -1 with one line in err. For the --watch reader and the tests. */
int latent_frame_from_npy(const uint8_t *bytes, size_t size, taesd_latent_format format, int packed_h, int packed_w,
                          latent_frame *out, char *err, size_t errlen);

#endif
