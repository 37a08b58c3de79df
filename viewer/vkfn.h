/* vkfn.h — the Vulkan commands taesd-view calls, as function pointers (VK_NO_PROTOTYPES: nothing is linked from
 * libvulkan; GLFW's loader hands out the instance-level pointers, vkGetDeviceProcAddr the device-level ones). */
#ifndef TAESD_VIEW_VKFN_H
#define TAESD_VIEW_VKFN_H

#define VK_NO_PROTOTYPES
#include <vulkan/vulkan.h>

/* Global commands (instance VK_NULL_HANDLE). */
#define VIEW_VK_GLOBAL(X)                                                                                            \
    X(vkCreateInstance)                                                                                              \
    X(vkEnumerateInstanceExtensionProperties)                                                                        \
    X(vkEnumerateInstanceLayerProperties)

/* Optional global command (Vulkan 1.1 loaders). */
#define VIEW_VK_GLOBAL_OPT(X) X(vkEnumerateInstanceVersion)

#define VIEW_VK_INSTANCE(X)                                                                                          \
    X(vkDestroyInstance)                                                                                             \
    X(vkEnumeratePhysicalDevices)                                                                                    \
    X(vkGetPhysicalDeviceProperties)                                                                                 \
    X(vkGetPhysicalDeviceFeatures2)                                                                                  \
    X(vkGetPhysicalDeviceQueueFamilyProperties)                                                                      \
    X(vkGetPhysicalDeviceMemoryProperties)                                                                           \
    X(vkGetPhysicalDeviceFormatProperties)                                                                           \
    X(vkEnumerateDeviceExtensionProperties)                                                                          \
    X(vkGetPhysicalDeviceSurfaceSupportKHR)                                                                          \
    X(vkGetPhysicalDeviceSurfaceCapabilitiesKHR)                                                                     \
    X(vkGetPhysicalDeviceSurfaceFormatsKHR)                                                                          \
    X(vkGetPhysicalDeviceSurfacePresentModesKHR)                                                                     \
    X(vkDestroySurfaceKHR)                                                                                           \
    X(vkCreateDevice)                                                                                                \
    X(vkGetDeviceProcAddr)

/* Only with the validation layer (TAESD_VALIDATION=1 / --validation). */
#define VIEW_VK_DEBUG(X)                                                                                             \
    X(vkCreateDebugUtilsMessengerEXT)                                                                                \
    X(vkDestroyDebugUtilsMessengerEXT)

#define VIEW_VK_DEVICE(X)                                                                                            \
    X(vkDestroyDevice)                                                                                               \
    X(vkGetDeviceQueue)                                                                                              \
    X(vkDeviceWaitIdle)                                                                                              \
    X(vkCreateSwapchainKHR)                                                                                          \
    X(vkDestroySwapchainKHR)                                                                                         \
    X(vkGetSwapchainImagesKHR)                                                                                       \
    X(vkAcquireNextImageKHR)                                                                                         \
    X(vkQueuePresentKHR)                                                                                             \
    X(vkQueueSubmit2)                                                                                                \
    X(vkCreateCommandPool)                                                                                           \
    X(vkDestroyCommandPool)                                                                                          \
    X(vkAllocateCommandBuffers)                                                                                      \
    X(vkBeginCommandBuffer)                                                                                          \
    X(vkEndCommandBuffer)                                                                                            \
    X(vkResetCommandBuffer)                                                                                          \
    X(vkCreateFence)                                                                                                 \
    X(vkDestroyFence)                                                                                                \
    X(vkWaitForFences)                                                                                               \
    X(vkGetFenceStatus)                                                                                              \
    X(vkResetFences)                                                                                                 \
    X(vkCreateSemaphore)                                                                                             \
    X(vkDestroySemaphore)                                                                                            \
    X(vkCreateBuffer)                                                                                                \
    X(vkDestroyBuffer)                                                                                               \
    X(vkGetBufferMemoryRequirements)                                                                                 \
    X(vkBindBufferMemory)                                                                                            \
    X(vkCreateImage)                                                                                                 \
    X(vkDestroyImage)                                                                                                \
    X(vkGetImageMemoryRequirements)                                                                                  \
    X(vkBindImageMemory)                                                                                             \
    X(vkAllocateMemory)                                                                                              \
    X(vkFreeMemory)                                                                                                  \
    X(vkMapMemory)                                                                                                   \
    X(vkUnmapMemory)                                                                                                 \
    X(vkInvalidateMappedMemoryRanges)                                                                                \
    X(vkCreateQueryPool)                                                                                             \
    X(vkDestroyQueryPool)                                                                                            \
    X(vkGetQueryPoolResults)                                                                                         \
    X(vkCmdResetQueryPool)                                                                                           \
    X(vkCmdWriteTimestamp2)                                                                                          \
    X(vkCmdPipelineBarrier2)                                                                                         \
    X(vkCmdClearColorImage)                                                                                          \
    X(vkCmdBlitImage)                                                                                                \
    X(vkCmdCopyImageToBuffer)

typedef struct view_vk {
#define VIEW_VK_MEMBER(name) PFN_##name name;
    PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr;
    VIEW_VK_GLOBAL(VIEW_VK_MEMBER)
    VIEW_VK_GLOBAL_OPT(VIEW_VK_MEMBER)
    VIEW_VK_INSTANCE(VIEW_VK_MEMBER)
    VIEW_VK_DEBUG(VIEW_VK_MEMBER)
    VIEW_VK_DEVICE(VIEW_VK_MEMBER)
#undef VIEW_VK_MEMBER
} view_vk;

#endif
