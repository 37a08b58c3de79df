/* taesd.h — Vulkan compute engine for TAESD, the tiny autoencoder for diffusion latents.
 *
 * Descriptor structs follow "zero means default": memset a desc to 0, set only what you need.
 * Every call returns a taesd_result; TAESD_OK is 0. Human-readable details go to the log callback
 * (if any) and are also kept per object: taesd_context_last_error().
 *
 * Thread-safety: a context and everything made from it must be used from one thread at a time.
 * Different contexts are independent (no global state).
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
    TAESD_PRECISION_AUTO = 0,          /* fp16 storage where the device supports it, else fp32 */
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

/* id: a stable number for the kind of message (see TAESD_MSG_* in the docs); msg: one line, no newline. */
typedef void (*taesd_log_fn)(taesd_log_level level, int id, const char *msg, void *user);

typedef struct taesd_context_desc {
    int device_index;          /* 0: pick the best device (discrete > integrated > virtual > CPU); N: the N-th device, 1-based */
    bool enable_validation;    /* enable VK_LAYER_KHRONOS_validation and report every message as an error */
    taesd_log_fn log;          /* NULL: silent */
    void *log_user;
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

/* Lists the Vulkan devices without creating a context. *count: in, capacity of out; out, devices found. */
TAESD_API taesd_result taesd_list_devices(taesd_device_info *out, int *count);

TAESD_API taesd_result taesd_context_create(const taesd_context_desc *desc, taesd_context **out);
TAESD_API void taesd_context_destroy(taesd_context *ctx);
TAESD_API const char *taesd_context_last_error(const taesd_context *ctx);
TAESD_API void taesd_context_device_info(const taesd_context *ctx, taesd_device_info *out);
/* Number of validation messages seen (only counts when enable_validation). */
TAESD_API uint32_t taesd_context_validation_messages(const taesd_context *ctx);

typedef struct taesd_model_desc {
    const char *path;          /* weights file: .pth or .safetensors (Sequential, diffusers or ComfyUI keys) */
    const char *path2;         /* optional second file (e.g. encoder + decoder given separately) */
    taesd_variant variant;     /* AUTO: detect */
    taesd_precision precision; /* AUTO: fp16 if the device supports it */
    bool profile;              /* record GPU timestamps around every op (taesd_model_op_times) */
} taesd_model_desc;

TAESD_API taesd_result taesd_model_load(taesd_context *ctx, const taesd_model_desc *desc, taesd_model **out);
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

TAESD_API void taesd_model_get_info(const taesd_model *model, taesd_model_info *out);

/* Output size of a decode or encode for an input of h×w. Returns 0 where the size is not supported. */
TAESD_API int taesd_output_size(const taesd_model *model, taesd_part part, int h, int w, int *out_h, int *out_w);

/* Decode a latent (float32 CHW, `channels`×h×w, diffusion space) into rgb (float32 CHW 3×(h·s)×(w·s), raw,
 * not clamped). Blocking. */
TAESD_API taesd_result taesd_decode(taesd_model *model, const float *latent, int channels, int h, int w, float *rgb);
/* Encode an image (float32 CHW 3×h×w in [0,1]) into latents (float32 CHW C×ceil(h/s)×ceil(w/s)). Blocking. */
TAESD_API taesd_result taesd_encode(taesd_model *model, const float *rgb, int h, int w, float *latent);

/* Cost of one run of `part` at an input of h×w: FLOPs and device memory. Builds the plan for that size if needed
 * (so the memory figure is exact); no run happens. */
typedef struct taesd_run_cost {
    double flops;              /* floating-point operations, 2 per multiply-add */
    uint64_t plan_bytes;       /* device memory of the plan: activation, GroupNorm and staging buffers */
    uint64_t weight_bytes;     /* device memory of this part's packed weights */
} taesd_run_cost;
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

TAESD_API const char *taesd_result_string(taesd_result r);
TAESD_API const char *taesd_variant_name(taesd_variant v);

#ifdef __cplusplus
}
#endif
#endif
