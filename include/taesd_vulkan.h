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
} taesd_device_requirements;

/* Fills *out with what taesd needs on a device running Vulkan `api_version` (the smaller of the instance's
 * apiVersion and the physical device's apiVersion; patch bits ignored). Needs no device and no context; thread-safe.
 * Returns TAESD_ERROR_INVALID_ARGUMENT for out == NULL, TAESD_ERROR_UNSUPPORTED below Vulkan 1.1 (out still filled).
 * A device that offers VK_KHR_portability_subset needs it enabled too, as the Vulkan spec requires of any app. */
TAESD_API taesd_result taesd_query_device_requirements(uint32_t api_version, taesd_device_requirements *out);

#ifdef __cplusplus
}
#endif
#endif
