/* gpu.c — taesd-view's Vulkan side. The viewer is an embedder of libtaesd like any renderer: it creates the instance
 * (GLFW's surface extensions) and a device with VK_KHR_swapchain plus what taesd_query_device_requirements asks for,
 * then records each decode (taesd_cmd_decode) into its own frame command buffer, in front of the blit that puts
 * the decoded image on screen. Pixels never leave the GPU: only the latent is copied CPU -> GPU. */
#include "gpu.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/image.h"

#define MAX_IMAGES 8
#define FRAMES 2                       /* frames in flight: the CPU records one while the GPU runs the other */

typedef struct gbuf {
    VkBuffer buf;
    VkDeviceMemory mem;
    void *map;
    VkDeviceSize size;
    bool coherent;
} gbuf;

typedef struct frame {
    VkCommandBuffer cmd;
    VkFence fence;
    VkSemaphore acquired;
    gbuf upload;                       /* host-visible: this frame's latent */
    gbuf capture;                      /* host-visible: this frame's swapchain image, read back (desc.capture) */
    VkQueryPool queries;               /* two timestamps around the decode */
    bool submitted;                    /* fence not waited for yet */
    bool timing;                       /* a decode was recorded: its time is still to be read */
    double submit_time;
    bool captured;
    int cap_w, cap_h;
    VkFormat cap_format;
} frame;

struct gpu {
    view_vk vk;
    gpu_desc d;
    char name[300];
    VkInstance instance;
    uint32_t instance_api;
    VkDebugUtilsMessengerEXT messenger;
    atomic_uint messages;
    VkSurfaceKHR surface;
    VkPhysicalDevice pd;
    uint32_t api;                      /* min(instance, device), major.minor */
    VkDevice device;
    uint32_t family;
    VkQueue queue;
    bool fp16;
    VkPhysicalDeviceMemoryProperties mem_props;
    bool timestamps;
    double timestamp_ns;

    VkSwapchainKHR swapchain;
    VkSurfaceFormatKHR format;
    VkPresentModeKHR present_mode;
    VkExtent2D extent;
    uint32_t image_count;
    VkImage images[MAX_IMAGES];
    VkSemaphore rendered[MAX_IMAGES];  /* per swapchain image, not per frame slot: a present may still wait on it */
    bool swapchain_readable;           /* TRANSFER_SRC usage allowed (screenshots) */
    bool recreate;

    VkCommandPool pool;
    frame frames[FRAMES];
    uint32_t cur;
    int last_presented;                /* frame slot, -1 none */

    VkImage image;                     /* the decoder's output: device-local */
    VkDeviceMemory image_mem;
    int image_w, image_h;
    uint32_t image_levels;             /* mip chain: a window smaller than the image shows a box-filtered level */
    VkFormat image_format;
    bool image_valid;                  /* holds a decoded picture, in TRANSFER_SRC_OPTIMAL */
    double decode_ms;
    double decode_sum;
    uint64_t decode_count;
};

static int gerr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int gerr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static uint32_t major_minor(uint32_t v)
{
    return VK_MAKE_API_VERSION(0, VK_API_VERSION_MAJOR(v), VK_API_VERSION_MINOR(v), 0);
}

static const char *format_name(VkFormat f)
{
    switch (f) {
    case VK_FORMAT_B8G8R8A8_UNORM: return "B8G8R8A8_UNORM";
    case VK_FORMAT_R8G8B8A8_UNORM: return "R8G8B8A8_UNORM";
    case VK_FORMAT_B8G8R8A8_SRGB: return "B8G8R8A8_SRGB";
    case VK_FORMAT_R8G8B8A8_SRGB: return "R8G8B8A8_SRGB";
    default: return "other";
    }
}

static bool is_bgra(VkFormat f)
{
    return f == VK_FORMAT_B8G8R8A8_UNORM || f == VK_FORMAT_B8G8R8A8_SRGB;
}

static bool is_rgba8(VkFormat f)
{
    return is_bgra(f) || f == VK_FORMAT_R8G8B8A8_UNORM || f == VK_FORMAT_R8G8B8A8_SRGB;
}

/* ---- instance ---------------------------------------------------------------------------------------------- */

static VKAPI_ATTR VkBool32 VKAPI_CALL on_validation(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                    VkDebugUtilsMessageTypeFlagsEXT types,
                                                    const VkDebugUtilsMessengerCallbackDataEXT *data, void *user)
{
    (void)types;
    gpu *g = user;
    if (severity & (VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT)) {
        atomic_fetch_add(&g->messages, 1);
        fprintf(stderr, "taesd-view: validation: %s\n", data && data->pMessage ? data->pMessage : "?");
    }
    return VK_FALSE;
}

static void messenger_info(gpu *g, VkDebugUtilsMessengerCreateInfoEXT *mi)
{
    *mi = (VkDebugUtilsMessengerCreateInfoEXT){
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity =
            VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = on_validation,
        .pUserData = g,
    };
}

static bool has_instance_ext(gpu *g, const char *name)
{
    uint32_t n = 0;
    if (g->vk.vkEnumerateInstanceExtensionProperties(NULL, &n, NULL) != VK_SUCCESS || n == 0)
        return false;
    VkExtensionProperties *p = calloc(n, sizeof *p);
    bool found = false;
    if (p && g->vk.vkEnumerateInstanceExtensionProperties(NULL, &n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++)
            found = strcmp(p[i].extensionName, name) == 0;
    free(p);
    return found;
}

static bool has_layer(gpu *g, const char *name)
{
    uint32_t n = 0;
    if (g->vk.vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || n == 0)
        return false;
    VkLayerProperties *p = calloc(n, sizeof *p);
    bool found = false;
    if (p && g->vk.vkEnumerateInstanceLayerProperties(&n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++)
            found = strcmp(p[i].layerName, name) == 0;
    free(p);
    return found;
}

static int create_instance(gpu *g, char *err, size_t errlen)
{
    /* Through GLFW's loader handle: the viewer links no libvulkan symbol. */
    g->vk.vkGetInstanceProcAddr = (PFN_vkGetInstanceProcAddr)glfwGetInstanceProcAddress(NULL, "vkGetInstanceProcAddr");
    if (!g->vk.vkGetInstanceProcAddr)
        return gerr(err, errlen, "no Vulkan loader (vkGetInstanceProcAddr not found)");
#define LOAD_GLOBAL(name)                                                                                            \
    if (!(g->vk.name = (PFN_##name)g->vk.vkGetInstanceProcAddr(VK_NULL_HANDLE, #name)))                              \
        return gerr(err, errlen, "Vulkan loader lacks %s", #name);
    VIEW_VK_GLOBAL(LOAD_GLOBAL)
#undef LOAD_GLOBAL
    g->vk.vkEnumerateInstanceVersion =
        (PFN_vkEnumerateInstanceVersion)g->vk.vkGetInstanceProcAddr(VK_NULL_HANDLE, "vkEnumerateInstanceVersion");
    uint32_t loader = VK_API_VERSION_1_0;
    if (g->vk.vkEnumerateInstanceVersion)
        g->vk.vkEnumerateInstanceVersion(&loader);
    if (major_minor(loader) < VK_API_VERSION_1_1)
        return gerr(err, errlen, "the Vulkan loader offers version 1.0; taesd needs 1.1");
    g->instance_api = major_minor(loader) < VK_API_VERSION_1_3 ? major_minor(loader) : VK_API_VERSION_1_3;

    uint32_t nglfw = 0;
    const char **glfw_exts = glfwGetRequiredInstanceExtensions(&nglfw);
    if (!glfw_exts)
        return gerr(err, errlen, "GLFW found no Vulkan surface support for this window system");
    const char *exts[16];
    uint32_t next = 0;
    for (uint32_t i = 0; i < nglfw && next < 14; i++)
        exts[next++] = glfw_exts[i];
    VkInstanceCreateFlags flags = 0;
    if (has_instance_ext(g, "VK_KHR_portability_enumeration")) {
        exts[next++] = "VK_KHR_portability_enumeration";
        flags |= 0x00000001;           /* VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR */
    }
    const char *layers[1] = { "VK_LAYER_KHRONOS_validation" };
    VkDebugUtilsMessengerCreateInfoEXT mi;
    messenger_info(g, &mi);
    if (g->d.validation) {
        if (!has_layer(g, layers[0]))
            return gerr(err, errlen, "validation requested but VK_LAYER_KHRONOS_validation is not installed "
                                     "(Debian: vulkan-validationlayers)");
        exts[next++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
    }
    VkApplicationInfo ai = { .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .pApplicationName = "taesd-view",
                             .pEngineName = "taesd", .apiVersion = g->instance_api };
    VkInstanceCreateInfo ci = { .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                                .pNext = g->d.validation ? &mi : NULL,
                                .flags = flags,
                                .pApplicationInfo = &ai,
                                .enabledLayerCount = g->d.validation ? 1 : 0,
                                .ppEnabledLayerNames = layers,
                                .enabledExtensionCount = next,
                                .ppEnabledExtensionNames = exts };
    VkResult r = g->vk.vkCreateInstance(&ci, NULL, &g->instance);
    if (r != VK_SUCCESS)
        return gerr(err, errlen, "vkCreateInstance failed (%d)", r);
#define LOAD_INSTANCE(name)                                                                                          \
    if (!(g->vk.name = (PFN_##name)g->vk.vkGetInstanceProcAddr(g->instance, #name)))                                 \
        return gerr(err, errlen, "Vulkan instance lacks %s", #name);
    VIEW_VK_INSTANCE(LOAD_INSTANCE)
    if (g->d.validation) {
        VIEW_VK_DEBUG(LOAD_INSTANCE)
        if (g->vk.vkCreateDebugUtilsMessengerEXT(g->instance, &mi, NULL, &g->messenger) != VK_SUCCESS)
            return gerr(err, errlen, "vkCreateDebugUtilsMessengerEXT failed");
    }
#undef LOAD_INSTANCE
    r = glfwCreateWindowSurface(g->instance, g->d.window, NULL, &g->surface);
    if (r != VK_SUCCESS)
        return gerr(err, errlen, "cannot create a Vulkan surface for the window (%d)", r);
    return 0;
}

/* ---- device ------------------------------------------------------------------------------------------------ */

typedef struct dev_choice {
    VkPhysicalDevice pd;
    uint32_t family, api;
    VkPhysicalDeviceProperties props;
} dev_choice;

static bool device_has_ext(gpu *g, VkPhysicalDevice pd, const char *name)
{
    uint32_t n = 0;
    if (g->vk.vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL) != VK_SUCCESS || n == 0)
        return false;
    VkExtensionProperties *p = calloc(n, sizeof *p);
    bool found = false;
    if (p && g->vk.vkEnumerateDeviceExtensionProperties(pd, NULL, &n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++)
            found = strcmp(p[i].extensionName, name) == 0;
    free(p);
    return found;
}

/* Why pd cannot serve the viewer ("" if it can): Vulkan 1.1, swapchain, synchronization2, and one queue family
 * with graphics (blits), compute (taesd) and presentation to our surface. */
static const char *device_unfit(gpu *g, VkPhysicalDevice pd, dev_choice *c)
{
    memset(c, 0, sizeof *c);
    c->pd = pd;
    g->vk.vkGetPhysicalDeviceProperties(pd, &c->props);
    c->api = major_minor(c->props.apiVersion) < g->instance_api ? major_minor(c->props.apiVersion) : g->instance_api;
    if (c->api < VK_API_VERSION_1_1)
        return "Vulkan 1.0 only";
    if (!device_has_ext(g, pd, VK_KHR_SWAPCHAIN_EXTENSION_NAME))
        return "no VK_KHR_swapchain";
    VkPhysicalDeviceSynchronization2Features s2 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SYNCHRONIZATION_2_FEATURES };
    VkPhysicalDeviceFeatures2 f2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &s2 };
    if (c->api < VK_API_VERSION_1_3 && !device_has_ext(g, pd, "VK_KHR_synchronization2"))
        return "no synchronization2";
    g->vk.vkGetPhysicalDeviceFeatures2(pd, &f2);
    if (!s2.synchronization2)
        return "no synchronization2";
    uint32_t nq = 0;
    g->vk.vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, NULL);
    VkQueueFamilyProperties q[32];
    if (nq > 32)
        nq = 32;
    g->vk.vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, q);
    VkQueueFlags need = VK_QUEUE_GRAPHICS_BIT | VK_QUEUE_COMPUTE_BIT;
    for (uint32_t i = 0; i < nq; i++) {
        VkBool32 present = VK_FALSE;
        if ((q[i].queueFlags & need) != need ||
            g->vk.vkGetPhysicalDeviceSurfaceSupportKHR(pd, i, g->surface, &present) != VK_SUCCESS || !present)
            continue;
        c->family = i;
        return "";
    }
    return "no queue family with graphics, compute and presentation to the window";
}

static int type_rank(int t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 4;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 3;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 1;
    default: return 0;
    }
}

static int pick_device(gpu *g, dev_choice *best, char *err, size_t errlen)
{
    VkPhysicalDevice pds[16];
    uint32_t n = 16;
    VkResult r = g->vk.vkEnumeratePhysicalDevices(g->instance, &n, pds);
    if ((r != VK_SUCCESS && r != VK_INCOMPLETE) || n == 0)
        return gerr(err, errlen, "no Vulkan device found");
    if (g->d.device_index > 0) {
        if ((uint32_t)g->d.device_index > n)
            return gerr(err, errlen, "--device %d: there are %u devices", g->d.device_index, n);
        const char *why = device_unfit(g, pds[g->d.device_index - 1], best);
        if (*why)
            return gerr(err, errlen, "--device %d (%s): %s", g->d.device_index, best->props.deviceName, why);
        return 0;
    }
    int best_rank = -1;
    const char *last_why = "";
    char last_name[256] = "";
    for (uint32_t i = 0; i < n; i++) {
        dev_choice c;
        const char *why = device_unfit(g, pds[i], &c);
        if (*why) {
            last_why = why;
            snprintf(last_name, sizeof last_name, "%s", c.props.deviceName);
            continue;
        }
        if (type_rank(c.props.deviceType) > best_rank) {
            best_rank = type_rank(c.props.deviceType);
            *best = c;
        }
    }
    if (best_rank < 0)
        return gerr(err, errlen, "no Vulkan device can run the viewer (%s: %s)", last_name, last_why);
    return 0;
}

static int create_device(gpu *g, char *err, size_t errlen)
{
    dev_choice c;
    if (pick_device(g, &c, err, errlen) != 0)
        return -1;
    g->pd = c.pd;
    g->family = c.family;
    g->api = c.api;
    snprintf(g->name, sizeof g->name, "%s (Vulkan %u.%u)", c.props.deviceName, VK_API_VERSION_MAJOR(c.api),
             VK_API_VERSION_MINOR(c.api));
    g->vk.vkGetPhysicalDeviceMemoryProperties(g->pd, &g->mem_props);
    uint32_t nq = 0;
    VkQueueFamilyProperties q[32];
    g->vk.vkGetPhysicalDeviceQueueFamilyProperties(g->pd, &nq, NULL);
    if (nq > 32)
        nq = 32;
    g->vk.vkGetPhysicalDeviceQueueFamilyProperties(g->pd, &nq, q);
    g->timestamps = q[g->family].timestampValidBits > 0 && c.props.limits.timestampPeriod > 0;
    g->timestamp_ns = c.props.limits.timestampPeriod;

    /* What taesd asks for, enabled where the device offers it. */
    taesd_device_requirements req;
    if (taesd_query_device_requirements(g->api, &req) != TAESD_OK)
        return gerr(err, errlen, "%s: below what taesd needs", g->name);
    const char *exts[32];
    uint32_t next = 0;
    exts[next++] = VK_KHR_SWAPCHAIN_EXTENSION_NAME;
    for (uint32_t i = 0; i < req.extension_count && next < 24; i++)
        exts[next++] = req.extensions[i];
    for (uint32_t i = 0; i < req.cmd_extension_count && next < 24; i++)
        exts[next++] = req.cmd_extensions[i];
    if (device_has_ext(g, g->pd, "VK_KHR_portability_subset"))
        exts[next++] = "VK_KHR_portability_subset";

    VkPhysicalDeviceVulkan12Features q12 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES };
    VkPhysicalDeviceVulkan11Features q11 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
                                             .pNext = &q12 };
    VkPhysicalDeviceFeatures2 f2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &q11 };
    if (g->api >= VK_API_VERSION_1_2) {
        g->vk.vkGetPhysicalDeviceFeatures2(g->pd, &f2);
        g->fp16 = q11.storageBuffer16BitAccess && q12.shaderFloat16;   /* (1.1 devices: fp32 only) */
    }
    VkPhysicalDeviceVulkan13Features e13 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES,
                                             .synchronization2 = VK_TRUE };
    VkPhysicalDeviceSynchronization2Features es2 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SYNCHRONIZATION_2_FEATURES, .synchronization2 = VK_TRUE };
    VkPhysicalDeviceVulkan12Features e12 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES };
    VkPhysicalDeviceVulkan11Features e11 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES };
    void *chain = g->api >= VK_API_VERSION_1_3 ? (void *)&e13 : (void *)&es2;
    if (g->fp16) {
        for (uint32_t i = 0; i < req.fp16_extension_count && next < 30; i++)
            exts[next++] = req.fp16_extensions[i];
        e11.storageBuffer16BitAccess = req.fp16_storage_buffer_16bit_access;
        e12.shaderFloat16 = req.fp16_shader_float16;
        e11.pNext = &e12;
        e12.pNext = chain;
        chain = &e11;
    }
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qi = { .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, .queueFamilyIndex = g->family,
                                   .queueCount = 1, .pQueuePriorities = &prio };
    VkDeviceCreateInfo di = { .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .pNext = chain,
                              .queueCreateInfoCount = 1, .pQueueCreateInfos = &qi,
                              .enabledExtensionCount = next, .ppEnabledExtensionNames = exts };
    VkResult r = g->vk.vkCreateDevice(g->pd, &di, NULL, &g->device);
    if (r != VK_SUCCESS)
        return gerr(err, errlen, "%s: vkCreateDevice failed (%d)", g->name, r);
    /* synchronization2 commands: core names on 1.3, the KHR aliases below. */
    bool core13 = g->api >= VK_API_VERSION_1_3;
#define LOAD_DEVICE(fn)                                                                                              \
    {                                                                                                                \
        g->vk.fn = (PFN_##fn)g->vk.vkGetDeviceProcAddr(g->device, #fn);                                              \
        if (!g->vk.fn && !core13)                                                                                    \
            g->vk.fn = (PFN_##fn)g->vk.vkGetDeviceProcAddr(g->device, #fn "KHR");                                    \
        if (!g->vk.fn)                                                                                               \
            return gerr(err, errlen, "%s: device lacks %s", g->name, #fn);                                           \
    }
    VIEW_VK_DEVICE(LOAD_DEVICE)
#undef LOAD_DEVICE
    g->vk.vkGetDeviceQueue(g->device, g->family, 0, &g->queue);
    return 0;
}

/* ---- memory ------------------------------------------------------------------------------------------------ */

static int memory_type(gpu *g, uint32_t bits, VkMemoryPropertyFlags need, VkMemoryPropertyFlags want,
                       VkMemoryPropertyFlags avoid)
{
    int best = -1, best_score = -1;
    for (uint32_t i = 0; i < g->mem_props.memoryTypeCount; i++) {
        VkMemoryPropertyFlags f = g->mem_props.memoryTypes[i].propertyFlags;
        if (!(bits & (1u << i)) || (f & need) != need)
            continue;
        int score = ((f & want) == want ? 2 : 0) + ((f & avoid) ? 0 : 1);
        if (score > best_score) {
            best_score = score;
            best = (int)i;
        }
    }
    return best;
}

static void buf_destroy(gpu *g, gbuf *b)
{
    if (b->buf)
        g->vk.vkDestroyBuffer(g->device, b->buf, NULL);
    if (b->mem)
        g->vk.vkFreeMemory(g->device, b->mem, NULL);
    memset(b, 0, sizeof *b);
}

/* A mapped host-visible buffer: uploads (coherent) or readbacks (cached where offered). */
static int buf_create(gpu *g, VkDeviceSize size, VkBufferUsageFlags usage, bool readback, gbuf *b, char *err,
                      size_t errlen)
{
    memset(b, 0, sizeof *b);
    VkBufferCreateInfo bi = { .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = size, .usage = usage,
                              .sharingMode = VK_SHARING_MODE_EXCLUSIVE };
    if (g->vk.vkCreateBuffer(g->device, &bi, NULL, &b->buf) != VK_SUCCESS)
        return gerr(err, errlen, "vkCreateBuffer of %llu bytes failed", (unsigned long long)size);
    VkMemoryRequirements mr;
    g->vk.vkGetBufferMemoryRequirements(g->device, b->buf, &mr);
    VkMemoryPropertyFlags need =
        VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | (readback ? 0 : VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
    int t = memory_type(g, mr.memoryTypeBits, need, readback ? VK_MEMORY_PROPERTY_HOST_CACHED_BIT : 0, 0);
    if (t < 0) {
        buf_destroy(g, b);
        return gerr(err, errlen, "no host-visible memory type for a buffer");
    }
    VkMemoryAllocateInfo ai = { .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = mr.size,
                                .memoryTypeIndex = (uint32_t)t };
    if (g->vk.vkAllocateMemory(g->device, &ai, NULL, &b->mem) != VK_SUCCESS ||
        g->vk.vkBindBufferMemory(g->device, b->buf, b->mem, 0) != VK_SUCCESS ||
        g->vk.vkMapMemory(g->device, b->mem, 0, VK_WHOLE_SIZE, 0, &b->map) != VK_SUCCESS) {
        buf_destroy(g, b);
        return gerr(err, errlen, "cannot allocate %llu bytes of host-visible memory", (unsigned long long)size);
    }
    b->size = size;
    b->coherent = g->mem_props.memoryTypes[t].propertyFlags & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    return 0;
}

static void buf_invalidate(gpu *g, gbuf *b)
{
    if (b->coherent)
        return;
    VkMappedMemoryRange r = { .sType = VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE, .memory = b->mem, .size = VK_WHOLE_SIZE };
    g->vk.vkInvalidateMappedMemoryRanges(g->device, 1, &r);
}

/* ---- swapchain --------------------------------------------------------------------------------------------- */

/* Preferred: UNORM, so that the bytes the decoder writes are the bytes scanned out (the PNG's bytes). */
static int choose_format(gpu *g, char *err, size_t errlen)
{
    uint32_t n = 0;
    if (g->vk.vkGetPhysicalDeviceSurfaceFormatsKHR(g->pd, g->surface, &n, NULL) != VK_SUCCESS || n == 0)
        return gerr(err, errlen, "the window surface offers no format (X11: a 24-bit screen is needed, e.g. "
                                 "Xvfb -screen 0 1280x1024x24)");
    VkSurfaceFormatKHR *f = calloc(n, sizeof *f);
    if (!f)
        return gerr(err, errlen, "out of memory");
    g->vk.vkGetPhysicalDeviceSurfaceFormatsKHR(g->pd, g->surface, &n, f);
    static const VkFormat unorm_first[] = { VK_FORMAT_B8G8R8A8_UNORM, VK_FORMAT_R8G8B8A8_UNORM,
                                            VK_FORMAT_B8G8R8A8_SRGB, VK_FORMAT_R8G8B8A8_SRGB };
    static const VkFormat srgb_first[] = { VK_FORMAT_B8G8R8A8_SRGB, VK_FORMAT_R8G8B8A8_SRGB,
                                           VK_FORMAT_B8G8R8A8_UNORM, VK_FORMAT_R8G8B8A8_UNORM };
    const VkFormat *pref = g->d.prefer_srgb ? srgb_first : unorm_first;
    int pick = -1;
    for (size_t p = 0; p < 4 && pick < 0; p++)
        for (uint32_t i = 0; i < n; i++)
            if (f[i].format == pref[p] && f[i].colorSpace == VK_COLOR_SPACE_SRGB_NONLINEAR_KHR) {
                pick = (int)i;
                break;
            }
    if (pick < 0) {
        free(f);
        return gerr(err, errlen, "the window surface offers no 8-bit RGBA/BGRA sRGB-nonlinear format");
    }
    g->format = f[pick];
    free(f);
    /* The decoded image takes the swapchain's format, so the blit copies bytes without conversion. With an _SRGB
     * swapchain the decoded image is _SRGB too: taesd writes the PNG's (sRGB-encoded) bytes into it, the blit
     * decodes them to linear and encodes them back on the way out, which at 1:1 is the identity, so nothing is
     * gamma-encoded twice. (Scaled, the filter then averages in linear light.) */
    g->image_format = g->format.format;
    VkFormatProperties fp;
    g->vk.vkGetPhysicalDeviceFormatProperties(g->pd, g->image_format, &fp);
    VkFormatFeatureFlags need = VK_FORMAT_FEATURE_BLIT_SRC_BIT | VK_FORMAT_FEATURE_BLIT_DST_BIT |
                                VK_FORMAT_FEATURE_TRANSFER_SRC_BIT | VK_FORMAT_FEATURE_TRANSFER_DST_BIT |
                                VK_FORMAT_FEATURE_SAMPLED_IMAGE_FILTER_LINEAR_BIT;
    if ((fp.optimalTilingFeatures & need) != need)
        return gerr(err, errlen, "%s: format %s cannot be blitted with linear filtering", g->name,
                    format_name(g->image_format));
    uint32_t nm = 0;
    g->present_mode = VK_PRESENT_MODE_FIFO_KHR;   /* always there */
    VkPresentModeKHR modes[16];
    if (g->vk.vkGetPhysicalDeviceSurfacePresentModesKHR(g->pd, g->surface, &nm, NULL) == VK_SUCCESS) {
        if (nm > 16)
            nm = 16;
        VkResult r = g->vk.vkGetPhysicalDeviceSurfacePresentModesKHR(g->pd, g->surface, &nm, modes);
        /* MAILBOX: the newest frame replaces a queued one, no tearing, no queue to wait behind. */
        for (uint32_t i = 0; (r == VK_SUCCESS || r == VK_INCOMPLETE) && i < nm; i++)
            if (modes[i] == VK_PRESENT_MODE_MAILBOX_KHR)
                g->present_mode = VK_PRESENT_MODE_MAILBOX_KHR;
    }
    return 0;
}

static void destroy_swapchain_images(gpu *g)
{
    for (uint32_t i = 0; i < g->image_count; i++)
        if (g->rendered[i])
            g->vk.vkDestroySemaphore(g->device, g->rendered[i], NULL);
    memset(g->rendered, 0, sizeof g->rendered);
    g->image_count = 0;
}

/* 0: ready; 1: nothing to present to now (minimised); -1: error. */
static int create_swapchain(gpu *g, char *err, size_t errlen)
{
    g->vk.vkDeviceWaitIdle(g->device);
    VkSurfaceCapabilitiesKHR caps;
    if (g->vk.vkGetPhysicalDeviceSurfaceCapabilitiesKHR(g->pd, g->surface, &caps) != VK_SUCCESS)
        return gerr(err, errlen, "vkGetPhysicalDeviceSurfaceCapabilitiesKHR failed");
    VkExtent2D e = caps.currentExtent;
    if (e.width == UINT32_MAX) {
        /* The surface takes its size from the swapchain: the framebuffer's pixels (HiDPI: not the window's
         * screen coordinates). */
        int fw = 0, fh = 0;
        glfwGetFramebufferSize(g->d.window, &fw, &fh);
        e.width = (uint32_t)(fw > 0 ? fw : 0);
        e.height = (uint32_t)(fh > 0 ? fh : 0);
        if (e.width < caps.minImageExtent.width)
            e.width = caps.minImageExtent.width;
        if (e.height < caps.minImageExtent.height)
            e.height = caps.minImageExtent.height;
        if (e.width > caps.maxImageExtent.width)
            e.width = caps.maxImageExtent.width;
        if (e.height > caps.maxImageExtent.height)
            e.height = caps.maxImageExtent.height;
    }
    if (e.width == 0 || e.height == 0) {
        g->recreate = true;
        return 1;
    }
    if (!(caps.supportedUsageFlags & VK_IMAGE_USAGE_TRANSFER_DST_BIT))
        return gerr(err, errlen, "the window surface does not allow transfer writes into its images");
    g->swapchain_readable = caps.supportedUsageFlags & VK_IMAGE_USAGE_TRANSFER_SRC_BIT;
    uint32_t count = caps.minImageCount + 1;
    if (caps.maxImageCount && count > caps.maxImageCount)
        count = caps.maxImageCount;
    if (count > MAX_IMAGES)
        count = MAX_IMAGES;
    VkCompositeAlphaFlagBitsKHR alpha = VK_COMPOSITE_ALPHA_OPAQUE_BIT_KHR;
    if (!(caps.supportedCompositeAlpha & alpha))
        for (uint32_t b = 1; b; b <<= 1)
            if (caps.supportedCompositeAlpha & b) {
                alpha = (VkCompositeAlphaFlagBitsKHR)b;
                break;
            }
    VkSwapchainKHR old = g->swapchain;
    VkSwapchainCreateInfoKHR si = {
        .sType = VK_STRUCTURE_TYPE_SWAPCHAIN_CREATE_INFO_KHR,
        .surface = g->surface,
        .minImageCount = count,
        .imageFormat = g->format.format,
        .imageColorSpace = g->format.colorSpace,
        .imageExtent = e,
        .imageArrayLayers = 1,
        .imageUsage = VK_IMAGE_USAGE_TRANSFER_DST_BIT | (g->swapchain_readable ? VK_IMAGE_USAGE_TRANSFER_SRC_BIT : 0),
        .imageSharingMode = VK_SHARING_MODE_EXCLUSIVE,
        .preTransform = caps.currentTransform,
        .compositeAlpha = alpha,
        .presentMode = g->present_mode,
        .clipped = VK_TRUE,
        .oldSwapchain = old,
    };
    VkResult r = g->vk.vkCreateSwapchainKHR(g->device, &si, NULL, &g->swapchain);
    if (old)
        g->vk.vkDestroySwapchainKHR(g->device, old, NULL);
    destroy_swapchain_images(g);
    if (r != VK_SUCCESS) {
        g->swapchain = VK_NULL_HANDLE;
        return gerr(err, errlen, "vkCreateSwapchainKHR failed (%d)", r);
    }
    uint32_t n = MAX_IMAGES;
    r = g->vk.vkGetSwapchainImagesKHR(g->device, g->swapchain, &n, g->images);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE)
        return gerr(err, errlen, "vkGetSwapchainImagesKHR failed (%d)", r);
    VkSemaphoreCreateInfo sci = { .sType = VK_STRUCTURE_TYPE_SEMAPHORE_CREATE_INFO };
    for (uint32_t i = 0; i < n; i++) {
        if (g->vk.vkCreateSemaphore(g->device, &sci, NULL, &g->rendered[i]) != VK_SUCCESS) {
            g->image_count = i;
            return gerr(err, errlen, "vkCreateSemaphore failed");
        }
    }
    g->image_count = n;
    g->extent = e;
    g->recreate = false;
    /* Frames captured from the old swapchain no longer show what is on screen. */
    g->last_presented = -1;
    return 0;
}

static int frame_wait(gpu *g, frame *f, char *err, size_t errlen);
static void collect_timing(gpu *g, frame *f);

/* ---- create / destroy -------------------------------------------------------------------------------------- */

int gpu_create(const gpu_desc *desc, gpu **out, char *err, size_t errlen)
{
    *out = NULL;
    gpu *g = calloc(1, sizeof *g);
    if (!g)
        return gerr(err, errlen, "out of memory");
    g->d = *desc;
    g->last_presented = -1;
    g->decode_ms = -1;
    atomic_init(&g->messages, 0);
    if (create_instance(g, err, errlen) != 0 || create_device(g, err, errlen) != 0 ||
        choose_format(g, err, errlen) != 0)
        goto fail;
    VkCommandPoolCreateInfo pi = { .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                   .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                   .queueFamilyIndex = g->family };
    if (g->vk.vkCreateCommandPool(g->device, &pi, NULL, &g->pool) != VK_SUCCESS) {
        gerr(err, errlen, "vkCreateCommandPool failed");
        goto fail;
    }
    for (int i = 0; i < FRAMES; i++) {
        frame *f = &g->frames[i];
        VkCommandBufferAllocateInfo ai = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                           .commandPool = g->pool, .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                           .commandBufferCount = 1 };
        VkFenceCreateInfo fi = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
        VkSemaphoreCreateInfo si = { .sType = VK_STRUCTURE_TYPE_SEMAPHORE_CREATE_INFO };
        VkQueryPoolCreateInfo qi = { .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                     .queryType = VK_QUERY_TYPE_TIMESTAMP, .queryCount = 2 };
        if (g->vk.vkAllocateCommandBuffers(g->device, &ai, &f->cmd) != VK_SUCCESS ||
            g->vk.vkCreateFence(g->device, &fi, NULL, &f->fence) != VK_SUCCESS ||
            g->vk.vkCreateSemaphore(g->device, &si, NULL, &f->acquired) != VK_SUCCESS ||
            (g->timestamps && g->vk.vkCreateQueryPool(g->device, &qi, NULL, &f->queries) != VK_SUCCESS)) {
            gerr(err, errlen, "cannot create the frame's command buffer, fence, semaphore or query pool");
            goto fail;
        }
    }
    if (create_swapchain(g, err, errlen) < 0)
        goto fail;
    *out = g;
    return 0;
fail:
    gpu_destroy(g);
    return -1;
}

static void destroy_image(gpu *g)
{
    if (g->image)
        g->vk.vkDestroyImage(g->device, g->image, NULL);
    if (g->image_mem)
        g->vk.vkFreeMemory(g->device, g->image_mem, NULL);
    g->image = VK_NULL_HANDLE;
    g->image_mem = VK_NULL_HANDLE;
    g->image_w = g->image_h = 0;
    g->image_levels = 0;
    g->image_valid = false;
}

void gpu_destroy(gpu *g)
{
    if (!g)
        return;
    if (g->device) {
        g->vk.vkDeviceWaitIdle(g->device);
        destroy_image(g);
        for (int i = 0; i < FRAMES; i++) {
            frame *f = &g->frames[i];
            buf_destroy(g, &f->upload);
            buf_destroy(g, &f->capture);
            if (f->fence)
                g->vk.vkDestroyFence(g->device, f->fence, NULL);
            if (f->acquired)
                g->vk.vkDestroySemaphore(g->device, f->acquired, NULL);
            if (f->queries)
                g->vk.vkDestroyQueryPool(g->device, f->queries, NULL);
        }
        if (g->pool)
            g->vk.vkDestroyCommandPool(g->device, g->pool, NULL);
        destroy_swapchain_images(g);
        if (g->swapchain)
            g->vk.vkDestroySwapchainKHR(g->device, g->swapchain, NULL);
        g->vk.vkDestroyDevice(g->device, NULL);
    }
    if (g->surface)
        g->vk.vkDestroySurfaceKHR(g->instance, g->surface, NULL);
    if (g->messenger)
        g->vk.vkDestroyDebugUtilsMessengerEXT(g->instance, g->messenger, NULL);
    if (g->instance)
        g->vk.vkDestroyInstance(g->instance, NULL);
    free(g);
}

void gpu_host(const gpu *g, taesd_vulkan_host *out)
{
    memset(out, 0, sizeof *out);
    out->get_instance_proc_addr = g->vk.vkGetInstanceProcAddr;
    out->instance = g->instance;
    out->instance_api_version = g->instance_api;
    out->physical_device = g->pd;
    out->device = g->device;
    out->queue_family_index = g->family;
    out->queue = g->queue;
    out->fp16_enabled = g->fp16;
    out->synchronization2_enabled = true;
}

const char *gpu_device_name(const gpu *g)
{
    return g->name;
}

void gpu_describe(const gpu *g, char *buf, size_t len)
{
    snprintf(buf, len, "%s; swapchain %s %ux%u, %u images, present mode %s; decoded image %s; fp16 %s; %s",
             g->name, format_name(g->format.format), g->extent.width, g->extent.height, g->image_count,
             g->present_mode == VK_PRESENT_MODE_MAILBOX_KHR ? "MAILBOX" : "FIFO", format_name(g->image_format),
             g->fp16 ? "enabled" : "off", g->timestamps ? "GPU timestamps" : "no timestamps (CPU timing)");
}

uint32_t gpu_validation_messages(const gpu *g)
{
    return atomic_load(&((gpu *)g)->messages);
}

void gpu_wait_idle(gpu *g)
{
    char err[64];
    g->vk.vkDeviceWaitIdle(g->device);
    for (int i = 0; i < FRAMES; i++)
        frame_wait(g, &g->frames[i], err, sizeof err);
}

void gpu_wait_frame(gpu *g)
{
    char err[64];
    frame_wait(g, &g->frames[g->cur], err, sizeof err);   /* (a failure shows again in gpu_draw) */
}

void gpu_poll(gpu *g)
{
    for (int i = 0; i < FRAMES; i++)
        if (g->frames[i].timing && g->vk.vkGetFenceStatus(g->device, g->frames[i].fence) == VK_SUCCESS)
            collect_timing(g, &g->frames[i]);
}

void gpu_resized(gpu *g)
{
    g->recreate = true;
}

double gpu_decode_ms(const gpu *g)
{
    return g->decode_ms;
}

void gpu_decode_stats(const gpu *g, uint64_t *count, double *sum_ms)
{
    *count = g->decode_count;
    *sum_ms = g->decode_sum;
}

void gpu_image_size(const gpu *g, int *w, int *h)
{
    *w = g->image_valid ? g->image_w : 0;
    *h = g->image_valid ? g->image_h : 0;
}

int gpu_set_image_size(gpu *g, int w, int h, char *err, size_t errlen)
{
    if (g->image && g->image_w == w && g->image_h == h)
        return 0;
    g->vk.vkDeviceWaitIdle(g->device);    /* frames in flight may still read the old image */
    destroy_image(g);
    uint32_t levels = 1;
    while (levels < 16 && (w >> levels > 0 || h >> levels > 0))
        levels++;
    VkImageCreateInfo ii = { .sType = VK_STRUCTURE_TYPE_IMAGE_CREATE_INFO,
                             .imageType = VK_IMAGE_TYPE_2D,
                             .format = g->image_format,
                             .extent = { (uint32_t)w, (uint32_t)h, 1 },
                             .mipLevels = levels,
                             .arrayLayers = 1,
                             .samples = VK_SAMPLE_COUNT_1_BIT,
                             .tiling = VK_IMAGE_TILING_OPTIMAL,
                             .usage = VK_IMAGE_USAGE_TRANSFER_DST_BIT | VK_IMAGE_USAGE_TRANSFER_SRC_BIT,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
                             .initialLayout = VK_IMAGE_LAYOUT_UNDEFINED };
    if (g->vk.vkCreateImage(g->device, &ii, NULL, &g->image) != VK_SUCCESS)
        return gerr(err, errlen, "cannot create a %dx%d image", w, h);
    VkMemoryRequirements mr;
    g->vk.vkGetImageMemoryRequirements(g->device, g->image, &mr);
    /* Device-local, and not host-visible where the device has such memory: pixels stay on the GPU. */
    int t = memory_type(g, mr.memoryTypeBits, 0, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT,
                        VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT);
    VkMemoryAllocateInfo ai = { .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = mr.size,
                                .memoryTypeIndex = (uint32_t)(t < 0 ? 0 : t) };
    if (t < 0 || g->vk.vkAllocateMemory(g->device, &ai, NULL, &g->image_mem) != VK_SUCCESS ||
        g->vk.vkBindImageMemory(g->device, g->image, g->image_mem, 0) != VK_SUCCESS) {
        destroy_image(g);
        return gerr(err, errlen, "cannot allocate device memory for a %dx%d image", w, h);
    }
    g->image_w = w;
    g->image_h = h;
    g->image_levels = levels;
    g->image_valid = false;
    return 0;
}

/* ---- frames ------------------------------------------------------------------------------------------------ */

static void collect_timing(gpu *g, frame *f)
{
    if (!f->timing)
        return;
    f->timing = false;
    uint64_t ts[2];
    if (g->timestamps && g->vk.vkGetQueryPoolResults(g->device, f->queries, 0, 2, sizeof ts, ts, sizeof ts[0],
                                                     VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT) == VK_SUCCESS)
        g->decode_ms = (double)(ts[1] - ts[0]) * g->timestamp_ns * 1e-6;
    else
        g->decode_ms = (glfwGetTime() - f->submit_time) * 1e3;
    g->decode_sum += g->decode_ms;
    g->decode_count++;
}

static int frame_wait(gpu *g, frame *f, char *err, size_t errlen)
{
    if (!f->submitted)
        return 0;
    if (g->vk.vkWaitForFences(g->device, 1, &f->fence, VK_TRUE, UINT64_MAX) != VK_SUCCESS)
        return gerr(err, errlen, "vkWaitForFences failed (device lost?)");
    g->vk.vkResetFences(g->device, 1, &f->fence);
    f->submitted = false;
    collect_timing(g, f);
    return 0;
}

static void level_barrier(gpu *g, VkCommandBuffer cmd, VkImage img, uint32_t level, VkPipelineStageFlags2 ss,
                          VkAccessFlags2 sa, VkPipelineStageFlags2 ds, VkAccessFlags2 da, VkImageLayout from,
                          VkImageLayout to)
{
    VkImageMemoryBarrier2 b = { .sType = VK_STRUCTURE_TYPE_IMAGE_MEMORY_BARRIER_2,
                                .srcStageMask = ss, .srcAccessMask = sa, .dstStageMask = ds, .dstAccessMask = da,
                                .oldLayout = from, .newLayout = to,
                                .srcQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED,
                                .dstQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED,
                                .image = img,
                                .subresourceRange = { VK_IMAGE_ASPECT_COLOR_BIT, level, 1, 0, 1 } };
    VkDependencyInfo di = { .sType = VK_STRUCTURE_TYPE_DEPENDENCY_INFO, .imageMemoryBarrierCount = 1,
                            .pImageMemoryBarriers = &b };
    g->vk.vkCmdPipelineBarrier2(cmd, &di);
}

static void image_barrier(gpu *g, VkCommandBuffer cmd, VkImage img, VkPipelineStageFlags2 ss, VkAccessFlags2 sa,
                          VkPipelineStageFlags2 ds, VkAccessFlags2 da, VkImageLayout from, VkImageLayout to)
{
    level_barrier(g, cmd, img, 0, ss, sa, ds, da, from, to);
}

static int level_size(int n, uint32_t level)
{
    n >>= level;
    return n > 0 ? n : 1;
}

/* Levels 1.. of the decoded image, each a linear blit of the one above (a 2x2 box where sizes are even). Level 0
 * is in TRANSFER_SRC_OPTIMAL (taesd's release barrier); every level ends there. */
static void record_mips(gpu *g, VkCommandBuffer cmd)
{
    for (uint32_t l = 1; l < g->image_levels; l++) {
        /* The previous frame's blit may still read this level: wait for transfers, discard its contents. */
        level_barrier(g, cmd, g->image, l, VK_PIPELINE_STAGE_2_ALL_TRANSFER_BIT, 0, VK_PIPELINE_STAGE_2_BLIT_BIT,
                      VK_ACCESS_2_TRANSFER_WRITE_BIT, VK_IMAGE_LAYOUT_UNDEFINED, VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL);
        VkImageBlit b = {
            .srcSubresource = { VK_IMAGE_ASPECT_COLOR_BIT, l - 1, 0, 1 },
            .srcOffsets = { { 0, 0, 0 }, { level_size(g->image_w, l - 1), level_size(g->image_h, l - 1), 1 } },
            .dstSubresource = { VK_IMAGE_ASPECT_COLOR_BIT, l, 0, 1 },
            .dstOffsets = { { 0, 0, 0 }, { level_size(g->image_w, l), level_size(g->image_h, l), 1 } },
        };
        g->vk.vkCmdBlitImage(cmd, g->image, VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL, g->image,
                             VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, 1, &b, VK_FILTER_LINEAR);
        level_barrier(g, cmd, g->image, l, VK_PIPELINE_STAGE_2_BLIT_BIT, VK_ACCESS_2_TRANSFER_WRITE_BIT,
                      VK_PIPELINE_STAGE_2_ALL_TRANSFER_BIT, VK_ACCESS_2_TRANSFER_READ_BIT,
                      VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL);
    }
}

static void host_read_barrier(gpu *g, VkCommandBuffer cmd, VkBuffer buf)
{
    VkBufferMemoryBarrier2 b = { .sType = VK_STRUCTURE_TYPE_BUFFER_MEMORY_BARRIER_2,
                                 .srcStageMask = VK_PIPELINE_STAGE_2_COPY_BIT,
                                 .srcAccessMask = VK_ACCESS_2_TRANSFER_WRITE_BIT,
                                 .dstStageMask = VK_PIPELINE_STAGE_2_HOST_BIT,
                                 .dstAccessMask = VK_ACCESS_2_HOST_READ_BIT,
                                 .srcQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED,
                                 .dstQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED,
                                 .buffer = buf, .size = VK_WHOLE_SIZE };
    VkDependencyInfo di = { .sType = VK_STRUCTURE_TYPE_DEPENDENCY_INFO, .bufferMemoryBarrierCount = 1,
                            .pBufferMemoryBarriers = &b };
    g->vk.vkCmdPipelineBarrier2(cmd, &di);
}

/* Where the decoded image goes in a W×H window: fitted (aspect kept, centred, black bars), or 1:1 centred
 * (cropped around the centre when larger). src/dst: x0, y0, x1, y1. */
static void place(int iw, int ih, int W, int H, bool one_to_one, int src[4], int dst[4])
{
    src[0] = src[1] = 0;
    src[2] = iw;
    src[3] = ih;
    if (one_to_one) {
        int cw = iw < W ? iw : W, ch = ih < H ? ih : H;
        src[0] = (iw - cw) / 2;
        src[1] = (ih - ch) / 2;
        src[2] = src[0] + cw;
        src[3] = src[1] + ch;
        dst[0] = (W - cw) / 2;
        dst[1] = (H - ch) / 2;
        dst[2] = dst[0] + cw;
        dst[3] = dst[1] + ch;
        return;
    }
    int dw, dh;
    if ((int64_t)iw * H <= (int64_t)W * ih) {   /* limited by the height */
        dh = H;
        dw = (int)(((int64_t)iw * H * 2 + ih) / (2 * ih));
    } else {
        dw = W;
        dh = (int)(((int64_t)ih * W * 2 + iw) / (2 * iw));
    }
    if (dw < 1)
        dw = 1;
    if (dh < 1)
        dh = 1;
    dst[0] = (W - dw) / 2;
    dst[1] = (H - dh) / 2;
    dst[2] = dst[0] + dw;
    dst[3] = dst[1] + dh;
}

static int ensure_buffer(gpu *g, gbuf *b, VkDeviceSize size, VkBufferUsageFlags usage, bool readback, char *err,
                         size_t errlen)
{
    if (b->buf && b->size >= size)
        return 0;
    buf_destroy(g, b);
    return buf_create(g, size, usage, readback, b, err, errlen);
}

gpu_status gpu_draw(gpu *g, const gpu_decode *dec, bool one_to_one, char *err, size_t errlen)
{
    err[0] = 0;
    frame *f = &g->frames[g->cur];
    uint32_t idx = 0;
    VkResult r = VK_ERROR_OUT_OF_DATE_KHR;
    for (int attempt = 0; attempt < 3 && r == VK_ERROR_OUT_OF_DATE_KHR; attempt++) {
        if (g->recreate || !g->swapchain) {
            int s = create_swapchain(g, err, errlen);
            if (s != 0)
                return s > 0 ? GPU_NOT_NOW : GPU_FAILED;
        }
        if (frame_wait(g, f, err, errlen) != 0)
            return GPU_FAILED;
        if (dec && ensure_buffer(g, &f->upload, dec->bytes, VK_BUFFER_USAGE_TRANSFER_SRC_BIT, false, err, errlen) != 0)
            return GPU_FAILED;
        size_t cap_bytes = (size_t)g->extent.width * g->extent.height * 4;
        if (g->d.capture && g->swapchain_readable &&
            ensure_buffer(g, &f->capture, cap_bytes, VK_BUFFER_USAGE_TRANSFER_DST_BIT, true, err, errlen) != 0)
            return GPU_FAILED;
        r = g->vk.vkAcquireNextImageKHR(g->device, g->swapchain, UINT64_MAX, f->acquired, VK_NULL_HANDLE, &idx);
        if (r == VK_ERROR_OUT_OF_DATE_KHR)
            g->recreate = true;
    }
    if (r == VK_ERROR_OUT_OF_DATE_KHR)
        return GPU_NOT_NOW;
    if (r != VK_SUCCESS && r != VK_SUBOPTIMAL_KHR) {
        gerr(err, errlen, "vkAcquireNextImageKHR failed (%d)", r);
        return GPU_FAILED;
    }
    if (r == VK_SUBOPTIMAL_KHR)
        g->recreate = true;            /* still presentable: re-created after this frame */

    /* From here on the frame is always submitted: the acquire semaphore must be waited on. */
    VkCommandBuffer cmd = f->cmd;
    VkCommandBufferBeginInfo bi = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                    .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT };
    g->vk.vkBeginCommandBuffer(cmd, &bi);
    bool decode_failed = false;
    if (dec && g->image) {
        memcpy(f->upload.map, dec->latent, dec->bytes);
        if (g->timestamps) {
            g->vk.vkCmdResetQueryPool(cmd, f->queries, 0, 2);
            g->vk.vkCmdWriteTimestamp2(cmd, VK_PIPELINE_STAGE_2_ALL_COMMANDS_BIT, f->queries, 0);
        }
        /* The host write above is made visible by the submission itself: no earlier access to name. The image
         * may still be read by the previous frame's blit (same queue): wait for transfers before overwriting it,
         * its old contents are discarded (the decode writes all of it). */
        taesd_cmd_input in = { .buffer = f->upload.buf, .layout = dec->f16 ? TAESD_GPU_FLOAT16 : TAESD_GPU_FLOAT32 };
        taesd_cmd_output out = { .image = g->image, .image_format = g->image_format };
        out.state.stage_before = VK_PIPELINE_STAGE_2_ALL_TRANSFER_BIT;
        out.state.layout_before = VK_IMAGE_LAYOUT_UNDEFINED;
        out.state.stage_after = VK_PIPELINE_STAGE_2_ALL_TRANSFER_BIT;
        out.state.access_after = VK_ACCESS_2_TRANSFER_READ_BIT;
        out.state.layout_after = VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL;
        taesd_result tr = taesd_cmd_decode(dec->plan, cmd, &in, &out);
        if (tr != TAESD_OK) {
            decode_failed = true;
            gerr(err, errlen, "taesd_cmd_decode: %s", taesd_result_string(tr));
        } else {
            g->image_valid = true;
            f->timing = true;
            if (g->timestamps)
                g->vk.vkCmdWriteTimestamp2(cmd, VK_PIPELINE_STAGE_2_ALL_COMMANDS_BIT, f->queries, 1);
            record_mips(g, cmd);
        }
    }

    VkImage sc = g->images[idx];
    int W = (int)g->extent.width, H = (int)g->extent.height;
    int src[4] = { 0 }, dst[4] = { 0, 0, 0, 0 };
    if (g->image_valid)
        place(g->image_w, g->image_h, W, H, one_to_one, src, dst);
    bool covered = g->image_valid && dst[0] == 0 && dst[1] == 0 && dst[2] == W && dst[3] == H;
    image_barrier(g, cmd, sc, VK_PIPELINE_STAGE_2_ALL_TRANSFER_BIT, 0, VK_PIPELINE_STAGE_2_ALL_TRANSFER_BIT,
                  VK_ACCESS_2_TRANSFER_WRITE_BIT, VK_IMAGE_LAYOUT_UNDEFINED, VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL);
    if (!covered) {
        VkClearColorValue black = { .float32 = { 0, 0, 0, 1 } };
        VkImageSubresourceRange range = { VK_IMAGE_ASPECT_COLOR_BIT, 0, 1, 0, 1 };
        g->vk.vkCmdClearColorImage(cmd, sc, VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, &black, 1, &range);
        image_barrier(g, cmd, sc, VK_PIPELINE_STAGE_2_CLEAR_BIT, VK_ACCESS_2_TRANSFER_WRITE_BIT,
                      VK_PIPELINE_STAGE_2_BLIT_BIT, VK_ACCESS_2_TRANSFER_WRITE_BIT,
                      VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL);
    }
    if (g->image_valid) {
        /* Smaller than the image: from the smallest mip level still at least as large as the rectangle, so the
         * linear filter never skips source pixels (no aliasing). */
        uint32_t level = 0;
        while (!one_to_one && level + 1 < g->image_levels &&
               level_size(g->image_w, level + 1) >= dst[2] - dst[0] &&
               level_size(g->image_h, level + 1) >= dst[3] - dst[1])
            level++;
        if (level > 0) {
            src[2] = level_size(g->image_w, level);
            src[3] = level_size(g->image_h, level);
        }
        bool same = src[2] - src[0] == dst[2] - dst[0] && src[3] - src[1] == dst[3] - dst[1];
        VkImageBlit region = {
            .srcSubresource = { VK_IMAGE_ASPECT_COLOR_BIT, level, 0, 1 },
            .srcOffsets = { { src[0], src[1], 0 }, { src[2], src[3], 1 } },
            .dstSubresource = { VK_IMAGE_ASPECT_COLOR_BIT, 0, 0, 1 },
            .dstOffsets = { { dst[0], dst[1], 0 }, { dst[2], dst[3], 1 } },
        };
        /* Same size: NEAREST, a plain copy of the bytes (with the RGBA/BGRA swizzle the formats imply). */
        g->vk.vkCmdBlitImage(cmd, g->image, VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL, sc,
                             VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, 1, &region,
                             same ? VK_FILTER_NEAREST : VK_FILTER_LINEAR);
    }
    f->captured = false;
    if (g->d.capture && g->swapchain_readable) {
        image_barrier(g, cmd, sc, VK_PIPELINE_STAGE_2_ALL_TRANSFER_BIT, VK_ACCESS_2_TRANSFER_WRITE_BIT,
                      VK_PIPELINE_STAGE_2_COPY_BIT, VK_ACCESS_2_TRANSFER_READ_BIT,
                      VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL);
        VkBufferImageCopy c = { .imageSubresource = { VK_IMAGE_ASPECT_COLOR_BIT, 0, 0, 1 },
                                .imageExtent = { g->extent.width, g->extent.height, 1 } };
        g->vk.vkCmdCopyImageToBuffer(cmd, sc, VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL, f->capture.buf, 1, &c);
        host_read_barrier(g, cmd, f->capture.buf);
        image_barrier(g, cmd, sc, VK_PIPELINE_STAGE_2_COPY_BIT, 0, VK_PIPELINE_STAGE_2_NONE, 0,
                      VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL, VK_IMAGE_LAYOUT_PRESENT_SRC_KHR);
        f->captured = true;
        f->cap_w = W;
        f->cap_h = H;
        f->cap_format = g->format.format;
    } else {
        image_barrier(g, cmd, sc, VK_PIPELINE_STAGE_2_ALL_TRANSFER_BIT, VK_ACCESS_2_TRANSFER_WRITE_BIT,
                      VK_PIPELINE_STAGE_2_NONE, 0, VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL,
                      VK_IMAGE_LAYOUT_PRESENT_SRC_KHR);
    }
    g->vk.vkEndCommandBuffer(cmd);

    VkSemaphoreSubmitInfo wait = { .sType = VK_STRUCTURE_TYPE_SEMAPHORE_SUBMIT_INFO, .semaphore = f->acquired,
                                   .stageMask = VK_PIPELINE_STAGE_2_ALL_TRANSFER_BIT };
    VkSemaphoreSubmitInfo signal = { .sType = VK_STRUCTURE_TYPE_SEMAPHORE_SUBMIT_INFO, .semaphore = g->rendered[idx],
                                     .stageMask = VK_PIPELINE_STAGE_2_ALL_COMMANDS_BIT };
    VkCommandBufferSubmitInfo cbi = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_SUBMIT_INFO, .commandBuffer = cmd };
    VkSubmitInfo2 si = { .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO_2, .waitSemaphoreInfoCount = 1,
                         .pWaitSemaphoreInfos = &wait, .commandBufferInfoCount = 1, .pCommandBufferInfos = &cbi,
                         .signalSemaphoreInfoCount = 1, .pSignalSemaphoreInfos = &signal };
    f->submit_time = glfwGetTime();
    r = g->vk.vkQueueSubmit2(g->queue, 1, &si, f->fence);
    if (r != VK_SUCCESS) {
        gerr(err, errlen, "vkQueueSubmit2 failed (%d)", r);
        return GPU_FAILED;
    }
    f->submitted = true;
    VkPresentInfoKHR pi = { .sType = VK_STRUCTURE_TYPE_PRESENT_INFO_KHR, .waitSemaphoreCount = 1,
                            .pWaitSemaphores = &g->rendered[idx], .swapchainCount = 1,
                            .pSwapchains = &g->swapchain, .pImageIndices = &idx };
    r = g->vk.vkQueuePresentKHR(g->queue, &pi);
    if (r == VK_ERROR_OUT_OF_DATE_KHR || r == VK_SUBOPTIMAL_KHR)
        g->recreate = true;
    else if (r != VK_SUCCESS) {
        gerr(err, errlen, "vkQueuePresentKHR failed (%d)", r);
        return GPU_FAILED;
    }
    g->last_presented = (int)g->cur;
    g->cur = (g->cur + 1) % FRAMES;
    return decode_failed ? GPU_DECODE_FAILED : GPU_PRESENTED;
}

/* ---- readbacks --------------------------------------------------------------------------------------------- */

/* 4-byte pixels (RGBA or BGRA) into an RGB PNG through the project's writer (bytes go through v/255 and come out
 * as round(v·255): unchanged). */
static int write_png(const uint8_t *px, int w, int h, bool bgra, const char *path, char *err, size_t errlen)
{
    size_t n = (size_t)w * (size_t)h;
    float *chw = malloc(n * 3 * sizeof(float));
    if (!chw)
        return gerr(err, errlen, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = px + 4 * i;
        chw[i] = (float)p[bgra ? 2 : 0] / 255.0f;
        chw[n + i] = (float)p[1] / 255.0f;
        chw[2 * n + i] = (float)p[bgra ? 0 : 2] / 255.0f;
    }
    char e[256];
    int rc = image_write_png(path, chw, 3, w, h, 1.0f, 0.0f, e, sizeof e);
    free(chw);
    if (rc != 0)
        return gerr(err, errlen, "%s: %s", path, e);
    return 0;
}

int gpu_save_screenshot(gpu *g, const char *path, char *err, size_t errlen)
{
    if (!g->swapchain_readable)
        return gerr(err, errlen, "the window surface does not allow reading its images back (no screenshot)");
    if (g->last_presented < 0 || !g->frames[g->last_presented].captured)
        return gerr(err, errlen, "no frame was presented");
    frame *f = &g->frames[g->last_presented];
    if (frame_wait(g, f, err, errlen) != 0)
        return -1;
    if (!is_rgba8(f->cap_format))
        return gerr(err, errlen, "swapchain format %d cannot be saved", f->cap_format);
    buf_invalidate(g, &f->capture);
    return write_png(f->capture.map, f->cap_w, f->cap_h, is_bgra(f->cap_format), path, err, errlen);
}

int gpu_save_decoded(gpu *g, const char *path, char *err, size_t errlen)
{
    if (!g->image_valid)
        return gerr(err, errlen, "nothing decoded yet");
    frame *f = &g->frames[g->cur];
    if (frame_wait(g, f, err, errlen) != 0)
        return -1;
    g->vk.vkDeviceWaitIdle(g->device);
    gbuf b;
    if (buf_create(g, (VkDeviceSize)g->image_w * g->image_h * 4, VK_BUFFER_USAGE_TRANSFER_DST_BIT, true, &b, err,
                   errlen) != 0)
        return -1;
    VkCommandBufferBeginInfo bi = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                    .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT };
    g->vk.vkBeginCommandBuffer(f->cmd, &bi);
    VkBufferImageCopy c = { .imageSubresource = { VK_IMAGE_ASPECT_COLOR_BIT, 0, 0, 1 },
                            .imageExtent = { (uint32_t)g->image_w, (uint32_t)g->image_h, 1 } };
    g->vk.vkCmdCopyImageToBuffer(f->cmd, g->image, VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL, b.buf, 1, &c);
    host_read_barrier(g, f->cmd, b.buf);
    g->vk.vkEndCommandBuffer(f->cmd);
    VkCommandBufferSubmitInfo cbi = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_SUBMIT_INFO, .commandBuffer = f->cmd };
    VkSubmitInfo2 si = { .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO_2, .commandBufferInfoCount = 1,
                         .pCommandBufferInfos = &cbi };
    int rc = -1;
    f->captured = false;               /* this slot's command buffer no longer holds a presented frame */
    if (g->last_presented == (int)g->cur)
        g->last_presented = -1;
    if (g->vk.vkQueueSubmit2(g->queue, 1, &si, f->fence) != VK_SUCCESS) {
        gerr(err, errlen, "vkQueueSubmit2 failed");
    } else {
        f->submitted = true;
        if (frame_wait(g, f, err, errlen) == 0) {
            buf_invalidate(g, &b);
            rc = write_png(b.map, g->image_w, g->image_h, is_bgra(g->image_format), path, err, errlen);
        }
    }
    buf_destroy(g, &b);
    return rc;
}
