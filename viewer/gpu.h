/* gpu.h — taesd-view's Vulkan side: instance, device (made for both presentation and libtaesd's recorded decodes),
 * swapchain, the device-local image the decoder writes, and the per-frame command buffers. */
#ifndef TAESD_VIEW_GPU_H
#define TAESD_VIEW_GPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vkfn.h"
#define GLFW_INCLUDE_VULKAN
#include <GLFW/glfw3.h>

#include "taesd_vulkan.h"

typedef struct gpu gpu;

typedef struct gpu_desc {
    GLFWwindow *window;
    int device_index;                  /* 0: best device that can present; N: the N-th (1-based) */
    bool validation;                   /* VK_LAYER_KHRONOS_validation + a messenger counting every message */
    bool capture;                      /* copy every presented frame back (for gpu_save_screenshot) */
    bool prefer_srgb;                  /* an _SRGB swapchain format before UNORM (tests the sRGB path) */
} gpu_desc;

/* Creates everything up to the swapchain. Returns 0, or -1 with one line in err. */
int gpu_create(const gpu_desc *desc, gpu **out, char *err, size_t errlen);
/* Waits for the device to be idle and destroys everything. NULL is a no-op. */
void gpu_destroy(gpu *g);

/* The device for taesd_context_desc.host. */
void gpu_host(const gpu *g, taesd_vulkan_host *out);
/* "NAME (Vulkan X.Y)" of the device. */
const char *gpu_device_name(const gpu *g);
uint32_t gpu_validation_messages(const gpu *g);
/* One line for -v: device, swapchain format and size, present mode. */
void gpu_describe(const gpu *g, char *buf, size_t len);

/* One decode to record into the next frame: `latent` (c·h·w values, float32 or IEEE half) is copied into that
 * frame's upload buffer (the only CPU->GPU copy); the plan writes the device-local image. */
typedef struct gpu_decode {
    taesd_plan *plan;
    const void *latent;
    size_t bytes;
    bool f16;
} gpu_decode;

typedef enum gpu_status { GPU_PRESENTED = 0, GPU_NOT_NOW = 1, GPU_DECODE_FAILED = 2, GPU_FAILED = -1 } gpu_status;

/* Makes the decoded image out_w × out_h (a new one, after waiting for the device, when the size changes). */
int gpu_set_image_size(gpu *g, int out_w, int out_h, char *err, size_t errlen);
/* Records, submits and presents one frame: the decode (if any), a black letterbox and the image fitted to the
 * window (or 1:1, centred). GPU_NOT_NOW: nothing presented (window minimised, swapchain being re-created; the
 * decode, if any, was not recorded: call again). GPU_DECODE_FAILED: presented, but taesd_cmd_decode refused the
 * decode (err says why; the previous picture stays). GPU_FAILED: a Vulkan failure (err). */
gpu_status gpu_draw(gpu *g, const gpu_decode *dec, bool one_to_one, char *err, size_t errlen);
/* Waits until the next frame's slot is free (its previous use has finished), so that the latent the caller then
 * takes is the newest at the moment it can be recorded. */
void gpu_wait_frame(gpu *g);
/* Waits until the device is idle (before destroying a plan that frames were recorded with). */
void gpu_wait_idle(gpu *g);
/* The framebuffer changed size (GLFW callback): the swapchain is re-created before the next frame. */
void gpu_resized(gpu *g);
/* Milliseconds of the newest decode whose frame has finished (GPU timestamps where the queue has them, else
 * submit-to-fence time); < 0: none yet. */
double gpu_decode_ms(const gpu *g);
/* Reads the times of decodes that have finished since (without waiting), for the title. */
void gpu_poll(gpu *g);
/* Decodes timed so far and the sum of their milliseconds. */
void gpu_decode_stats(const gpu *g, uint64_t *count, double *sum_ms);
/* Size of the decoded image (0 before the first). */
void gpu_image_size(const gpu *g, int *w, int *h);
/* Writes the last presented frame, read back from its swapchain image, as an RGB PNG (needs desc.capture). */
int gpu_save_screenshot(gpu *g, const char *path, char *err, size_t errlen);
/* Writes the decoded image (what `taesd decode` writes for that latent) as an RGB PNG: a one-off readback. */
int gpu_save_decoded(gpu *g, const char *path, char *err, size_t errlen);

#endif
