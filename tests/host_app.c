/* host_app.c — the tests' "application": its own Vulkan loader handle, instance (validation layer + a messenger
 * counting every warning/error), device and queue, handed to taesd through taesd_vulkan_host. See host_app.h. */
#define VK_NO_PROTOTYPES
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host_app.h"
#include "testutil.h"



host_app app;

static uint32_t major_minor(uint32_t v)
{
    return VK_MAKE_API_VERSION(0, VK_API_VERSION_MAJOR(v), VK_API_VERSION_MINOR(v), 0);
}

PFN_vkVoidFunction inst_fn(const char *name)
{
    PFN_vkVoidFunction f = app.gipa(app.instance, name);
    if (!f)
        fail_msg("host: %s not found", name);
    return f;
}

PFN_vkVoidFunction dev_fn(const char *name)
{
    PFN_vkVoidFunction f = app.GetDeviceProcAddr(app.device, name);
    if (!f)
        fail_msg("host: %s not found", name);
    return f;
}

static VKAPI_ATTR VkBool32 VKAPI_CALL host_messenger(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                     VkDebugUtilsMessageTypeFlagsEXT types,
                                                     const VkDebugUtilsMessengerCallbackDataEXT *data, void *user)
{
    (void)types;
    host_app *h = user;
    if (severity & (VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT)) {
        atomic_fetch_add(&h->messages, 1);
        printf("host validation: %s\n", data && data->pMessage ? data->pMessage : "?");
    }
    return VK_FALSE;
}

static void messenger_info(VkDebugUtilsMessengerCreateInfoEXT *mi)
{
    *mi = (VkDebugUtilsMessengerCreateInfoEXT){
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity =
            VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = host_messenger,
        .pUserData = &app,
    };
}

int host_create(void **state)
{
    (void)state;
    memset(&app, 0, sizeof app);
    if (!shared_available()) {
        fprintf(stderr, "shared data not found\n");
        return -1;
    }
    app.lib = dlopen("libvulkan.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!app.lib) {
        fprintf(stderr, "dlopen libvulkan.so.1: %s\n", dlerror());
        return -1;
    }
    void *sym = dlsym(app.lib, "vkGetInstanceProcAddr");
    memcpy(&app.gipa, &sym, sizeof app.gipa);
    PFN_vkEnumerateInstanceVersion eiv = (PFN_vkEnumerateInstanceVersion)app.gipa(NULL, "vkEnumerateInstanceVersion");
    PFN_vkCreateInstance create_instance = (PFN_vkCreateInstance)app.gipa(NULL, "vkCreateInstance");
    uint32_t loader = VK_API_VERSION_1_0;
    if (eiv)
        eiv(&loader);
    app.api = major_minor(loader) < VK_API_VERSION_1_3 ? major_minor(loader) : VK_API_VERSION_1_3;

    const char *layers[] = { "VK_LAYER_KHRONOS_validation" };
    /* Synchronization validation too: taesd_cmd_decode's barriers are checked against the host's commands. */
    const char *exts[] = { VK_EXT_DEBUG_UTILS_EXTENSION_NAME, VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME };
    VkDebugUtilsMessengerCreateInfoEXT mi;
    messenger_info(&mi);
    VkValidationFeatureEnableEXT sync_validation = VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT;
    VkValidationFeaturesEXT vf = { .sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT, .pNext = &mi,
                                   .enabledValidationFeatureCount = 1,
                                   .pEnabledValidationFeatures = &sync_validation };
    VkApplicationInfo ai = { .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .pApplicationName = "taesd host test",
                             .apiVersion = app.api };
    VkInstanceCreateInfo ci = { .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pNext = &vf,
                                .pApplicationInfo = &ai, .enabledLayerCount = 1, .ppEnabledLayerNames = layers,
                                .enabledExtensionCount = 2, .ppEnabledExtensionNames = exts };
    VkResult r = create_instance(&ci, NULL, &app.instance);
    if (r != VK_SUCCESS) {
        fprintf(stderr, "host vkCreateInstance with the validation layer: %d\n", r);
        return -1;
    }
    app.DestroyInstance = (PFN_vkDestroyInstance)inst_fn("vkDestroyInstance");
    PFN_vkCreateDebugUtilsMessengerEXT create_messenger =
        (PFN_vkCreateDebugUtilsMessengerEXT)inst_fn("vkCreateDebugUtilsMessengerEXT");
    app.DestroyMessenger = (PFN_vkDestroyDebugUtilsMessengerEXT)inst_fn("vkDestroyDebugUtilsMessengerEXT");
    if (create_messenger(app.instance, &mi, NULL, &app.messenger) != VK_SUCCESS)
        return -1;

    /* The first device with Vulkan >= 1.1 and a compute queue. */
    PFN_vkEnumeratePhysicalDevices enum_pd = (PFN_vkEnumeratePhysicalDevices)inst_fn("vkEnumeratePhysicalDevices");
    PFN_vkGetPhysicalDeviceProperties props =
        (PFN_vkGetPhysicalDeviceProperties)inst_fn("vkGetPhysicalDeviceProperties");
    PFN_vkGetPhysicalDeviceQueueFamilyProperties qprops =
        (PFN_vkGetPhysicalDeviceQueueFamilyProperties)inst_fn("vkGetPhysicalDeviceQueueFamilyProperties");
    PFN_vkGetPhysicalDeviceFeatures2 features2 =
        (PFN_vkGetPhysicalDeviceFeatures2)inst_fn("vkGetPhysicalDeviceFeatures2");
    PFN_vkCreateDevice create_device = (PFN_vkCreateDevice)inst_fn("vkCreateDevice");
    app.GetDeviceProcAddr = (PFN_vkGetDeviceProcAddr)inst_fn("vkGetDeviceProcAddr");
    VkPhysicalDevice pds[16];
    uint32_t n = 16;
    r = enum_pd(app.instance, &n, pds);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE)
        return -1;
    uint32_t dev_api = 0;
    for (uint32_t i = 0; i < n && !app.pd; i++) {
        VkPhysicalDeviceProperties p;
        props(pds[i], &p);
        if (major_minor(p.apiVersion) < VK_API_VERSION_1_1)
            continue;
        VkQueueFamilyProperties q[16];
        uint32_t nq = 16;
        qprops(pds[i], &nq, q);
        for (uint32_t f = 0; f < nq; f++)
            if (q[f].queueFlags & VK_QUEUE_COMPUTE_BIT) {
                app.pd = pds[i];
                app.family = f;
                dev_api = major_minor(p.apiVersion);
                break;
            }
    }
    if (!app.pd) {
        fprintf(stderr, "no Vulkan 1.1 device with a compute queue\n");
        return -1;
    }

    /* Ask taesd what it wants, enable what the device offers. */
    uint32_t eff_api = dev_api < app.api ? dev_api : app.api;
    taesd_device_requirements req;
    if (taesd_query_device_requirements(eff_api, &req) != TAESD_OK)
        return -1;
    VkPhysicalDeviceVulkan13Features q13 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES };
    VkPhysicalDeviceVulkan12Features q12 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
                                             .pNext = eff_api >= VK_API_VERSION_1_3 ? &q13 : NULL };
    VkPhysicalDeviceVulkan11Features q11 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
                                             .pNext = &q12 };
    VkPhysicalDeviceFeatures2 f2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &q11 };
    VkPhysicalDeviceVulkan13Features e13 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES };
    VkPhysicalDeviceVulkan12Features e12 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES };
    VkPhysicalDeviceVulkan11Features e11 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
                                             .pNext = &e12 };
    const void *chain = NULL;
    if (eff_api >= VK_API_VERSION_1_2) {   /* (a 1.1 device would also need req.fp16_extensions) */
        features2(app.pd, &f2);
        app.fp16 = q11.storageBuffer16BitAccess && q12.shaderFloat16;
        if (app.fp16) {
            e11.storageBuffer16BitAccess = req.fp16_storage_buffer_16bit_access;
            e12.shaderFloat16 = req.fp16_shader_float16;
            chain = &e11;
        }
        /* synchronization2 for taesd_cmd_decode: core on 1.3 (1.2 would need req.cmd_extensions). */
        app.sync2 = eff_api >= VK_API_VERSION_1_3 && q13.synchronization2 && req.cmd_synchronization2;
        if (app.sync2) {
            e13.synchronization2 = VK_TRUE;
            e12.pNext = &e13;
            chain = &e11;
        }
    }
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qi = { .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, .queueFamilyIndex = app.family,
                                   .queueCount = 1, .pQueuePriorities = &prio };
    VkDeviceCreateInfo di = { .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .pNext = chain,
                              .queueCreateInfoCount = 1, .pQueueCreateInfos = &qi,
                              .enabledExtensionCount = req.extension_count,
                              .ppEnabledExtensionNames = req.extensions };
    if (create_device(app.pd, &di, NULL, &app.device) != VK_SUCCESS)
        return -1;
    app.DestroyDevice = (PFN_vkDestroyDevice)dev_fn("vkDestroyDevice");
    PFN_vkGetDeviceQueue get_queue = (PFN_vkGetDeviceQueue)dev_fn("vkGetDeviceQueue");
    get_queue(app.device, app.family, 0, &app.queue);
    app.CreateBuffer = (PFN_vkCreateBuffer)dev_fn("vkCreateBuffer");
    app.DestroyBuffer = (PFN_vkDestroyBuffer)dev_fn("vkDestroyBuffer");
    app.GetBufferMemoryRequirements = (PFN_vkGetBufferMemoryRequirements)dev_fn("vkGetBufferMemoryRequirements");
    app.AllocateMemory = (PFN_vkAllocateMemory)dev_fn("vkAllocateMemory");
    app.FreeMemory = (PFN_vkFreeMemory)dev_fn("vkFreeMemory");
    app.BindBufferMemory = (PFN_vkBindBufferMemory)dev_fn("vkBindBufferMemory");
    app.CreateFence = (PFN_vkCreateFence)dev_fn("vkCreateFence");
    app.DestroyFence = (PFN_vkDestroyFence)dev_fn("vkDestroyFence");
    app.QueueSubmit = (PFN_vkQueueSubmit)dev_fn("vkQueueSubmit");
    app.WaitForFences = (PFN_vkWaitForFences)dev_fn("vkWaitForFences");
    printf("host device ready: Vulkan %u.%u, fp16 features %s, synchronization2 %s\n", VK_API_VERSION_MAJOR(eff_api),
           VK_API_VERSION_MINOR(eff_api), app.fp16 ? "enabled" : "not offered", app.sync2 ? "enabled" : "not offered");
    return 0;
}

int host_destroy(void **state)
{
    (void)state;
    if (app.device)
        app.DestroyDevice(app.device, NULL);
    if (app.messenger)
        app.DestroyMessenger(app.instance, app.messenger, NULL);
    if (app.instance)
        app.DestroyInstance(app.instance, NULL);
    if (app.lib)
        dlclose(app.lib);
    unsigned msgs = atomic_load(&app.messages);
    if (msgs)
        fprintf(stderr, "%u host validation messages\n", msgs);
    return msgs ? -1 : 0;
}

taesd_vulkan_host host_desc(void)
{
    taesd_vulkan_host h = {
        .get_instance_proc_addr = app.gipa,
        .instance = app.instance,
        .instance_api_version = app.api,
        .physical_device = app.pd,
        .device = app.device,
        .queue_family_index = app.family,
        .queue = app.queue,
        .fp16_enabled = app.fp16,
        .synchronization2_enabled = app.sync2,
    };
    return h;
}

