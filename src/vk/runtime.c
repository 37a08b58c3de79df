/* runtime.c — the Vulkan runtime behind vk.h: loader, instance, device, buffers, one-shot submits.
 *
 * No global state: everything lives in the vk_runtime the caller owns. With validation on, the debug messenger
 * gets pUserData = rt, so a vk_runtime must not move (no memcpy/realloc of the struct) between vkrt_create and
 * vkrt_destroy. Every Vulkan call goes through rt->vk (generated from vk.xml by tools/gen_vk_dispatch.py);
 * libvulkan is opened at run time and never linked.
 */
#include "vk.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Platform: opening the Vulkan loader (the only OS-specific code in this file) ---------------------- */

#if defined(_WIN32)
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
static const char *const loader_names[] = {"vulkan-1.dll"};
static void *loader_open(const char *name, char *why, size_t whylen)
{
    HMODULE h = LoadLibraryA(name);
    if (!h)
        snprintf(why, whylen, "LoadLibrary error %lu", (unsigned long)GetLastError());
    return (void *)h;
}
static PFN_vkGetInstanceProcAddr loader_entry(void *lib)
{
    return (PFN_vkGetInstanceProcAddr)(void (*)(void))GetProcAddress((HMODULE)lib, "vkGetInstanceProcAddr");
}
static void loader_close(void *lib) { FreeLibrary((HMODULE)lib); }
#else
#include <dlfcn.h>
#if defined(__ANDROID__)
static const char *const loader_names[] = {"libvulkan.so"};
#elif defined(__APPLE__)
static const char *const loader_names[] = {"libvulkan.1.dylib", "libvulkan.dylib", "libMoltenVK.dylib"};
#else
static const char *const loader_names[] = {"libvulkan.so.1", "libvulkan.so"};
#endif
static void *loader_open(const char *name, char *why, size_t whylen)
{
    void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(why, whylen, "%s", e ? e : "unknown dlopen error");
    }
    return h;
}
static PFN_vkGetInstanceProcAddr loader_entry(void *lib)
{
    /* dlsym returns void *; go through a union-free cast the compiler accepts under -Wpedantic too. */
    void *sym = dlsym(lib, "vkGetInstanceProcAddr");
    PFN_vkGetInstanceProcAddr fn;
    memcpy(&fn, &sym, sizeof fn);
    return fn;
}
static void loader_close(void *lib) { dlclose(lib); }
#endif

/* ---- Helpers ------------------------------------------------------------------------------------------ */

#define VKRT_MSG_VALIDATION 100
#define VKRT_MIN_API VK_MAKE_API_VERSION(0, 1, 1, 0)
#define VKRT_MAX_API VK_MAKE_API_VERSION(0, 1, 3, 0)
#define VKRT_VALIDATION_LAYER "VK_LAYER_KHRONOS_validation"
#define MIB(x) ((double)(x) / (1024.0 * 1024.0))

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* "vkFoo failed: VK_ERROR_..." into err; OOM codes map to TAESD_ERROR_OUT_OF_MEMORY, the rest to VULKAN. */
static taesd_result vk_fail(char *err, size_t errlen, const char *what, VkResult r)
{
    set_err(err, errlen, "%s failed: %s", what, vkrt_result_name(r));
    if (r == VK_ERROR_OUT_OF_HOST_MEMORY || r == VK_ERROR_OUT_OF_DEVICE_MEMORY)
        return TAESD_ERROR_OUT_OF_MEMORY;
    return TAESD_ERROR_VULKAN;
}

static uint32_t api_major_minor(uint32_t v)
{
    return VK_MAKE_API_VERSION(0, VK_API_VERSION_MAJOR(v), VK_API_VERSION_MINOR(v), 0);
}

const char *vkrt_result_name(VkResult r)
{
    switch (r) {
    case VK_SUCCESS: return "VK_SUCCESS";
    case VK_NOT_READY: return "VK_NOT_READY";
    case VK_TIMEOUT: return "VK_TIMEOUT";
    case VK_EVENT_SET: return "VK_EVENT_SET";
    case VK_EVENT_RESET: return "VK_EVENT_RESET";
    case VK_INCOMPLETE: return "VK_INCOMPLETE";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_ERROR_FORMAT_NOT_SUPPORTED: return "VK_ERROR_FORMAT_NOT_SUPPORTED";
    case VK_ERROR_FRAGMENTED_POOL: return "VK_ERROR_FRAGMENTED_POOL";
    case VK_ERROR_UNKNOWN: return "VK_ERROR_UNKNOWN";
    case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
    case VK_ERROR_INVALID_EXTERNAL_HANDLE: return "VK_ERROR_INVALID_EXTERNAL_HANDLE";
    case VK_ERROR_FRAGMENTATION: return "VK_ERROR_FRAGMENTATION";
    case VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS: return "VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS";
    case VK_PIPELINE_COMPILE_REQUIRED: return "VK_PIPELINE_COMPILE_REQUIRED";
    case VK_ERROR_VALIDATION_FAILED_EXT: return "VK_ERROR_VALIDATION_FAILED_EXT";
    case VK_ERROR_INVALID_SHADER_NV: return "VK_ERROR_INVALID_SHADER_NV";
    case VK_ERROR_NOT_PERMITTED_KHR: return "VK_ERROR_NOT_PERMITTED_KHR";
    default: return "VK_RESULT_UNKNOWN";
    }
}

static bool has_extension(const VkExtensionProperties *exts, uint32_t n, const char *name)
{
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(exts[i].extensionName, name) == 0)
            return true;
    return false;
}

/* Instance extensions offered by the loader/ICDs (layer == NULL) or by one layer. malloc'ed; NULL + *n = 0 on failure. */
static VkExtensionProperties *instance_extensions(const vk_runtime *rt, const char *layer, uint32_t *n)
{
    *n = 0;
    uint32_t count = 0;
    if (rt->vk.vkEnumerateInstanceExtensionProperties(layer, &count, NULL) != VK_SUCCESS || count == 0)
        return NULL;
    VkExtensionProperties *p = calloc(count, sizeof *p);
    if (!p)
        return NULL;
    VkResult r = rt->vk.vkEnumerateInstanceExtensionProperties(layer, &count, p);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
        free(p);
        return NULL;
    }
    *n = count;
    return p;
}

static VkExtensionProperties *device_extensions(const vk_runtime *rt, VkPhysicalDevice pd, uint32_t *n)
{
    *n = 0;
    uint32_t count = 0;
    if (rt->vk.vkEnumerateDeviceExtensionProperties(pd, NULL, &count, NULL) != VK_SUCCESS || count == 0)
        return NULL;
    VkExtensionProperties *p = calloc(count, sizeof *p);
    if (!p)
        return NULL;
    VkResult r = rt->vk.vkEnumerateDeviceExtensionProperties(pd, NULL, &count, p);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
        free(p);
        return NULL;
    }
    *n = count;
    return p;
}

/* ---- Validation messenger ----------------------------------------------------------------------------- */

static VKAPI_ATTR VkBool32 VKAPI_CALL debug_callback(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                     VkDebugUtilsMessageTypeFlagsEXT types,
                                                     const VkDebugUtilsMessengerCallbackDataEXT *data, void *user)
{
    (void)types;
    vk_runtime *rt = user;
    if (!rt)
        return VK_FALSE;
    if (!(severity & (VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT)))
        return VK_FALSE;
    rt->validation_messages++;
    if (rt->log) {
        char line[2048];
        const char *msg = data && data->pMessage ? data->pMessage : "(no message)";
        snprintf(line, sizeof line, "vulkan validation %s: %s",
                 (severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) ? "error" : "warning", msg);
        for (char *p = line; *p; p++)   /* one line, no newline */
            if (*p == '\n' || *p == '\r')
                *p = ' ';
        rt->log(TAESD_LOG_ERROR, VKRT_MSG_VALIDATION, line, rt->log_user);
    }
    return VK_FALSE;
}

static void messenger_info(vk_runtime *rt, VkDebugUtilsMessengerCreateInfoEXT *mi)
{
    memset(mi, 0, sizeof *mi);
    mi->sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT;
    mi->messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
    mi->messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                      VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT;
    mi->pfnUserCallback = debug_callback;
    mi->pUserData = rt;
}

/* ---- Loader + instance -------------------------------------------------------------------------------- */

static taesd_result open_loader(vk_runtime *rt, char *err, size_t errlen)
{
    char why[512] = "";
    for (size_t i = 0; i < sizeof loader_names / sizeof loader_names[0] && !rt->library; i++) {
        char this_why[512] = "";
        rt->library = loader_open(loader_names[i], this_why, sizeof this_why);
        if (!rt->library && i == 0)
            snprintf(why, sizeof why, "%s", this_why);
    }
    if (!rt->library) {
        set_err(err, errlen, "cannot load the Vulkan loader (%s): %s", loader_names[0], why);
        return TAESD_ERROR_NO_DEVICE;
    }
    PFN_vkGetInstanceProcAddr gipa = loader_entry(rt->library);
    if (!gipa) {
        set_err(err, errlen, "cannot load the Vulkan loader (%s): vkGetInstanceProcAddr not found", loader_names[0]);
        return TAESD_ERROR_NO_DEVICE;
    }
    vk_dispatch_load_global(&rt->vk, gipa);
    if (!rt->vk.vkCreateInstance || !rt->vk.vkEnumerateInstanceExtensionProperties ||
        !rt->vk.vkEnumerateInstanceLayerProperties) {
        set_err(err, errlen, "the Vulkan loader (%s) lacks vkCreateInstance", loader_names[0]);
        return TAESD_ERROR_NO_DEVICE;
    }
    return TAESD_OK;
}

static bool layer_present(const vk_runtime *rt, const char *name)
{
    uint32_t n = 0;
    if (rt->vk.vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || n == 0)
        return false;
    VkLayerProperties *layers = calloc(n, sizeof *layers);
    if (!layers)
        return false;
    bool found = false;
    VkResult r = rt->vk.vkEnumerateInstanceLayerProperties(&n, layers);
    if (r == VK_SUCCESS || r == VK_INCOMPLETE)
        for (uint32_t i = 0; i < n && !found; i++)
            found = strcmp(layers[i].layerName, name) == 0;
    free(layers);
    return found;
}

static taesd_result create_instance(vk_runtime *rt, bool validation, char *err, size_t errlen)
{
    uint32_t loader_version = VK_API_VERSION_1_0;
    if (rt->vk.vkEnumerateInstanceVersion && rt->vk.vkEnumerateInstanceVersion(&loader_version) != VK_SUCCESS)
        loader_version = VK_API_VERSION_1_0;
    if (api_major_minor(loader_version) < VKRT_MIN_API) {
        set_err(err, errlen, "the Vulkan loader supports Vulkan %u.%u; Vulkan 1.1 is required",
                VK_API_VERSION_MAJOR(loader_version), VK_API_VERSION_MINOR(loader_version));
        return TAESD_ERROR_NO_DEVICE;
    }
    uint32_t api = api_major_minor(loader_version) < VKRT_MAX_API ? api_major_minor(loader_version) : VKRT_MAX_API;

    uint32_t n_exts = 0, n_layer_exts = 0;
    VkExtensionProperties *exts = instance_extensions(rt, NULL, &n_exts);
    VkExtensionProperties *layer_exts = NULL;
    const char *enabled_exts[4];
    uint32_t n_enabled = 0;
    VkInstanceCreateFlags flags = 0;
    taesd_result res = TAESD_OK;

    if (has_extension(exts, n_exts, VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME)) {
        enabled_exts[n_enabled++] = VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME;
        flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
    }

    const char *layers[1] = {VKRT_VALIDATION_LAYER};
    VkDebugUtilsMessengerCreateInfoEXT mi;
    VkValidationFeatureEnableEXT sync_feature = VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT;
    VkValidationFeaturesEXT vf = {.sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT};
    const void *chain = NULL;

    if (validation) {
        if (!layer_present(rt, VKRT_VALIDATION_LAYER)) {
            set_err(err, errlen, "validation requested but " VKRT_VALIDATION_LAYER
                                 " is not installed (apt-get install vulkan-validationlayers)");
            res = TAESD_ERROR_UNSUPPORTED;
            goto out;
        }
        layer_exts = instance_extensions(rt, VKRT_VALIDATION_LAYER, &n_layer_exts);
        if (!has_extension(exts, n_exts, VK_EXT_DEBUG_UTILS_EXTENSION_NAME) &&
            !has_extension(layer_exts, n_layer_exts, VK_EXT_DEBUG_UTILS_EXTENSION_NAME)) {
            set_err(err, errlen, "validation requested but " VK_EXT_DEBUG_UTILS_EXTENSION_NAME " is not available");
            res = TAESD_ERROR_UNSUPPORTED;
            goto out;
        }
        enabled_exts[n_enabled++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
        /* The messenger chained into the create info also reports vkCreateInstance / vkDestroyInstance. */
        messenger_info(rt, &mi);
        chain = &mi;
        if (has_extension(layer_exts, n_layer_exts, VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME)) {
            enabled_exts[n_enabled++] = VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME;
            vf.enabledValidationFeatureCount = 1;
            vf.pEnabledValidationFeatures = &sync_feature;
            vf.pNext = chain;
            chain = &vf;
        }
    }

    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "libtaesd",
        .pEngineName = "taesd-vk",
        .apiVersion = api,
    };
    VkInstanceCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        .pNext = chain,
        .flags = flags,
        .pApplicationInfo = &app,
        .enabledLayerCount = validation ? 1u : 0u,
        .ppEnabledLayerNames = validation ? layers : NULL,
        .enabledExtensionCount = n_enabled,
        .ppEnabledExtensionNames = n_enabled ? enabled_exts : NULL,
    };
    VkResult r = rt->vk.vkCreateInstance(&ci, rt->alloc, &rt->instance);
    if (r != VK_SUCCESS) {
        rt->instance = VK_NULL_HANDLE;
        if (r == VK_ERROR_INCOMPATIBLE_DRIVER) {
            set_err(err, errlen, "no Vulkan device found (vkCreateInstance: %s)", vkrt_result_name(r));
            res = TAESD_ERROR_NO_DEVICE;
        } else {
            res = vk_fail(err, errlen, "vkCreateInstance", r);
        }
        goto out;
    }
    rt->owns_instance = true;
    rt->instance_api = api;
    vk_dispatch_load_instance(&rt->vk, rt->instance);

    if (validation) {
        if (!rt->vk.vkCreateDebugUtilsMessengerEXT) {
            set_err(err, errlen, "validation requested but vkCreateDebugUtilsMessengerEXT is missing");
            res = TAESD_ERROR_UNSUPPORTED;
            goto out;
        }
        messenger_info(rt, &mi);
        r = rt->vk.vkCreateDebugUtilsMessengerEXT(rt->instance, &mi, rt->alloc, &rt->messenger);
        if (r != VK_SUCCESS) {
            rt->messenger = VK_NULL_HANDLE;
            res = vk_fail(err, errlen, "vkCreateDebugUtilsMessengerEXT", r);
            goto out;
        }
    }
out:
    free(exts);
    free(layer_exts);
    return res;
}

/* ---- Physical devices --------------------------------------------------------------------------------- */

typedef struct device_caps {
    VkPhysicalDeviceProperties props;
    uint32_t subgroup_size;
    bool has_16bit_storage_ext, has_float16_ext, has_portability_subset;
    bool storage16, float16;             /* storageBuffer16BitAccess, shaderFloat16 */
    bool use_core12;                     /* query/enable through VkPhysicalDeviceVulkan11/12Features */
    int compute_family;                  /* -1: none */
} device_caps;

static int type_score(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 4;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 3;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 1;
    default: return 0;
    }
}

/* Instance API version as created (min(1.3, loader); the host's, in host mode), capped at 1.3: it decides which
 * structs the instance can query. */
static uint32_t instance_api(const vk_runtime *rt)
{
    if (rt->instance_api)
        return rt->instance_api < VKRT_MAX_API ? rt->instance_api : VKRT_MAX_API;
    uint32_t v = VK_API_VERSION_1_0;
    if (rt->vk.vkEnumerateInstanceVersion && rt->vk.vkEnumerateInstanceVersion(&v) != VK_SUCCESS)
        v = VK_API_VERSION_1_0;
    v = api_major_minor(v);
    return v < VKRT_MAX_API ? v : VKRT_MAX_API;
}

static void query_caps(const vk_runtime *rt, VkPhysicalDevice pd, device_caps *c)
{
    memset(c, 0, sizeof *c);
    c->compute_family = -1;
    rt->vk.vkGetPhysicalDeviceProperties(pd, &c->props);
    uint32_t dev_api = api_major_minor(c->props.apiVersion);
    if (dev_api < VKRT_MIN_API || !rt->vk.vkGetPhysicalDeviceFeatures2 || !rt->vk.vkGetPhysicalDeviceProperties2)
        return;   /* unusable: Vulkan 1.0 device */
    uint32_t api = dev_api < instance_api(rt) ? dev_api : instance_api(rt);

    uint32_t n_exts = 0;
    VkExtensionProperties *exts = device_extensions(rt, pd, &n_exts);
    c->has_16bit_storage_ext = has_extension(exts, n_exts, VK_KHR_16BIT_STORAGE_EXTENSION_NAME);
    c->has_float16_ext = has_extension(exts, n_exts, VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME);
    c->has_portability_subset = has_extension(exts, n_exts, "VK_KHR_portability_subset");
    free(exts);

    VkPhysicalDeviceSubgroupProperties sg = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sg};
    rt->vk.vkGetPhysicalDeviceProperties2(pd, &p2);
    c->subgroup_size = sg.subgroupSize;

    if (api >= VK_API_VERSION_1_2) {
        c->use_core12 = true;
        VkPhysicalDeviceVulkan12Features f12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
        VkPhysicalDeviceVulkan11Features f11 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
                                                .pNext = &f12};
        VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f11};
        rt->vk.vkGetPhysicalDeviceFeatures2(pd, &f2);
        c->storage16 = f11.storageBuffer16BitAccess;
        c->float16 = f12.shaderFloat16;
    } else if (c->has_float16_ext) {
        /* Vulkan 1.1: 16-bit storage is core (the feature may still be off); shaderFloat16 needs the extension. */
        VkPhysicalDeviceShaderFloat16Int8Features ff = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
        VkPhysicalDevice16BitStorageFeatures fs = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
                                                   .pNext = &ff};
        VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &fs};
        rt->vk.vkGetPhysicalDeviceFeatures2(pd, &f2);
        c->storage16 = fs.storageBuffer16BitAccess;
        c->float16 = ff.shaderFloat16;
    }

    uint32_t nq = 0;
    rt->vk.vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, NULL);
    VkQueueFamilyProperties *q = nq ? calloc(nq, sizeof *q) : NULL;
    if (q) {
        rt->vk.vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, q);
        const VkQueueFlags gc = VK_QUEUE_GRAPHICS_BIT | VK_QUEUE_COMPUTE_BIT;
        for (uint32_t i = 0; i < nq && c->compute_family < 0; i++)
            if (q[i].queueCount > 0 && (q[i].queueFlags & gc) == gc)
                c->compute_family = (int)i;
        for (uint32_t i = 0; i < nq && c->compute_family < 0; i++)
            if (q[i].queueCount > 0 && (q[i].queueFlags & VK_QUEUE_COMPUTE_BIT))
                c->compute_family = (int)i;
        free(q);
    }
}

static bool caps_usable(const device_caps *c)
{
    return api_major_minor(c->props.apiVersion) >= VKRT_MIN_API && c->compute_family >= 0;
}

static void fill_info(const VkPhysicalDeviceProperties *p, bool fp16, taesd_device_info *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", p->deviceName);
    out->vendor_id = p->vendorID;
    out->device_id = p->deviceID;
    out->type = (int)p->deviceType;
    out->api_version = p->apiVersion;
    out->fp16 = fp16;
    out->max_storage_buffer_range = p->limits.maxStorageBufferRange;
}

/* All physical devices (malloc'ed). */
static taesd_result enumerate(vk_runtime *rt, VkPhysicalDevice **out, uint32_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    uint32_t count = 0;
    VkResult r = rt->vk.vkEnumeratePhysicalDevices(rt->instance, &count, NULL);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE)
        return vk_fail(err, errlen, "vkEnumeratePhysicalDevices", r);
    if (count == 0) {
        set_err(err, errlen, "no Vulkan device found");
        return TAESD_ERROR_NO_DEVICE;
    }
    VkPhysicalDevice *pds = calloc(count, sizeof *pds);
    if (!pds) {
        set_err(err, errlen, "out of host memory");
        return TAESD_ERROR_OUT_OF_MEMORY;
    }
    r = rt->vk.vkEnumeratePhysicalDevices(rt->instance, &count, pds);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
        free(pds);
        return vk_fail(err, errlen, "vkEnumeratePhysicalDevices", r);
    }
    *out = pds;
    *n = count;
    return TAESD_OK;
}

/* ---- Runtime ------------------------------------------------------------------------------------------ */

static taesd_result create_device(vk_runtime *rt, const device_caps *c, char *err, size_t errlen)
{
    rt->queue_family = (uint32_t)c->compute_family;
    rt->props = c->props;
    rt->subgroup_size = c->subgroup_size;
    rt->vk.vkGetPhysicalDeviceMemoryProperties(rt->physical, &rt->mem_props);
    rt->fp16 = c->storage16 && c->float16;

    float priority = 1.0f;
    VkDeviceQueueCreateInfo qi = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
        .queueFamilyIndex = rt->queue_family,
        .queueCount = 1,
        .pQueuePriorities = &priority,
    };
    const char *exts[3];
    uint32_t n_exts = 0;
    if (c->has_portability_subset)
        exts[n_exts++] = "VK_KHR_portability_subset";   /* required when the device offers it */

    VkPhysicalDeviceVulkan12Features f12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    VkPhysicalDeviceVulkan11Features f11 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
    VkPhysicalDeviceShaderFloat16Int8Features ff = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
    VkPhysicalDevice16BitStorageFeatures fs = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
    const void *chain = NULL;
    if (rt->fp16) {
        if (c->use_core12) {
            f11.storageBuffer16BitAccess = VK_TRUE;
            f12.shaderFloat16 = VK_TRUE;
            f11.pNext = &f12;
            chain = &f11;
        } else {
            fs.storageBuffer16BitAccess = VK_TRUE;
            ff.shaderFloat16 = VK_TRUE;
            fs.pNext = &ff;
            chain = &fs;
            if (c->has_16bit_storage_ext)
                exts[n_exts++] = VK_KHR_16BIT_STORAGE_EXTENSION_NAME;
            exts[n_exts++] = VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME;
        }
    }
    VkDeviceCreateInfo di = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
        .pNext = chain,
        .queueCreateInfoCount = 1,
        .pQueueCreateInfos = &qi,
        .enabledExtensionCount = n_exts,
        .ppEnabledExtensionNames = n_exts ? exts : NULL,
    };
    VkResult r = rt->vk.vkCreateDevice(rt->physical, &di, rt->alloc, &rt->device);
    if (r != VK_SUCCESS) {
        rt->device = VK_NULL_HANDLE;
        return vk_fail(err, errlen, "vkCreateDevice", r);
    }
    rt->owns_device = true;
    vk_dispatch_load_device(&rt->vk, rt->device);
    if (!rt->vk.vkGetDeviceQueue || !rt->vk.vkCreateCommandPool || !rt->vk.vkQueueSubmit) {
        set_err(err, errlen, "the Vulkan device lacks core entry points");
        return TAESD_ERROR_VULKAN;
    }
    rt->vk.vkGetDeviceQueue(rt->device, rt->queue_family, 0, &rt->queue);

    VkCommandPoolCreateInfo pi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
        .queueFamilyIndex = rt->queue_family,
    };
    r = rt->vk.vkCreateCommandPool(rt->device, &pi, rt->alloc, &rt->command_pool);
    if (r != VK_SUCCESS) {
        rt->command_pool = VK_NULL_HANDLE;
        return vk_fail(err, errlen, "vkCreateCommandPool", r);
    }
    return TAESD_OK;
}

taesd_result vkrt_create(vk_runtime *rt, int device_index, bool validation, taesd_log_fn log, void *log_user,
                         char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!rt) {
        set_err(err, errlen, "vkrt_create: no runtime");
        return TAESD_ERROR_INVALID_ARGUMENT;
    }
    memset(rt, 0, sizeof *rt);
    rt->log = log;
    rt->log_user = log_user;
    if (device_index < 0) {
        set_err(err, errlen, "device index %d is negative (0 picks the best device)", device_index);
        return TAESD_ERROR_INVALID_ARGUMENT;
    }

    VkPhysicalDevice *pds = NULL;
    uint32_t n = 0;
    device_caps best_caps;
    memset(&best_caps, 0, sizeof best_caps);
    taesd_result res = open_loader(rt, err, errlen);
    if (res == TAESD_OK)
        res = create_instance(rt, validation, err, errlen);
    if (res == TAESD_OK)
        res = enumerate(rt, &pds, &n, err, errlen);
    if (res == TAESD_OK) {
        if (device_index > 0) {
            if ((uint32_t)device_index > n) {
                set_err(err, errlen, "device %d does not exist (%u devices found)", device_index, n);
                res = TAESD_ERROR_NO_DEVICE;
            } else {
                query_caps(rt, pds[device_index - 1], &best_caps);
                if (!caps_usable(&best_caps)) {
                    set_err(err, errlen, "device %d (%s) is unusable: it needs Vulkan 1.1 and a compute queue",
                            device_index, best_caps.props.deviceName);
                    res = TAESD_ERROR_NO_DEVICE;
                } else {
                    rt->physical = pds[device_index - 1];
                }
            }
        } else {
            int best_score = -1;
            for (uint32_t i = 0; i < n; i++) {
                device_caps c;
                query_caps(rt, pds[i], &c);
                if (!caps_usable(&c))
                    continue;
                int s = type_score(c.props.deviceType);
                if (s > best_score) {   /* strict: ties keep the lower index */
                    best_score = s;
                    best_caps = c;
                    rt->physical = pds[i];
                }
            }
            if (best_score < 0) {
                set_err(err, errlen, "no usable Vulkan device found (%u devices, none with Vulkan 1.1 and a compute "
                                     "queue)", n);
                res = TAESD_ERROR_NO_DEVICE;
            }
        }
    }
    free(pds);
    if (res == TAESD_OK)
        res = create_device(rt, &best_caps, err, errlen);
    if (res != TAESD_OK) {
        vkrt_destroy(rt);
        rt->log = log;
        rt->log_user = log_user;
    }
    return res;
}

taesd_result vkrt_create_from_host(vk_runtime *rt, const taesd_vulkan_host *host, taesd_log_fn log, void *log_user,
                                   char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!rt) {
        set_err(err, errlen, "vkrt_create_from_host: no runtime");
        return TAESD_ERROR_INVALID_ARGUMENT;
    }
    memset(rt, 0, sizeof *rt);
    rt->log = log;
    rt->log_user = log_user;
    if (!host) {
        set_err(err, errlen, "host device: no taesd_vulkan_host given");
        return TAESD_ERROR_INVALID_ARGUMENT;
    }
    const char *missing = !host->get_instance_proc_addr ? "get_instance_proc_addr"
                        : !host->instance ? "instance"
                        : !host->physical_device ? "physical_device"
                        : !host->device ? "device"
                        : !host->queue ? "queue"
                        : !host->instance_api_version ? "instance_api_version" : NULL;
    if (missing) {
        set_err(err, errlen, "host device: taesd_vulkan_host.%s is not set", missing);
        return TAESD_ERROR_INVALID_ARGUMENT;
    }
    uint32_t inst_api = api_major_minor(host->instance_api_version);
    if (inst_api < VKRT_MIN_API) {
        set_err(err, errlen, "host device: the instance was created for Vulkan %u.%u; taesd needs Vulkan 1.1",
                VK_API_VERSION_MAJOR(inst_api), VK_API_VERSION_MINOR(inst_api));
        return TAESD_ERROR_UNSUPPORTED;
    }
    rt->alloc = host->allocator;
    rt->instance = host->instance;
    rt->instance_api = inst_api;
    rt->physical = host->physical_device;
    rt->device = host->device;
    rt->queue_family = host->queue_family_index;
    rt->queue = host->queue;
    /* owns_instance / owns_device stay false: nothing of the host's is ever destroyed. */

    taesd_result res = TAESD_OK;
    vk_dispatch_load_global(&rt->vk, host->get_instance_proc_addr);
    vk_dispatch_load_instance(&rt->vk, rt->instance);
    if (!rt->vk.vkGetPhysicalDeviceProperties || !rt->vk.vkGetPhysicalDeviceProperties2 ||
        !rt->vk.vkGetPhysicalDeviceFeatures2 || !rt->vk.vkGetPhysicalDeviceMemoryProperties ||
        !rt->vk.vkGetPhysicalDeviceQueueFamilyProperties || !rt->vk.vkEnumerateDeviceExtensionProperties ||
        !rt->vk.vkGetDeviceProcAddr) {
        set_err(err, errlen, "host device: get_instance_proc_addr returns no Vulkan 1.1 instance commands");
        res = TAESD_ERROR_INVALID_ARGUMENT;
        goto out;
    }

    device_caps c;
    query_caps(rt, rt->physical, &c);
    if (api_major_minor(c.props.apiVersion) < VKRT_MIN_API) {
        set_err(err, errlen, "host device: %s supports Vulkan %u.%u; taesd needs Vulkan 1.1", c.props.deviceName,
                VK_API_VERSION_MAJOR(c.props.apiVersion), VK_API_VERSION_MINOR(c.props.apiVersion));
        res = TAESD_ERROR_UNSUPPORTED;
        goto out;
    }
    uint32_t nq = 0;
    rt->vk.vkGetPhysicalDeviceQueueFamilyProperties(rt->physical, &nq, NULL);
    VkQueueFamilyProperties *q = nq ? calloc(nq, sizeof *q) : NULL;
    VkQueueFlags qflags = 0;
    if (q) {
        rt->vk.vkGetPhysicalDeviceQueueFamilyProperties(rt->physical, &nq, q);
        if (rt->queue_family < nq)
            qflags = q[rt->queue_family].queueFlags;
        free(q);
    }
    if (rt->queue_family >= nq) {
        set_err(err, errlen, "host device: queue_family_index %u does not exist (%u families)", rt->queue_family, nq);
        res = TAESD_ERROR_INVALID_ARGUMENT;
        goto out;
    }
    if (!(qflags & VK_QUEUE_COMPUTE_BIT)) {
        set_err(err, errlen, "host device: queue family %u has no compute support", rt->queue_family);
        res = TAESD_ERROR_UNSUPPORTED;
        goto out;
    }
    if (host->fp16_enabled && !(c.storage16 && c.float16)) {
        set_err(err, errlen, "host device: fp16_enabled is set but %s does not support storageBuffer16BitAccess "
                             "and shaderFloat16", c.props.deviceName);
        res = TAESD_ERROR_INVALID_ARGUMENT;
        goto out;
    }
    rt->fp16 = host->fp16_enabled;
    rt->props = c.props;
    rt->subgroup_size = c.subgroup_size;
    rt->vk.vkGetPhysicalDeviceMemoryProperties(rt->physical, &rt->mem_props);

    vk_dispatch_load_device(&rt->vk, rt->device);
    if (!rt->vk.vkCreateCommandPool || !rt->vk.vkQueueSubmit || !rt->vk.vkCreateBuffer || !rt->vk.vkWaitForFences) {
        set_err(err, errlen, "host device: vkGetDeviceProcAddr returns no core device commands");
        res = TAESD_ERROR_INVALID_ARGUMENT;
        goto out;
    }
    /* synchronization2 (taesd_cmd_decode only): core in 1.3, else VK_KHR_synchronization2's entry point. */
    if (host->synchronization2_enabled) {
        if (!rt->vk.vkCmdPipelineBarrier2)
            rt->vk.vkCmdPipelineBarrier2 =
                (PFN_vkCmdPipelineBarrier2)rt->vk.vkGetDeviceProcAddr(rt->device, "vkCmdPipelineBarrier2KHR");
        rt->sync2 = rt->vk.vkCmdPipelineBarrier2 != NULL;
    }
    VkCommandPoolCreateInfo pi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
        .queueFamilyIndex = rt->queue_family,
    };
    VkResult r = rt->vk.vkCreateCommandPool(rt->device, &pi, rt->alloc, &rt->command_pool);
    if (r != VK_SUCCESS) {
        rt->command_pool = VK_NULL_HANDLE;
        res = vk_fail(err, errlen, "vkCreateCommandPool", r);
    }
out:
    if (res != TAESD_OK) {
        vkrt_destroy(rt);
        rt->log = log;
        rt->log_user = log_user;
    }
    return res;
}

void vkrt_destroy(vk_runtime *rt)
{
    if (!rt)
        return;
    if (rt->device) {
        /* On the host's device, wait for nothing: every taesd submit was waited on by its fence, and idling the
         * host's device or queue would need the host's queues externally synchronized. */
        if (rt->owns_device && rt->vk.vkDeviceWaitIdle)
            rt->vk.vkDeviceWaitIdle(rt->device);
        if (rt->command_pool && rt->vk.vkDestroyCommandPool)
            rt->vk.vkDestroyCommandPool(rt->device, rt->command_pool, rt->alloc);
        if (rt->owns_device && rt->vk.vkDestroyDevice)
            rt->vk.vkDestroyDevice(rt->device, rt->alloc);
    }
    if (rt->instance && rt->owns_instance) {
        if (rt->messenger && rt->vk.vkDestroyDebugUtilsMessengerEXT)
            rt->vk.vkDestroyDebugUtilsMessengerEXT(rt->instance, rt->messenger, rt->alloc);
        if (rt->vk.vkDestroyInstance)
            rt->vk.vkDestroyInstance(rt->instance, rt->alloc);
    }
    if (rt->library)
        loader_close(rt->library);
    /* validation_messages survives so a caller can check it after teardown (messages at destroy time count). */
    uint32_t messages = rt->validation_messages;
    memset(rt, 0, sizeof *rt);
    rt->validation_messages = messages;
}

void vkrt_device_info(const vk_runtime *rt, taesd_device_info *out)
{
    if (!out)
        return;
    if (!rt) {
        memset(out, 0, sizeof *out);
        return;
    }
    fill_info(&rt->props, rt->fp16, out);
}

taesd_result vkrt_list_devices(taesd_device_info *out, int *count, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!count || *count < 0 || (*count > 0 && !out)) {
        set_err(err, errlen, "vkrt_list_devices: bad count/out");
        return TAESD_ERROR_INVALID_ARGUMENT;
    }
    int capacity = *count;
    *count = 0;
    vk_runtime tmp;   /* no messenger, so moving it would be harmless; it stays on this stack frame anyway */
    memset(&tmp, 0, sizeof tmp);
    VkPhysicalDevice *pds = NULL;
    uint32_t n = 0;
    taesd_result res = open_loader(&tmp, err, errlen);
    if (res == TAESD_OK)
        res = create_instance(&tmp, false, err, errlen);
    if (res == TAESD_OK)
        res = enumerate(&tmp, &pds, &n, err, errlen);
    if (res == TAESD_OK) {
        for (uint32_t i = 0; i < n && (int)i < capacity; i++) {
            device_caps c;
            query_caps(&tmp, pds[i], &c);
            fill_info(&c.props, c.storage16 && c.float16, &out[i]);
        }
        *count = (int)n;
    }
    free(pds);
    vkrt_destroy(&tmp);
    return res;
}

/* ---- Buffers ------------------------------------------------------------------------------------------ */

/* Memory types allowed by `bits` with all of `need`, those with `prefer` first; returns how many. */
static uint32_t memory_candidates(const vk_runtime *rt, uint32_t bits, VkMemoryPropertyFlags need,
                                  VkMemoryPropertyFlags prefer, uint32_t out[VK_MAX_MEMORY_TYPES])
{
    uint32_t n = 0;
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t i = 0; i < rt->mem_props.memoryTypeCount; i++) {
            VkMemoryPropertyFlags f = rt->mem_props.memoryTypes[i].propertyFlags;
            if (!(bits & (1u << i)) || (f & need) != need)
                continue;
            bool preferred = (f & prefer) == prefer;
            if ((pass == 0) == preferred)
                out[n++] = i;
        }
    return n;
}

taesd_result vkrt_buffer_create(vk_runtime *rt, VkDeviceSize size, bool host_visible, vk_buffer *out, char *err,
                                size_t errlen)
{
    if (!out) {
        set_err(err, errlen, "vkrt_buffer_create: no output");
        return TAESD_ERROR_INVALID_ARGUMENT;
    }
    memset(out, 0, sizeof *out);
    if (!rt || !rt->device) {
        set_err(err, errlen, "vkrt_buffer_create: no device");
        return TAESD_ERROR_INVALID_ARGUMENT;
    }
    if (size == 0) {
        set_err(err, errlen, "vkrt_buffer_create: size 0");
        return TAESD_ERROR_INVALID_ARGUMENT;
    }
    VkDeviceSize limit = rt->props.limits.maxStorageBufferRange;
    if (size > limit) {
        set_err(err, errlen, "buffer of %.1f MiB (%llu bytes) exceeds the device's maxStorageBufferRange (%.1f MiB)",
                MIB(size), (unsigned long long)size, MIB(limit));
        return TAESD_ERROR_OUT_OF_MEMORY;
    }
    VkBufferCreateInfo bi = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = size,
        .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_UNIFORM_TEXEL_BUFFER_BIT |
                 VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    VkResult r = rt->vk.vkCreateBuffer(rt->device, &bi, rt->alloc, &out->buffer);
    if (r != VK_SUCCESS) {
        out->buffer = VK_NULL_HANDLE;
        return vk_fail(err, errlen, "vkCreateBuffer", r);
    }
    VkMemoryRequirements req;
    rt->vk.vkGetBufferMemoryRequirements(rt->device, out->buffer, &req);

    uint32_t types[VK_MAX_MEMORY_TYPES];
    uint32_t nt;
    if (host_visible)
        nt = memory_candidates(rt, req.memoryTypeBits,
                               VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
                               VK_MEMORY_PROPERTY_HOST_CACHED_BIT, types);
    else
        nt = memory_candidates(rt, req.memoryTypeBits, 0, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, types);
    if (nt == 0) {
        vkrt_buffer_destroy(rt, out);
        set_err(err, errlen, "no %s memory type for a storage buffer",
                host_visible ? "host-visible coherent" : "suitable");
        return TAESD_ERROR_UNSUPPORTED;
    }
    r = VK_ERROR_OUT_OF_DEVICE_MEMORY;
    for (uint32_t i = 0; i < nt; i++) {   /* a full heap falls back to the next suitable type */
        VkMemoryAllocateInfo ai = {
            .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
            .allocationSize = req.size,
            .memoryTypeIndex = types[i],
        };
        r = rt->vk.vkAllocateMemory(rt->device, &ai, rt->alloc, &out->memory);
        if (r == VK_SUCCESS)
            break;
        out->memory = VK_NULL_HANDLE;
    }
    if (r != VK_SUCCESS) {
        vkrt_buffer_destroy(rt, out);
        set_err(err, errlen, "cannot allocate %.1f MiB of %s memory: %s", MIB(req.size),
                host_visible ? "host-visible" : "device", vkrt_result_name(r));
        return TAESD_ERROR_OUT_OF_MEMORY;
    }
    r = rt->vk.vkBindBufferMemory(rt->device, out->buffer, out->memory, 0);
    if (r != VK_SUCCESS) {
        vkrt_buffer_destroy(rt, out);
        return vk_fail(err, errlen, "vkBindBufferMemory", r);
    }
    if (host_visible) {
        r = rt->vk.vkMapMemory(rt->device, out->memory, 0, VK_WHOLE_SIZE, 0, &out->mapped);
        if (r != VK_SUCCESS) {
            out->mapped = NULL;
            vkrt_buffer_destroy(rt, out);
            return vk_fail(err, errlen, "vkMapMemory", r);
        }
    }
    out->size = size;
    return TAESD_OK;
}

void vkrt_buffer_destroy(vk_runtime *rt, vk_buffer *b)
{
    if (!b)
        return;
    if (rt && rt->device) {
        if (b->mapped && rt->vk.vkUnmapMemory)
            rt->vk.vkUnmapMemory(rt->device, b->memory);
        if (b->buffer)
            rt->vk.vkDestroyBuffer(rt->device, b->buffer, rt->alloc);
        if (b->memory)
            rt->vk.vkFreeMemory(rt->device, b->memory, rt->alloc);
    }
    memset(b, 0, sizeof *b);
}

/* ---- Command buffers and submits ---------------------------------------------------------------------- */

taesd_result vkrt_begin_once(vk_runtime *rt, VkCommandBuffer *cb, char *err, size_t errlen)
{
    if (!cb || !rt || !rt->device) {
        set_err(err, errlen, "vkrt_begin_once: no device");
        return TAESD_ERROR_INVALID_ARGUMENT;
    }
    *cb = VK_NULL_HANDLE;
    VkCommandBufferAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = rt->command_pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    VkResult r = rt->vk.vkAllocateCommandBuffers(rt->device, &ai, cb);
    if (r != VK_SUCCESS) {
        *cb = VK_NULL_HANDLE;
        return vk_fail(err, errlen, "vkAllocateCommandBuffers", r);
    }
    VkCommandBufferBeginInfo bi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
        .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
    };
    r = rt->vk.vkBeginCommandBuffer(*cb, &bi);
    if (r != VK_SUCCESS) {
        rt->vk.vkFreeCommandBuffers(rt->device, rt->command_pool, 1, cb);
        *cb = VK_NULL_HANDLE;
        return vk_fail(err, errlen, "vkBeginCommandBuffer", r);
    }
    return TAESD_OK;
}

taesd_result vkrt_submit_wait(vk_runtime *rt, VkCommandBuffer cb, VkFence fence, char *err, size_t errlen)
{
    if (!rt || !rt->device || !cb || !fence) {
        set_err(err, errlen, "vkrt_submit_wait: no device, command buffer or fence");
        return TAESD_ERROR_INVALID_ARGUMENT;
    }
    VkResult r = rt->vk.vkResetFences(rt->device, 1, &fence);
    if (r != VK_SUCCESS)
        return vk_fail(err, errlen, "vkResetFences", r);
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &cb,
    };
    r = rt->vk.vkQueueSubmit(rt->queue, 1, &si, fence);
    if (r != VK_SUCCESS)
        return vk_fail(err, errlen, "vkQueueSubmit", r);
    r = rt->vk.vkWaitForFences(rt->device, 1, &fence, VK_TRUE, UINT64_MAX);
    if (r != VK_SUCCESS)
        return vk_fail(err, errlen, "vkWaitForFences", r);
    return TAESD_OK;
}

taesd_result vkrt_end_submit_wait(vk_runtime *rt, VkCommandBuffer cb, char *err, size_t errlen)
{
    if (!rt || !rt->device || !cb) {
        set_err(err, errlen, "vkrt_end_submit_wait: no device or command buffer");
        return TAESD_ERROR_INVALID_ARGUMENT;
    }
    taesd_result res = TAESD_OK;
    VkFence fence = VK_NULL_HANDLE;
    VkResult r = rt->vk.vkEndCommandBuffer(cb);
    if (r != VK_SUCCESS)
        res = vk_fail(err, errlen, "vkEndCommandBuffer", r);
    if (res == TAESD_OK) {
        VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
        r = rt->vk.vkCreateFence(rt->device, &fi, rt->alloc, &fence);
        if (r != VK_SUCCESS) {
            fence = VK_NULL_HANDLE;
            res = vk_fail(err, errlen, "vkCreateFence", r);
        }
    }
    if (res == TAESD_OK)
        res = vkrt_submit_wait(rt, cb, fence, err, errlen);
    if (res != TAESD_OK && rt->vk.vkQueueWaitIdle)
        rt->vk.vkQueueWaitIdle(rt->queue);   /* never free a command buffer that may still be pending */
    if (fence)
        rt->vk.vkDestroyFence(rt->device, fence, rt->alloc);
    rt->vk.vkFreeCommandBuffers(rt->device, rt->command_pool, 1, &cb);
    return res;
}

taesd_result vkrt_upload(vk_runtime *rt, vk_buffer *dst, VkDeviceSize offset, const void *data, size_t size,
                         char *err, size_t errlen)
{
    if (!rt || !rt->device || !dst || !dst->buffer || (size && !data)) {
        set_err(err, errlen, "vkrt_upload: no device, buffer or data");
        return TAESD_ERROR_INVALID_ARGUMENT;
    }
    if (offset > dst->size || size > dst->size - offset) {
        set_err(err, errlen, "vkrt_upload: %zu bytes at offset %llu overflow a buffer of %llu bytes", size,
                (unsigned long long)offset, (unsigned long long)dst->size);
        return TAESD_ERROR_INVALID_ARGUMENT;
    }
    if (size == 0)
        return TAESD_OK;
    vk_buffer staging;
    taesd_result res = vkrt_buffer_create(rt, size, true, &staging, err, errlen);
    if (res != TAESD_OK)
        return res;
    memcpy(staging.mapped, data, size);
    VkCommandBuffer cb;
    res = vkrt_begin_once(rt, &cb, err, errlen);
    if (res == TAESD_OK) {
        VkBufferCopy region = {.srcOffset = 0, .dstOffset = offset, .size = size};
        rt->vk.vkCmdCopyBuffer(cb, staging.buffer, dst->buffer, 1, &region);
        /* Make the copy visible to compute shaders (and to later transfers, e.g. a readback copy). */
        VkBufferMemoryBarrier bar = {
            .sType = VK_STRUCTURE_TYPE_BUFFER_MEMORY_BARRIER,
            .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
            .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                             VK_ACCESS_TRANSFER_WRITE_BIT,
            .srcQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED,
            .dstQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED,
            .buffer = dst->buffer,
            .offset = offset,
            .size = size,
        };
        rt->vk.vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_TRANSFER_BIT,
                                    VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 0, NULL,
                                    1, &bar, 0, NULL);
        res = vkrt_end_submit_wait(rt, cb, err, errlen);
    }
    vkrt_buffer_destroy(rt, &staging);
    return res;
}
