/* taesd.h — Vulkan compute engine for TAESD, the tiny autoencoder for diffusion latents.
 *
 * Descriptor structs follow "zero means default": memset a desc to 0, set only what you need.
 * Every call that can fail returns a taesd_result; TAESD_OK is 0. Human-readable details (one line, no newline)
 * go to the log callback (if any) and are also kept per context: taesd_context_last_error().
 *
 * Ownership: every object taesd_*_create / taesd_model_load hands out is the caller's, freed by the matching
 * destroy call (which accepts NULL). Models must be destroyed before their context. Pointers passed in (paths,
 * descs, input arrays) are only read during the call, never kept; output arrays are only written during the call.
 *
 * Thread-safety: a context and everything made from it (its models) must be used from one thread at a time.
 * Different contexts are independent (no global state) and may be used from different threads at once. The
 * calls that take no context (taesd_list_devices, taesd_result_string, taesd_variant_name, the taesd_latent_*
 * calls, taesd_query_device_requirements) are thread-safe.
 *
 * Embedding on the application's own VkDevice: include "taesd_vulkan.h" (needs the Vulkan headers) and set
 * taesd_context_desc.host; this header stays free of vulkan.h.
 *
 * Linking: `pkg-config --cflags --libs taesd` (libtaesd.so; `--static` for libtaesd.a).
 */
#ifndef TAESD_H
#define TAESD_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(TAESD_SHARED_BUILD)
#define TAESD_API __declspec(dllexport)
#elif defined(__GNUC__)
#define TAESD_API __attribute__((visibility("default")))
#else
#define TAESD_API
#endif

typedef enum taesd_result {
    TAESD_OK = 0,
    TAESD_ERROR_INVALID_ARGUMENT = 1,  /* a NULL where an object is needed, a bad enum, sizes of 0 */
    TAESD_ERROR_IO = 2,                /* a file could not be opened or read */
    TAESD_ERROR_FORMAT = 3,            /* a file is malformed, truncated, hostile or not a TAESD state dict */
    TAESD_ERROR_UNSUPPORTED = 4,       /* valid input that this build or device cannot run */
    TAESD_ERROR_SHAPE = 5,             /* input shape does not fit the model (channels, size) */
    TAESD_ERROR_NO_DEVICE = 6,         /* no Vulkan loader or no usable device */
    TAESD_ERROR_VULKAN = 7,            /* a Vulkan call failed */
    TAESD_ERROR_OUT_OF_MEMORY = 8,     /* host or device memory exhausted, or a buffer above device limits */
    TAESD_ERROR_NOT_FINITE = 9         /* input holds NaN or Inf */
} taesd_result;

typedef enum taesd_precision {
    TAESD_PRECISION_AUTO = 0,          /* fp16 on GPUs that support it; fp32 on CPU devices (lavapipe) and others */
    TAESD_PRECISION_FP32 = 1,
    TAESD_PRECISION_FP16 = 2           /* fp16 activations and weights, fp32 accumulation */
} taesd_precision;

typedef enum taesd_variant {
    TAESD_VARIANT_AUTO = 0,            /* detect from tensor names and shapes */
    TAESD_VARIANT_TAESD = 1,           /* SD 1.x/2.x and SDXL: 4 latent channels */
    TAESD_VARIANT_TAESD3 = 2,          /* SD3 and FLUX.1: 16 latent channels */
    TAESD_VARIANT_TAEF2 = 3,           /* FLUX.2: 32 latent channels, GroupNorm branch in the lowest-res Blocks */
    TAESD_VARIANT_TAESANA = 4          /* Sana: 32 latent channels, 32x spatial factor */
} taesd_variant;

typedef enum taesd_part { TAESD_PART_ENCODER = 1, TAESD_PART_DECODER = 2 } taesd_part;

typedef enum taesd_log_level { TAESD_LOG_ERROR = 0, TAESD_LOG_WARNING = 1, TAESD_LOG_INFO = 2, TAESD_LOG_DEBUG = 3 } taesd_log_level;

/* id: a stable number for the kind of message (see docs/api.md); msg: one line, no newline, valid only during
 * the callback. Called on the thread of the taesd call that produced the message. */
typedef void (*taesd_log_fn)(taesd_log_level level, int id, const char *msg, void *user);

/* A Vulkan device owned by the application: defined in taesd_vulkan.h. */
typedef struct taesd_vulkan_host taesd_vulkan_host;

typedef struct taesd_context_desc {
    int device_index;          /* 0: pick the best device (discrete > integrated > virtual > CPU); N: the N-th device, 1-based */
    bool enable_validation;    /* enable VK_LAYER_KHRONOS_validation and report every message as an error */
    taesd_log_fn log;          /* NULL: silent */
    void *log_user;
    const taesd_vulkan_host *host; /* NULL: taesd opens the Vulkan loader and creates its own instance and device.
                                    * Else: run on the application's device (taesd_vulkan.h); device_index,
                                    * enable_validation and TAESD_VALIDATION are then ignored. */
} taesd_context_desc;

typedef struct taesd_context taesd_context;
typedef struct taesd_model taesd_model;

typedef struct taesd_device_info {
    char name[256];
    uint32_t vendor_id, device_id;
    int type;                  /* VkPhysicalDeviceType */
    uint32_t api_version;
    bool fp16;                 /* 16-bit storage + fp16 arithmetic available */
    uint64_t max_storage_buffer_range;
} taesd_device_info;

/* Lists the Vulkan devices without creating a context (opens the loader and a temporary instance).
 * *count: in, the capacity of out (out may be NULL when it is 0); out, the number of devices found, which may
 * exceed the capacity (only the first `capacity` entries are written). Thread-safe.
 * Errors: INVALID_ARGUMENT (count NULL or negative, out NULL with a capacity), NO_DEVICE (no loader, no device),
 * VULKAN, OUT_OF_MEMORY. */
TAESD_API taesd_result taesd_list_devices(taesd_device_info *out, int *count);

/* Creates a context: a Vulkan device (its own, or the application's: desc->host) plus taesd's shared pipeline
 * state. desc may be NULL (all defaults). TAESD_VALIDATION=1 in the environment forces enable_validation (own
 * device only). On failure *out is NULL and the reason goes to desc->log (id 1).
 * Errors: INVALID_ARGUMENT (out NULL, negative device_index, an incomplete desc->host or one claiming fp16 the
 * device lacks), NO_DEVICE (no loader, no usable device, device_index past the last one), UNSUPPORTED
 * (validation layer missing; a host device below Vulkan 1.1 or a queue family without compute), VULKAN,
 * OUT_OF_MEMORY. */
TAESD_API taesd_result taesd_context_create(const taesd_context_desc *desc, taesd_context **out);
/* Destroys the context and everything taesd created on the device (never the application's objects). Destroy
 * its models first. Waits for taesd's work to finish (its own device: device idle; a host device: its queue idle).
 * NULL is a no-op. */
TAESD_API void taesd_context_destroy(taesd_context *ctx);
/* The last error of calls on this context and its models: one line, "" if none yet. Owned by the context, valid
 * until its next call; "no context" for NULL. */
TAESD_API const char *taesd_context_last_error(const taesd_context *ctx);
/* The context's device. Nothing happens for a NULL ctx or out. */
TAESD_API void taesd_context_device_info(const taesd_context *ctx, taesd_device_info *out);
/* Number of validation warnings/errors seen (counts only with enable_validation on taesd's own device; else 0). */
TAESD_API uint32_t taesd_context_validation_messages(const taesd_context *ctx);
/* What the context has built so far. A decode or encode at a size already seen builds nothing: no pipeline, no
 * descriptor set, no command buffer recording (its plan is reused). Nothing happens for a NULL ctx or out. */
typedef struct taesd_context_stats {
    uint32_t pipelines_created;
    uint32_t descriptor_sets_allocated;
    uint32_t command_buffers_recorded;
} taesd_context_stats;
TAESD_API void taesd_context_get_stats(const taesd_context *ctx, taesd_context_stats *out);

typedef struct taesd_model_desc {
    const char *path;          /* weights file: .pth or .safetensors (Sequential, diffusers or ComfyUI keys) */
    const char *path2;         /* optional second file (e.g. encoder + decoder given separately) */
    taesd_variant variant;     /* AUTO: detect */
    taesd_precision precision; /* AUTO: fp16 if the device supports it */
    bool profile;              /* record GPU timestamps around every op (taesd_model_op_times) */
    /* Exact tiling (taesd_decode / taesd_encode): the lowest-resolution stage (with taef2's GroupNorm statistics)
     * always runs over the whole image; the higher-resolution stages run in tiles whose overlap covers their
     * receptive field, so a tiled result equals the untiled one up to float rounding. */
    int tile;                  /* 0: tile only where needed (max_memory, maxStorageBufferRange); N > 0: always tile,
                                * tiles of N×N latent pixels (encoder: N·scale image pixels) */
    uint64_t max_memory;       /* device memory budget in bytes for one run's activations (plans, not weights);
                                * 0: no budget beyond the device's limits. Runs above it are tiled. */
} taesd_model_desc;

/* Reads the weights file(s), builds the network and uploads the weights to the device (blocking; submits to the
 * context's queue). The model belongs to ctx: use it on ctx's thread, destroy it before ctx. On failure *out is
 * NULL and taesd_context_last_error() reads "PATH: problem".
 * Errors: INVALID_ARGUMENT (NULL ctx/desc/path/out, variant or precision out of range), IO (file missing or
 * unreadable), FORMAT (malformed, hostile or truncated file; tensors fitting no variant or not the forced one),
 * UNSUPPORTED (fp16 requested on a device or host device without it), OUT_OF_MEMORY, VULKAN. */
TAESD_API taesd_result taesd_model_load(taesd_context *ctx, const taesd_model_desc *desc, taesd_model **out);
/* Frees the model's device objects (after waiting as taesd_context_destroy does) and its host memory. NULL is a
 * no-op. */
TAESD_API void taesd_model_destroy(taesd_model *model);

typedef struct taesd_model_info {
    taesd_variant variant;
    const char *variant_name;  /* "taesd", "taesd3", "taef2", "taesana" */
    bool has_encoder, has_decoder;
    int latent_channels;
    int scale;                 /* spatial factor between image and latent: 8 or 32 */
    uint64_t encoder_params, decoder_params;
    const char *dtype;         /* dtype in the file: "f32", "f16", "bf16" */
    const char *key_scheme;    /* "sequential", "diffusers", "comfyui" */
    float vae_scale, vae_shift;/* ComfyUI combined files only; else 1, 0 */
    bool has_vae_scale;
    taesd_precision precision; /* resolved precision the model runs in */
} taesd_model_info;

/* Fills *out; its strings are static. Nothing happens for NULL arguments. */
TAESD_API void taesd_model_get_info(const taesd_model *model, taesd_model_info *out);

/* Output size of a decode or encode for an input of h×w. Returns 1 and writes *out_h and *out_w (either may be
 * NULL); returns 0 where the model lacks that part, h or w < 1, or the size would overflow. */
TAESD_API int taesd_output_size(const taesd_model *model, taesd_part part, int h, int w, int *out_h, int *out_w);

/* Decode a latent (float32 CHW, `channels`×h×w, diffusion space: convert other layouts with
 * taesd_latent_to_diffusion) into rgb (float32 CHW 3×(h·s)×(w·s), raw, not clamped; size from taesd_output_size).
 * Blocking: submits to the context's queue and waits. The first call at a new size builds a plan (slower); later
 * calls at that size reuse it. latent and rgb stay the caller's.
 * Errors: INVALID_ARGUMENT (NULL model/latent/rgb, h or w < 1), UNSUPPORTED (the weights hold no decoder), SHAPE
 * (channels differ from the model's; size too large), NOT_FINITE (NaN/Inf in latent, checked before the run; rgb
 * untouched), OUT_OF_MEMORY (host/device memory, or not even tiles fit max_memory / maxStorageBufferRange), VULKAN. */
TAESD_API taesd_result taesd_decode(taesd_model *model, const float *latent, int channels, int h, int w, float *rgb);
/* Encode an image (float32 CHW 3×h×w in [0,1]) into latents (float32 CHW C×ceil(h/s)×ceil(w/s), diffusion space).
 * Blocking, like taesd_decode, with the same errors (UNSUPPORTED: the weights hold no encoder). */
TAESD_API taesd_result taesd_encode(taesd_model *model, const float *rgb, int h, int w, float *latent);

/* Cost of one run of `part` at an input of h×w: FLOPs and device memory. Builds the plan for that size if needed
 * (so the memory figure is exact); no run happens. A run that would go in tiles (taesd_model_desc.tile,
 * max_memory, maxStorageBufferRange) reports the plans of its tiles instead, computed without building them. */
typedef struct taesd_run_cost {
    double flops;              /* floating-point operations, 2 per multiply-add */
    uint64_t plan_bytes;       /* device memory of the plan: activation, GroupNorm and staging buffers */
    uint64_t weight_bytes;     /* device memory of this part's packed weights */
} taesd_run_cost;
/* Errors: INVALID_ARGUMENT (NULL model/out), UNSUPPORTED (no such part), SHAPE (size not supported),
 * OUT_OF_MEMORY / VULKAN (building the plan). */
TAESD_API taesd_result taesd_model_run_cost(taesd_model *model, taesd_part part, int h, int w, taesd_run_cost *out);

/* GPU time of every op of the last run of `part` at h×w, from timestamp queries (needs taesd_model_desc.profile
 * and a device with compute timestamps). Fills up to `capacity` entries; returns the op count, or -1 if there is no
 * profiled run at that size. Names are the Sequential indices of the weights ("3.conv.0"); valid until the model is
 * destroyed. */
typedef struct taesd_op_time {
    const char *name;
    const char *kind;          /* "conv3x3", "conv1x1", "gn_stats", "gn_apply" */
    int out_h, out_w, cin, cout;
    double flops;
    double ms;
} taesd_op_time;
TAESD_API int taesd_model_op_times(taesd_model *model, taesd_part part, int h, int w, taesd_op_time *out,
                                   int capacity);

/* Static strings, thread-safe: "ok", "invalid argument", ... ("unknown error" out of range); "taesd", "taesd3",
 * "taef2", "taesana" ("auto" for TAESD_VARIANT_AUTO, "unknown" out of range). */
TAESD_API const char *taesd_result_string(taesd_result r);
TAESD_API const char *taesd_variant_name(taesd_variant v);

/* ---- Latent formats ---------------------------------------------------------------------------------------
 * taesd_decode takes and taesd_encode returns diffusion-space latents (what the diffusion model sees). These pure
 * CPU calls (no context, thread-safe) convert from and to the layouts pipelines hand around. Constants are the
 * VAE configs' scaling_factor / shift_factor; docs/latent-formats.md gives each source. */
typedef enum taesd_latent_format {
    TAESD_LATENT_DIFFUSION = 0,        /* identity (the default) */
    TAESD_LATENT_SD1_RAW = 1,          /* SD 1.x/2.x VAE latents: diffusion = raw · 0.18215 */
    TAESD_LATENT_SDXL_RAW = 2,         /* SDXL VAE latents: diffusion = raw · 0.13025 */
    TAESD_LATENT_SD3_RAW = 3,          /* SD3 VAE latents: diffusion = (raw − 0.0609) · 1.5305 */
    TAESD_LATENT_FLUX1_RAW = 4,        /* FLUX.1 VAE latents: diffusion = (raw − 0.1159) · 0.3611 */
    TAESD_LATENT_FLUX1_PACKED = 5,     /* FLUX.1 transformer tokens (diffusion space): an h×w grid of tokens of c = 64
                                        * values, token-major (HWC: token (i,j) starts at [(i·w + j)·c]); value
                                        * ch·4 + py·2 + px is latent[ch][2i+py][2j+px]. 64 × H/2 × W/2 -> 16 × H × W */
    TAESD_LATENT_FLUX2_PATCHIFIED = 6  /* FLUX.2 2×2-patchified latents, CHW: channel ch·4 + py·2 + px at (y,x) is
                                        * latent[ch][2y+py][2x+px]. 128 × H/2 × W/2 -> 32 × H × W. A reorder only:
                                        * the FLUX.2 pipeline's BatchNorm normalization is not undone. */
} taesd_latent_format;

/* Dims of the same latent on the other side of a conversion: to_diffusion, the format's (c,h,w) -> diffusion
 * (C,H,W); else the reverse. Format dims are those of the array as laid out (FLUX1_PACKED: c values per token, an
 * h×w token grid). Errors: INVALID_ARGUMENT (bad format, dims < 1, NULL outputs), SHAPE (c not a multiple of 4
 * when unpacking, odd H or W when packing, element count overflow). */
TAESD_API taesd_result taesd_latent_shape(taesd_latent_format format, bool to_diffusion, int c, int h, int w,
                                          int *out_c, int *out_h, int *out_w);
/* Converts `in` (dims c,h,w of the format's layout) into diffusion space (dims from taesd_latent_shape(.., true,
 * ..)). in and out must not overlap, except in == out for the element-wise formats (DIFFUSION and *_RAW).
 * Errors: those of taesd_latent_shape, and INVALID_ARGUMENT for a NULL in/out. */
TAESD_API taesd_result taesd_latent_to_diffusion(taesd_latent_format format, const float *in, int c, int h, int w,
                                                 float *out);
/* The inverse, for encoder outputs: `in` is diffusion space c×h×w; out gets the format's layout (dims from
 * taesd_latent_shape(.., false, ..)). Same rules and errors. */
TAESD_API taesd_result taesd_latent_from_diffusion(taesd_latent_format format, const float *in, int c, int h, int w,
                                                   float *out);
/* "diffusion", "sd1-raw", "sdxl-raw", "sd3-raw", "flux1-raw", "flux1-packed", "flux2-patchified" (static); NULL out
 * of range. parse is the reverse: INVALID_ARGUMENT for an unknown name or a NULL argument. */
TAESD_API const char *taesd_latent_format_name(taesd_latent_format format);
TAESD_API taesd_result taesd_latent_format_parse(const char *name, taesd_latent_format *out);

/* ---- Live previews ---------------------------------------------------------------------------------------
 * A sampler thread hands in latents as fast as it makes them; a worker thread decodes the newest one (latest
 * wins: a latent not yet started when a newer one arrives is dropped); a UI thread picks up the newest finished
 * image. taesd_preview_submit never waits for a decode, and memory is bounded (one pending latent, three images).
 *
 * The preview takes over the model: while it exists, its worker thread is the only user of the model and of the
 * model's context; the application must not call anything else on them until taesd_preview_destroy returns. The
 * context's log callback is then called on the worker thread; the message of a failed decode is also left in
 * taesd_context_last_error, readable after taesd_preview_destroy.
 *
 * Thread-safety: taesd_preview_create on any thread (it only reads the model); taesd_preview_submit from any
 * number of threads (calls are serialised internally, never waiting for a decode); taesd_preview_get and
 * taesd_preview_wait from one consumer thread at a time (any thread, but not concurrently with each other);
 * taesd_preview_destroy once, after every other call on the preview has returned (on any thread). */
typedef struct taesd_preview taesd_preview;

typedef struct taesd_preview_desc {
    int max_side;                      /* 0: full size; N: box-filter the decoded image down so that its longer side
                                        * is at most N pixels (ComfyUI uses 512). For a decode of H×W and
                                        * f = ceil(max(H,W) / N) > 1 the preview is ceil(H/f)×ceil(W/f), each pixel
                                        * the mean of its f×f block of the float output (blocks clipped at the
                                        * right and bottom edges), then clamped and rounded */
    int every_n;                       /* 0 or 1: every submitted latent is a candidate; N: only every N-th submit
                                        * (1st, N+1-th, ...) is, the others are counted and dropped at once */
    taesd_latent_format latent_format; /* layout of submitted latents (default: diffusion space) */
} taesd_preview_desc;

/* Starts the worker thread. desc may be NULL (defaults). Errors: INVALID_ARGUMENT (NULL model/out, negative or
 * bad desc fields), UNSUPPORTED (no decoder in the model), OUT_OF_MEMORY (host memory, thread creation). */
TAESD_API taesd_result taesd_preview_create(taesd_model *model, const taesd_preview_desc *desc, taesd_preview **out);
/* Stops the worker (an in-flight decode finishes first; a latent not yet started is discarded) and frees
 * everything. NULL is a no-op. */
TAESD_API void taesd_preview_destroy(taesd_preview *preview);

/* Hands in a latent (float32 CHW in the desc's latent_format; copied, the caller keeps its array) and returns at
 * once. *out_seq (may be NULL) gets the latent's sequence number: 1, 2, ... in submit order (0 when the call
 * fails; failed calls take no number). Checked here, before anything is queued: channel count and size (SHAPE,
 * also the latent format's shape rule), NaN/Inf after conversion to diffusion space (NOT_FINITE), arguments
 * (INVALID_ARGUMENT); OUT_OF_MEMORY: no host memory for the copy. A latent of a new size is fine (the worker builds
 * a plan for it). Errors of the decode itself are reported by taesd_preview_get (status). */
TAESD_API taesd_result taesd_preview_submit(taesd_preview *preview, const float *latent, int channels, int h, int w,
                                            uint64_t *out_seq);

typedef struct taesd_preview_image {
    uint64_t seq;                      /* sequence number of the latent it shows; 0: no image yet */
    taesd_result status;               /* TAESD_OK, or why decoding that latent failed (rgb NULL, sizes 0) */
    int width, height;                 /* after the optional downscale */
    const uint8_t *rgb;                /* RGB8, row-major, width·height·3 bytes, clamped to [0,1] and rounded as the
                                        * PNG writer does; owned by the preview, valid until the next
                                        * taesd_preview_get / taesd_preview_wait or taesd_preview_destroy */
    double decode_ms;                  /* wall time of its decode (+ downscale) */
    uint64_t submitted, decoded, dropped;  /* counters at the time it was published: submitted (accepted
                                        * submits), decoded (decodes finished, failed ones included), dropped
                                        * (replaced before their decode started, or skipped by every_n). Once
                                        * the worker is idle, submitted == decoded + dropped. */
} taesd_preview_image;

/* The newest finished image (never blocks). Returns 1 and fills *out when it is newer than `newer_than` (a seq the
 * caller already has; 0 for any), else 0 and *out is untouched. -1 for NULL arguments. */
TAESD_API int taesd_preview_get(taesd_preview *preview, uint64_t newer_than, taesd_preview_image *out);
/* Like taesd_preview_get, but waits up to timeout_ms (< 0: forever) for an image newer than `newer_than`. Returns 1
 * with *out filled, 0 on timeout, -1 for NULL arguments. */
TAESD_API int taesd_preview_wait(taesd_preview *preview, uint64_t newer_than, int timeout_ms,
                                 taesd_preview_image *out);

#ifdef __cplusplus
}
#endif
#endif
