/* taesd_vulkan.h — running libtaesd on a Vulkan device the application owns (a game engine, a UI, a
 * diffusion runtime that already has a VkDevice). Needs the Vulkan headers; taesd.h alone does not.
 *
 *   1. Before creating its device, the host asks what taesd needs: taesd_query_device_requirements().
 *   2. It creates instance + device (enabling those extensions/features it wants to grant) and fills a
 *      taesd_vulkan_host.
 *   3. taesd_context_desc.host = &host; taesd_context_create() builds a context on that device: taesd loads its
 *      function pointers from host.get_instance_proc_addr (instance level) and vkGetDeviceProcAddr (device level),
 *      never from a loader of its own, and enables nothing.
 *
 * Ownership: the host's VkInstance, VkPhysicalDevice, VkDevice and VkQueue stay the host's. taesd creates only its
 * own objects on the device (one command pool on queue_family_index, buffers, memory, pipelines, descriptor pools,
 * fences) and destroys all of them in taesd_model_destroy / taesd_context_destroy; it never destroys a host object.
 * The host must destroy every taesd context on a device before destroying that device.
 *
 * Queue and threads: taesd_model_load, taesd_decode and taesd_encode submit to host.queue and wait on a fence of
 * their own before returning (nothing of taesd's is pending when they return). vkQueueSubmit needs external
 * synchronization, so the host must not use that queue from another thread while one of these calls runs.
 * taesd_model_destroy and taesd_context_destroy wait for host.queue to be idle (vkQueueWaitIdle, never a
 * device-wide wait), so the same rule holds for them. Several contexts may share one host device; each is still used by one thread at a time, and calls of
 * two contexts sharing one queue must not overlap either.
 *
 * Validation: in host mode taesd_context_desc.enable_validation and TAESD_VALIDATION are ignored; the host's own
 * instance layers and debug messenger see every call taesd makes, and taesd_context_validation_messages()
 * returns 0.
 */
#ifndef TAESD_VULKAN_H
#define TAESD_VULKAN_H

#include <vulkan/vulkan.h>

#include "taesd.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The host's Vulkan objects (typedef'd in taesd.h as taesd_vulkan_host). Every field but `allocator` is required.
 * Read during taesd_context_create only (the struct may be a local), except `allocator`, whose callbacks must
 * stay valid until the context is destroyed. */
struct taesd_vulkan_host {
    PFN_vkGetInstanceProcAddr get_instance_proc_addr;  /* the host's entry point (its loader, or a layer's) */
    VkInstance instance;
    uint32_t instance_api_version;     /* VkApplicationInfo::apiVersion the instance was created with; >= 1.1 */
    VkPhysicalDevice physical_device;
    VkDevice device;                   /* created from physical_device; its Vulkan version must be >= 1.1 */
    uint32_t queue_family_index;       /* family of `queue`; must support VK_QUEUE_COMPUTE_BIT */
    VkQueue queue;                     /* taesd submits here (see "Queue and threads" above) */
    bool fp16_enabled;                 /* true: the host enabled storageBuffer16BitAccess and shaderFloat16 on the
                                        * device (on Vulkan 1.1 also VK_KHR_shader_float16_int8); taesd cannot
                                        * read enabled features back. false: taesd runs fp32 only
                                        * (TAESD_PRECISION_FP16 then fails with TAESD_ERROR_UNSUPPORTED). */
    const VkAllocationCallbacks *allocator;  /* optional: host memory callbacks for taesd's own Vulkan objects */
    bool synchronization2_enabled;     /* true: the device runs Vulkan >= 1.3 with synchronization2 enabled
                                        * (VkPhysicalDeviceVulkan13Features), or enables VK_KHR_synchronization2 and
                                        * its feature. Needed only by taesd_cmd_decode. */
};

/* What taesd needs from a device, for the host to enable when it creates it. Strings are static. */
typedef struct taesd_device_requirements {
    uint32_t min_api_version;          /* VK_API_VERSION_1_1 */
    VkQueueFlags queue_flags;          /* VK_QUEUE_COMPUTE_BIT: what the family of the queue given to taesd needs */
    uint32_t extension_count;          /* device extensions taesd requires at this API version (currently none) */
    const char *const *extensions;
    /* Optional, for fp16 (TAESD_PRECISION_FP16 / AUTO picking fp16; about twice as fast where supported): */
    uint32_t fp16_extension_count;     /* Vulkan 1.1: VK_KHR_shader_float16_int8; Vulkan >= 1.2: none (core) */
    const char *const *fp16_extensions;
    bool fp16_storage_buffer_16bit_access;  /* enable VkPhysicalDeviceVulkan11Features (1.2+) or
                                             * VkPhysicalDevice16BitStorageFeatures (1.1) .storageBuffer16BitAccess */
    bool fp16_shader_float16;          /* enable VkPhysicalDeviceVulkan12Features (1.2+) or
                                        * VkPhysicalDeviceShaderFloat16Int8Features (1.1) .shaderFloat16 */
    /* Optional, for taesd_cmd_decode (recording into the host's command buffers): */
    uint32_t cmd_extension_count;      /* below Vulkan 1.3: VK_KHR_synchronization2; 1.3+: none (core) */
    const char *const *cmd_extensions;
    bool cmd_synchronization2;         /* enable VkPhysicalDeviceVulkan13Features (1.3+) or
                                        * VkPhysicalDeviceSynchronization2FeaturesKHR .synchronization2 */
} taesd_device_requirements;

/* Fills *out with what taesd needs on a device running Vulkan `api_version` (the smaller of the instance's
 * apiVersion and the physical device's apiVersion; patch bits ignored). Needs no device and no context; thread-safe.
 * Returns TAESD_ERROR_INVALID_ARGUMENT for out == NULL, TAESD_ERROR_UNSUPPORTED below Vulkan 1.1 (out still filled).
 * A device that offers VK_KHR_portability_subset needs it enabled too, as the Vulkan spec requires of any app. */
TAESD_API taesd_result taesd_query_device_requirements(uint32_t api_version, taesd_device_requirements *out);

/* ---- Recording a decode into the host's command buffer ------------------------------------------------------
 * For a renderer that wants the decoded image on the GPU, in its own frame: no submit, no wait, no readback.
 *
 *   taesd_plan *plan;  taesd_plan_create(model, latent_h, latent_w, &plan);    (once per latent size)
 *   per frame:         taesd_cmd_decode(plan, cmd, &input, &output);           (records only)
 *
 * The plan owns taesd's buffers and descriptor sets for one latent size. taesd_cmd_decode records into `cmd`:
 * barriers (synchronization2) taking the host's input and output from the state the caller names, a copy of the
 * input into the plan, the network's dispatches, a conversion to the output format, a copy into the host's
 * image/buffer, and barriers handing both back in the state the caller wants. It never submits and never waits.
 *
 * Requirements: a host-device context (taesd_vulkan.h) with synchronization2_enabled; `cmd` in the recording
 * state, from a pool whose queue family supports compute and transfer; the host resources owned by that family.
 * Input buffer: VK_BUFFER_USAGE_TRANSFER_SRC_BIT. Output image: VK_IMAGE_USAGE_TRANSFER_DST_BIT, 2D, mip level 0
 * and array layer 0 written, at least (x + out_w) × (y + out_h). Output buffer: VK_BUFFER_USAGE_TRANSFER_DST_BIT.
 *
 * Ordering and lifetime: every recorded decode of one plan uses the plan's buffers, so executions of commands
 * recorded from one plan must not overlap on different queues (on one queue, taesd's barriers order them). Destroy
 * a plan only after every command buffer it was recorded into has finished executing (taesd cannot see the host's
 * queues) and before its model. Input values are not checked for NaN on this path (they never reach the CPU).
 *
 * Thread-safety: like its model (one thread at a time for the model, its context and its plans). */
typedef struct taesd_plan taesd_plan;

/* A decoder plan for latents of h×w. Errors: INVALID_ARGUMENT (NULL, h or w < 1), UNSUPPORTED (no decoder; not a
 * host-device context; synchronization2 not enabled), SHAPE (size too large), OUT_OF_MEMORY, VULKAN. */
TAESD_API taesd_result taesd_plan_create(taesd_model *model, int h, int w, taesd_plan **out);
/* NULL is a no-op. Does not wait: see "Ordering and lifetime". */
TAESD_API void taesd_plan_destroy(taesd_plan *plan);
/* The plan's image size (out_w = w·scale, out_h = h·scale). Nothing happens for NULL. */
TAESD_API void taesd_plan_output_size(const taesd_plan *plan, int *out_h, int *out_w);

/* Where a host resource stands before taesd's commands and where it should be left. Zero means: no earlier access
 * to wait for (stage/access 0) / contents may be discarded (layout UNDEFINED, images only) / no release barrier
 * (stage/access after 0) / image left in VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL (layout after UNDEFINED). */
typedef struct taesd_resource_state {
    VkPipelineStageFlags2 stage_before;
    VkAccessFlags2 access_before;
    VkImageLayout layout_before;
    VkPipelineStageFlags2 stage_after;
    VkAccessFlags2 access_after;
    VkImageLayout layout_after;
} taesd_resource_state;

typedef enum taesd_gpu_layout {
    TAESD_GPU_FLOAT32 = 0,             /* planar CHW float32, like taesd_decode's arrays (input; buffer output: the
                                        * raw decoder output, not clamped) */
    TAESD_GPU_FLOAT16 = 1,             /* planar CHW IEEE half (input only) */
    TAESD_GPU_RGBA8 = 2                /* buffer output: 4 bytes per pixel (R, G, B, 255), rows of out_w pixels,
                                        * clamped to [0,1] and rounded exactly as `taesd decode` writes PNGs */
} taesd_gpu_layout;

typedef struct taesd_cmd_input {
    VkBuffer buffer;                   /* channels × h × w values, diffusion space */
    VkDeviceSize offset;               /* a multiple of 4 */
    taesd_gpu_layout layout;           /* FLOAT32 (default) or FLOAT16 */
    taesd_resource_state state;        /* layout fields unused */
} taesd_cmd_input;

typedef struct taesd_cmd_output {
    /* Either an image ... */
    VkImage image;
    VkFormat image_format;             /* VK_FORMAT_R8G8B8A8_UNORM / _SRGB, B8G8R8A8_UNORM / _SRGB (bytes as in the
                                        * PNG: an _SRGB view then reads them as sRGB-encoded, like the file),
                                        * R16G16B16A16_SFLOAT, R32G32B32A32_SFLOAT (clamped [0,1] values; alpha 1) */
    int32_t x, y;                      /* where the decoded image goes in it */
    /* ... or a buffer (image VK_NULL_HANDLE). */
    VkBuffer buffer;
    VkDeviceSize offset;               /* a multiple of 4 */
    taesd_gpu_layout buffer_layout;    /* FLOAT32 (default) or RGBA8 */
    taesd_resource_state state;
} taesd_cmd_output;

/* Records one decode into `cmd` (see above). Errors (nothing recorded): INVALID_ARGUMENT (NULL, neither or both of
 * image and buffer, a layout or format not listed, misaligned offset, x or y < 0), UNSUPPORTED (see
 * taesd_plan_create). */
TAESD_API taesd_result taesd_cmd_decode(taesd_plan *plan, VkCommandBuffer cmd, const taesd_cmd_input *input,
                                        const taesd_cmd_output *output);

#ifdef __cplusplus
}
#endif
#endif
