/* host_app.h — a Vulkan application for the tests that run libtaesd on a device they own (test_host, test_cmd).
 * host_create: dlopen libvulkan.so.1, an instance with VK_LAYER_KHRONOS_validation and a messenger counting every
 * warning/error (app.messages), the first Vulkan >= 1.1 device with a compute queue, what
 * taesd_query_device_requirements asks for enabled where offered (fp16; synchronization2 on Vulkan 1.3). */
#ifndef TAESD_TESTS_HOST_APP_H
#define TAESD_TESTS_HOST_APP_H

#ifndef VK_NO_PROTOTYPES
#define VK_NO_PROTOTYPES
#endif
#include <stdatomic.h>
#include <stdbool.h>

#include "taesd_vulkan.h"

typedef struct host_app {
    void *lib;
    PFN_vkGetInstanceProcAddr gipa;
    uint32_t api;
    VkInstance instance;
    VkDebugUtilsMessengerEXT messenger;
    VkPhysicalDevice pd;
    VkDevice device;
    uint32_t family;
    VkQueue queue;
    bool fp16;
    bool sync2;                  /* synchronization2 enabled (Vulkan 1.3 devices) */
    atomic_uint messages;
    PFN_vkDestroyInstance DestroyInstance;
    PFN_vkDestroyDebugUtilsMessengerEXT DestroyMessenger;
    PFN_vkGetDeviceProcAddr GetDeviceProcAddr;
    PFN_vkDestroyDevice DestroyDevice;
    PFN_vkCreateBuffer CreateBuffer;
    PFN_vkDestroyBuffer DestroyBuffer;
    PFN_vkGetBufferMemoryRequirements GetBufferMemoryRequirements;
    PFN_vkAllocateMemory AllocateMemory;
    PFN_vkFreeMemory FreeMemory;
    PFN_vkBindBufferMemory BindBufferMemory;
    PFN_vkCreateFence CreateFence;
    PFN_vkDestroyFence DestroyFence;
    PFN_vkQueueSubmit QueueSubmit;
    PFN_vkWaitForFences WaitForFences;
} host_app;

extern host_app app;

/* cmocka group setup/teardown: teardown fails if any validation message was seen. */
int host_create(void **state);
int host_destroy(void **state);
/* A taesd_vulkan_host describing app (fp16 and synchronization2 as enabled). */
taesd_vulkan_host host_desc(void);
PFN_vkVoidFunction inst_fn(const char *name);
PFN_vkVoidFunction dev_fn(const char *name);
#define DEV_FN(name) ((PFN_##name)dev_fn(#name))

#endif
