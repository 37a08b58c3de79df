/* vk.h — the Vulkan runtime of one context: loader, dispatch table, instance/device, buffers, one-shot submits.
 * No global state: everything lives in a vk_runtime. libvulkan is opened at run time (dlopen / LoadLibrary),
 * never linked. */
#ifndef TAESD_VK_VK_H
#define TAESD_VK_VK_H

#ifndef VK_NO_PROTOTYPES
#define VK_NO_PROTOTYPES
#endif
#include <vulkan/vulkan.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "taesd.h"
#include "taesd_vulkan.h"  /* taesd_vulkan_host: a device owned by the application */
#include "vk_dispatch.h"   /* generated from vk.xml: struct vk_dispatch + vk_dispatch_load_*() */

typedef struct vk_runtime {
    void *library;                       /* libvulkan handle; NULL when the host supplied the entry point */
    vk_dispatch vk;                      /* every call goes through this table */
    const VkAllocationCallbacks *alloc;  /* pass to every vkCreate*, vkAllocate*, vkDestroy*, vkFree* taking one
                                          * (NULL on taesd's own device; the host's callbacks in host mode) */
    bool owns_instance, owns_device;     /* false in host mode: vkrt_destroy never destroys the host's objects */
    uint32_t instance_api;               /* Vulkan version the instance was created with (major.minor) */
    VkInstance instance;
    VkPhysicalDevice physical;
    VkDevice device;
    uint32_t queue_family;
    VkQueue queue;
    VkCommandPool command_pool;
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceMemoryProperties mem_props;
    uint32_t subgroup_size;
    bool fp16;                           /* storageBuffer16BitAccess + shaderFloat16 enabled on the device */
    bool sync2;                          /* host device with synchronization2 enabled and vkCmdPipelineBarrier2 found */
    VkDebugUtilsMessengerEXT messenger;  /* only with validation */
    uint32_t validation_messages;        /* count of validation warnings/errors seen */
    taesd_log_fn log;
    void *log_user;
} vk_runtime;

/* Creates instance + device. device_index: 0 = best (discrete > integrated > virtual > cpu), N = N-th (1-based).
 * validation: enable VK_LAYER_KHRONOS_validation + a debug messenger that counts and logs every warning/error
 * (fails with an error if the layer is missing). Returns a taesd_result; err gets one line. */
taesd_result vkrt_create(vk_runtime *rt, int device_index, bool validation, taesd_log_fn log, void *log_user,
                         char *err, size_t errlen);
void vkrt_destroy(vk_runtime *rt);

/* Adopts the application's instance/device/queue (see include/taesd_vulkan.h): loads the dispatch table from
 * host->get_instance_proc_addr and vkGetDeviceProcAddr, checks the device (Vulkan 1.1, a compute queue family,
 * fp16 only where host->fp16_enabled and supported), enables nothing, and creates only taesd's command pool
 * (with host->allocator). vkrt_destroy then destroys only what taesd created. */
taesd_result vkrt_create_from_host(vk_runtime *rt, const taesd_vulkan_host *host, taesd_log_fn log, void *log_user,
                                   char *err, size_t errlen);


/* Lists devices (opens the loader and a temporary instance). */
taesd_result vkrt_list_devices(taesd_device_info *out, int *count, char *err, size_t errlen);
void vkrt_device_info(const vk_runtime *rt, taesd_device_info *out);

typedef struct vk_buffer {
    VkBuffer buffer;
    VkDeviceMemory memory;
    VkDeviceSize size;
    void *mapped;                        /* host-visible buffers stay mapped */
} vk_buffer;

/* A storage buffer (usage adds UNIFORM_TEXEL_BUFFER and TRANSFER_SRC|DST). host_visible: HOST_VISIBLE|HOST_COHERENT (prefer HOST_CACHED),
 * mapped; else DEVICE_LOCAL. Fails with TAESD_ERROR_OUT_OF_MEMORY above maxStorageBufferRange or when allocation fails. */
taesd_result vkrt_buffer_create(vk_runtime *rt, VkDeviceSize size, bool host_visible, vk_buffer *out, char *err,
                                size_t errlen);
void vkrt_buffer_destroy(vk_runtime *rt, vk_buffer *b);

/* Copies host bytes into a device-local buffer through a temporary staging buffer (blocking). */
taesd_result vkrt_upload(vk_runtime *rt, vk_buffer *dst, VkDeviceSize offset, const void *data, size_t size,
                         char *err, size_t errlen);

/* Begins a one-time command buffer from the runtime's pool; end_submit_wait submits it, waits (fence) and frees it. */
taesd_result vkrt_begin_once(vk_runtime *rt, VkCommandBuffer *cb, char *err, size_t errlen);
taesd_result vkrt_end_submit_wait(vk_runtime *rt, VkCommandBuffer cb, char *err, size_t errlen);

/* Submits a pre-recorded command buffer and waits on `fence` (reset before submit). */
taesd_result vkrt_submit_wait(vk_runtime *rt, VkCommandBuffer cb, VkFence fence, char *err, size_t errlen);

/* "vkFoo failed: VK_ERROR_OUT_OF_DEVICE_MEMORY" style strings. */
const char *vkrt_result_name(VkResult r);

#endif
