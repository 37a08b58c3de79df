/* test_host.c — libtaesd on a Vulkan device the application owns (include/taesd_vulkan.h).
 *
 * The test plays the host: it opens its own loader handle (dlopen libvulkan.so.1), creates an instance with
 * VK_LAYER_KHRONOS_validation and a messenger that counts every warning/error, a device (fp16 features enabled
 * where offered) and a queue, and hands them to taesd. Checks: golden decode through a host context; the host's
 * device still works after taesd is gone; two host contexts plus a library-owned one side by side; fp16 follows
 * what the host enabled; the host's allocation callbacks balance; bad host descriptions fail cleanly; the
 * device-requirements query. Any validation message fails the test. */
#define VK_NO_PROTOTYPES
#include <dlfcn.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "taesd_vulkan.h"
#include "io/npy.h"
#include "testutil.h"

#define WEIGHTS "weights/synth_sd_decoder_f16.safetensors"
#define GOLDEN_IN "golden/synth_sd_dec_12x8.in.npy"
#define GOLDEN_OUT "golden/synth_sd_dec_12x8.out.npy"

/* ---- the host application ------------------------------------------------------------------------------- */

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

static host_app app;

static uint32_t major_minor(uint32_t v)
{
    return VK_MAKE_API_VERSION(0, VK_API_VERSION_MAJOR(v), VK_API_VERSION_MINOR(v), 0);
}

static PFN_vkVoidFunction inst_fn(const char *name)
{
    PFN_vkVoidFunction f = app.gipa(app.instance, name);
    if (!f)
        fail_msg("host: %s not found", name);
    return f;
}

static PFN_vkVoidFunction dev_fn(const char *name)
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

static int host_create(void **state)
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
    const char *exts[] = { VK_EXT_DEBUG_UTILS_EXTENSION_NAME };
    VkDebugUtilsMessengerCreateInfoEXT mi;
    messenger_info(&mi);
    VkApplicationInfo ai = { .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .pApplicationName = "taesd host test",
                             .apiVersion = app.api };
    VkInstanceCreateInfo ci = { .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pNext = &mi,
                                .pApplicationInfo = &ai, .enabledLayerCount = 1, .ppEnabledLayerNames = layers,
                                .enabledExtensionCount = 1, .ppEnabledExtensionNames = exts };
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
    VkPhysicalDeviceVulkan12Features q12 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES };
    VkPhysicalDeviceVulkan11Features q11 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
                                             .pNext = &q12 };
    VkPhysicalDeviceFeatures2 f2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &q11 };
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
    printf("host device ready: Vulkan %u.%u, fp16 features %s\n", VK_API_VERSION_MAJOR(eff_api),
           VK_API_VERSION_MINOR(eff_api), app.fp16 ? "enabled" : "not offered");
    return 0;
}

static int host_destroy(void **state)
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

static taesd_vulkan_host host_desc(void)
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
    };
    return h;
}

/* The host's device still works: a buffer with memory, and a fenced (empty) submit on its queue. */
static void check_host_device_usable(void)
{
    VkBufferCreateInfo bi = { .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = 4096,
                              .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT, .sharingMode = VK_SHARING_MODE_EXCLUSIVE };
    VkBuffer buf = VK_NULL_HANDLE;
    assert_int_equal(app.CreateBuffer(app.device, &bi, NULL, &buf), VK_SUCCESS);
    VkMemoryRequirements mr;
    app.GetBufferMemoryRequirements(app.device, buf, &mr);
    uint32_t type = 0;
    while (type < 32 && !(mr.memoryTypeBits & (1u << type)))
        type++;
    VkMemoryAllocateInfo ai = { .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = mr.size,
                                .memoryTypeIndex = type };
    VkDeviceMemory mem = VK_NULL_HANDLE;
    assert_int_equal(app.AllocateMemory(app.device, &ai, NULL, &mem), VK_SUCCESS);
    assert_int_equal(app.BindBufferMemory(app.device, buf, mem, 0), VK_SUCCESS);
    app.DestroyBuffer(app.device, buf, NULL);
    app.FreeMemory(app.device, mem, NULL);

    VkFenceCreateInfo fi = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
    VkFence fence = VK_NULL_HANDLE;
    assert_int_equal(app.CreateFence(app.device, &fi, NULL, &fence), VK_SUCCESS);
    assert_int_equal(app.QueueSubmit(app.queue, 0, NULL, fence), VK_SUCCESS);
    assert_int_equal(app.WaitForFences(app.device, 1, &fence, VK_TRUE, UINT64_MAX), VK_SUCCESS);
    app.DestroyFence(app.device, fence, NULL);
}

/* ---- helpers --------------------------------------------------------------------------------------------- */

static taesd_context *context_on_host(const taesd_vulkan_host *h)
{
    taesd_context_desc d = { .host = h };
    taesd_context *ctx = NULL;
    taesd_result r = taesd_context_create(&d, &ctx);
    if (r != TAESD_OK)
        fail_msg("taesd_context_create on the host device: %s", taesd_result_string(r));
    return ctx;
}

static taesd_model *load(taesd_context *ctx, taesd_precision p)
{
    taesd_model_desc md = { .path = shared_path(WEIGHTS), .precision = p };
    taesd_model *m = NULL;
    if (taesd_model_load(ctx, &md, &m) != TAESD_OK)
        fail_msg("%s: %s", WEIGHTS, taesd_context_last_error(ctx));
    return m;
}

/* Decodes the golden latent; returns the relative L2 error against the PyTorch output. */
static double decode_golden(taesd_model *m)
{
    npy_array in = { 0 }, expect = { 0 };
    char err[256];
    if (npy_read_file(shared_path(GOLDEN_IN), &in, err, sizeof err) != 0)
        fail_msg("%s: %s", GOLDEN_IN, err);
    if (npy_read_file(shared_path(GOLDEN_OUT), &expect, err, sizeof err) != 0)
        fail_msg("%s: %s", GOLDEN_OUT, err);
    assert_int_equal(in.ndim, 4);
    float *out = malloc((size_t)expect.numel * sizeof(float));
    assert_non_null(out);
    taesd_result r = taesd_decode(m, in.data, (int)in.shape[1], (int)in.shape[2], (int)in.shape[3], out);
    assert_int_equal(r, TAESD_OK);
    double e = rel_l2(out, expect.data, (size_t)expect.numel);
    free(out);
    npy_free(&in);
    npy_free(&expect);
    return e;
}

static void expect_fp32_golden(taesd_context *ctx)
{
    taesd_model *m = load(ctx, TAESD_PRECISION_FP32);
    double e = decode_golden(m);
    printf("  fp32 rel-L2 %.3g\n", e);
    assert_true(e <= 1e-4);
    taesd_model_destroy(m);
}

/* ---- tests ----------------------------------------------------------------------------------------------- */

static void test_requirements(void **state)
{
    (void)state;
    taesd_device_requirements req;
    assert_int_equal(taesd_query_device_requirements(VK_API_VERSION_1_3, &req), TAESD_OK);
    assert_int_equal(req.min_api_version, VK_API_VERSION_1_1);
    assert_true(req.queue_flags & VK_QUEUE_COMPUTE_BIT);
    assert_int_equal(req.extension_count, 0);
    assert_int_equal(req.fp16_extension_count, 0);
    assert_true(req.fp16_storage_buffer_16bit_access && req.fp16_shader_float16);
    assert_int_equal(taesd_query_device_requirements(VK_MAKE_API_VERSION(0, 1, 2, 250), &req), TAESD_OK);
    assert_int_equal(req.fp16_extension_count, 0);
    assert_int_equal(taesd_query_device_requirements(VK_API_VERSION_1_1, &req), TAESD_OK);
    assert_int_equal(req.extension_count, 0);
    assert_int_equal(req.fp16_extension_count, 1);
    assert_string_equal(req.fp16_extensions[0], "VK_KHR_shader_float16_int8");
    assert_int_equal(taesd_query_device_requirements(VK_API_VERSION_1_0, &req), TAESD_ERROR_UNSUPPORTED);
    assert_int_equal(req.min_api_version, VK_API_VERSION_1_1);
    assert_int_equal(taesd_query_device_requirements(VK_API_VERSION_1_3, NULL), TAESD_ERROR_INVALID_ARGUMENT);
}

static void test_host_decode_golden(void **state)
{
    (void)state;
    taesd_vulkan_host h = host_desc();
    taesd_context *ctx = context_on_host(&h);
    taesd_device_info di;
    taesd_context_device_info(ctx, &di);
    assert_int_equal(di.fp16, app.fp16);
    expect_fp32_golden(ctx);
    if (app.fp16) {   /* fp16 is allowed because the host enabled it (AUTO would pick fp32 on a CPU device) */
        taesd_model *m = load(ctx, TAESD_PRECISION_FP16);
        taesd_model_info info;
        taesd_model_get_info(m, &info);
        assert_int_equal(info.precision, TAESD_PRECISION_FP16);
        double e = decode_golden(m);
        printf("  fp16 rel-L2 %.3g\n", e);
        assert_true(e <= 1e-2);
        taesd_model_destroy(m);
    }
    assert_int_equal(taesd_context_validation_messages(ctx), 0);
    taesd_context_destroy(ctx);
    check_host_device_usable();
    assert_int_equal(atomic_load(&app.messages), 0);
}

static void test_two_host_contexts_and_own(void **state)
{
    (void)state;
    taesd_vulkan_host h = host_desc();
    taesd_context *a = context_on_host(&h);
    taesd_context *b = context_on_host(&h);
    taesd_context *own = NULL;
    taesd_context_desc od = { 0 };   /* library-owned device; TAESD_VALIDATION=1 (meson) turns validation on */
    assert_int_equal(taesd_context_create(&od, &own), TAESD_OK);

    taesd_model *ma = load(a, TAESD_PRECISION_FP32);
    taesd_model *mb = load(b, TAESD_PRECISION_FP32);
    taesd_model *mo = load(own, TAESD_PRECISION_FP32);
    assert_true(decode_golden(ma) <= 1e-4);
    assert_true(decode_golden(mb) <= 1e-4);
    assert_true(decode_golden(mo) <= 1e-4);

    /* Destroying one host context leaves the other (and the host) working. */
    taesd_model_destroy(ma);
    taesd_context_destroy(a);
    assert_true(decode_golden(mb) <= 1e-4);
    check_host_device_usable();
    taesd_model_destroy(mb);
    taesd_context_destroy(b);
    assert_true(decode_golden(mo) <= 1e-4);
    taesd_model_destroy(mo);
    assert_int_equal(taesd_context_validation_messages(own), 0);
    taesd_context_destroy(own);
    check_host_device_usable();
    assert_int_equal(atomic_load(&app.messages), 0);
}

static void test_host_without_fp16(void **state)
{
    (void)state;
    taesd_vulkan_host h = host_desc();
    h.fp16_enabled = false;   /* the host did not grant fp16: taesd must not use it */
    taesd_context *ctx = context_on_host(&h);
    taesd_model *m = load(ctx, TAESD_PRECISION_AUTO);
    taesd_model_info info;
    taesd_model_get_info(m, &info);
    assert_int_equal(info.precision, TAESD_PRECISION_FP32);
    assert_true(decode_golden(m) <= 1e-4);
    taesd_model_destroy(m);
    taesd_model_desc md = { .path = shared_path(WEIGHTS), .precision = TAESD_PRECISION_FP16 };
    m = (taesd_model *)1;
    assert_int_equal(taesd_model_load(ctx, &md, &m), TAESD_ERROR_UNSUPPORTED);
    assert_null(m);
    taesd_context_destroy(ctx);
    assert_int_equal(atomic_load(&app.messages), 0);
}

/* Host allocation callbacks: counted, and balanced once taesd is gone. */
typedef struct alloc_count {
    atomic_long live, calls;
} alloc_count;

static void *VKAPI_PTR count_alloc(void *user, size_t size, size_t align, VkSystemAllocationScope scope)
{
    (void)scope;
    alloc_count *c = user;
    if (align < 16)
        align = 16;
    void *p = NULL;
    if (posix_memalign(&p, align, size + align) != 0)
        return NULL;
    char *mem = (char *)p + align;
    ((size_t *)mem)[-1] = align;
    ((size_t *)mem)[-2] = size;
    atomic_fetch_add(&c->live, 1);
    atomic_fetch_add(&c->calls, 1);
    return mem;
}

static void VKAPI_PTR count_free(void *user, void *mem)
{
    alloc_count *c = user;
    if (!mem)
        return;
    size_t align = ((size_t *)mem)[-1];
    free((char *)mem - align);
    atomic_fetch_sub(&c->live, 1);
}

static void *VKAPI_PTR count_realloc(void *user, void *orig, size_t size, size_t align, VkSystemAllocationScope scope)
{
    if (!orig)
        return count_alloc(user, size, align, scope);
    if (size == 0) {
        count_free(user, orig);
        return NULL;
    }
    void *n = count_alloc(user, size, align, scope);
    if (!n)
        return NULL;
    size_t old = ((size_t *)orig)[-2];
    memcpy(n, orig, old < size ? old : size);
    count_free(user, orig);
    return n;
}

static void test_host_allocator(void **state)
{
    (void)state;
    alloc_count counts;
    atomic_init(&counts.live, 0);
    atomic_init(&counts.calls, 0);
    VkAllocationCallbacks cb = { .pUserData = &counts, .pfnAllocation = count_alloc, .pfnReallocation = count_realloc,
                                 .pfnFree = count_free };
    taesd_vulkan_host h = host_desc();
    h.allocator = &cb;
    taesd_context *ctx = context_on_host(&h);
    expect_fp32_golden(ctx);
    taesd_context_destroy(ctx);
    printf("  host allocator: %ld allocations, %ld live after destroy\n", (long)atomic_load(&counts.calls),
           (long)atomic_load(&counts.live));
    assert_true(atomic_load(&counts.calls) > 0);
    assert_int_equal(atomic_load(&counts.live), 0);
    assert_int_equal(atomic_load(&app.messages), 0);
}

typedef struct log_capture {
    char last[512];
    int id;
} log_capture;

static void capture_log(taesd_log_level level, int id, const char *msg, void *user)
{
    log_capture *lc = user;
    (void)level;
    lc->id = id;
    snprintf(lc->last, sizeof lc->last, "%s", msg);
}

static void expect_create_fails(const taesd_vulkan_host *h, taesd_result want, const char *needle)
{
    log_capture lc = { "", 0 };
    taesd_context_desc d = { .host = h, .log = capture_log, .log_user = &lc };
    taesd_context *ctx = (taesd_context *)1;
    assert_int_equal(taesd_context_create(&d, &ctx), want);
    assert_null(ctx);
    assert_int_equal(lc.id, 1);
    if (!strstr(lc.last, needle))
        fail_msg("error '%s' does not mention '%s'", lc.last, needle);
    assert_null(strchr(lc.last, '\n'));
}

static void test_bad_host(void **state)
{
    (void)state;
    taesd_vulkan_host h = host_desc();
    h.device = VK_NULL_HANDLE;
    expect_create_fails(&h, TAESD_ERROR_INVALID_ARGUMENT, "device");
    h = host_desc();
    h.get_instance_proc_addr = NULL;
    expect_create_fails(&h, TAESD_ERROR_INVALID_ARGUMENT, "get_instance_proc_addr");
    h = host_desc();
    h.instance_api_version = VK_API_VERSION_1_0;
    expect_create_fails(&h, TAESD_ERROR_UNSUPPORTED, "1.1");
    h = host_desc();
    h.queue_family_index = 999;
    expect_create_fails(&h, TAESD_ERROR_INVALID_ARGUMENT, "queue_family_index 999");
    if (!app.fp16) {
        h = host_desc();
        h.fp16_enabled = true;   /* claims a feature the device lacks */
        expect_create_fails(&h, TAESD_ERROR_INVALID_ARGUMENT, "fp16_enabled");
    }
    check_host_device_usable();
    assert_int_equal(atomic_load(&app.messages), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requirements),
        cmocka_unit_test(test_host_decode_golden),
        cmocka_unit_test(test_two_host_contexts_and_own),
        cmocka_unit_test(test_host_without_fp16),
        cmocka_unit_test(test_host_allocator),
        cmocka_unit_test(test_bad_host),
    };
    return cmocka_run_group_tests(tests, host_create, host_destroy);
}
