/* embed.c — an application that owns its Vulkan device and has taesd decode into its own image, inside its own
 * command buffer (include/taesd_vulkan.h). It then reads the image back and compares it with a PNG written by
 * `taesd decode` from the same latent: the two must be identical.
 *
 *   taesd-embed-example -m DECODER LATENT.npy REFERENCE.png
 *
 * LATENT.npy: float32, (1,C,H,W) or (C,H,W). With TAESD_VALIDATION=1 the instance gets VK_LAYER_KHRONOS_validation
 * with synchronization validation, and any message makes the run fail. Exit status: 0 identical, 1 different or
 * failed, 77 no suitable device (Vulkan 1.3 with synchronization2). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vulkan/vulkan.h>

#include "stb_image.h"
#include "taesd_vulkan.h"

static unsigned validation_messages;

#define CHECK(call)                                                                      \
    do {                                                                                 \
        VkResult r_ = (call);                                                            \
        if (r_ != VK_SUCCESS) {                                                          \
            fprintf(stderr, "embed: %s failed (VkResult %d)\n", #call, (int)r_);         \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

static VKAPI_ATTR VkBool32 VKAPI_CALL on_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                 VkDebugUtilsMessageTypeFlagsEXT types,
                                                 const VkDebugUtilsMessengerCallbackDataEXT *data, void *user)
{
    (void)severity;
    (void)types;
    (void)user;
    validation_messages++;
    fprintf(stderr, "embed: validation: %s\n", data->pMessage);
    return VK_FALSE;
}

/* The .npy subset this example needs: little-endian float32, C order. */
static float *read_npy(const char *path, int *c, int *h, int *w)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char pre[10];
    float *data = NULL;
    if (fread(pre, 1, 10, f) == 10 && memcmp(pre, "\x93NUMPY", 6) == 0 && pre[6] == 1) {
        size_t hl = (size_t)pre[8] | (size_t)pre[9] << 8;
        char hdr[1024] = { 0 };
        long d[4] = { 0 };
        int nd = 0;
        if (hl < sizeof hdr && fread(hdr, 1, hl, f) == hl && strstr(hdr, "'<f4'") &&
            strstr(hdr, "'fortran_order': False")) {
            const char *s = strchr(strstr(hdr, "'shape'"), '(');
            while (s && nd < 4 && sscanf(s + 1, "%ld", &d[nd]) == 1) {
                nd++;
                s = strchr(s + 1, ',');
            }
            if (nd == 4 && d[0] == 1) {
                d[0] = d[1], d[1] = d[2], d[2] = d[3];
                nd = 3;
            }
            if (nd == 3 && d[0] > 0 && d[1] > 0 && d[2] > 0 && d[0] * d[1] * d[2] < (1L << 26)) {
                size_t n = (size_t)(d[0] * d[1] * d[2]);
                data = malloc(n * sizeof(float));
                if (data && fread(data, sizeof(float), n, f) != n) {
                    free(data);
                    data = NULL;
                }
                *c = (int)d[0], *h = (int)d[1], *w = (int)d[2];
            }
        }
    }
    fclose(f);
    return data;
}

typedef struct app {
    VkInstance instance;
    VkDebugUtilsMessengerEXT messenger;
    VkPhysicalDevice pd;
    VkDevice device;
    uint32_t family;
    VkQueue queue;
    VkPhysicalDeviceMemoryProperties mem;
} app;

static int create_device(app *a, bool validation)
{
    const char *layers[] = { "VK_LAYER_KHRONOS_validation" };
    const char *exts[] = { VK_EXT_DEBUG_UTILS_EXTENSION_NAME, VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME };
    VkDebugUtilsMessengerCreateInfoEXT mi = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT,
        .pfnUserCallback = on_message,
    };
    VkValidationFeatureEnableEXT sync = VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT;
    VkValidationFeaturesEXT vf = { .sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT, .pNext = &mi,
                                   .enabledValidationFeatureCount = 1, .pEnabledValidationFeatures = &sync };
    VkApplicationInfo ai = { .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .pApplicationName = "taesd embed example",
                             .apiVersion = VK_API_VERSION_1_3 };
    VkInstanceCreateInfo ici = { .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pNext = validation ? &vf : NULL,
                                 .pApplicationInfo = &ai, .enabledLayerCount = validation ? 1 : 0,
                                 .ppEnabledLayerNames = layers, .enabledExtensionCount = validation ? 2 : 0,
                                 .ppEnabledExtensionNames = exts };
    if (vkCreateInstance(&ici, NULL, &a->instance) != VK_SUCCESS) {
        fprintf(stderr, "embed: no Vulkan 1.3 instance%s\n", validation ? " with the validation layer" : "");
        return 77;
    }
    if (validation) {
        PFN_vkCreateDebugUtilsMessengerEXT create_messenger =
            (PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(a->instance, "vkCreateDebugUtilsMessengerEXT");
        CHECK(create_messenger(a->instance, &mi, NULL, &a->messenger));
    }

    /* Ask taesd what it needs before creating the device; here: the first Vulkan 1.3 device with a queue family
     * that can compute and copy, synchronization2 on (taesd_cmd_decode) and fp16 where offered. */
    VkPhysicalDevice pds[8];
    uint32_t n = 8;
    vkEnumeratePhysicalDevices(a->instance, &n, pds);
    for (uint32_t i = 0; i < n && !a->pd; i++) {
        VkPhysicalDeviceProperties p;
        vkGetPhysicalDeviceProperties(pds[i], &p);
        if (p.apiVersion < VK_API_VERSION_1_3)
            continue;
        VkQueueFamilyProperties q[16];
        uint32_t nq = 16;
        vkGetPhysicalDeviceQueueFamilyProperties(pds[i], &nq, q);
        for (uint32_t f = 0; f < nq && !a->pd; f++)
            if (q[f].queueFlags & VK_QUEUE_COMPUTE_BIT) {
                a->pd = pds[i];
                a->family = f;
            }
    }
    if (!a->pd) {
        fprintf(stderr, "embed: no Vulkan 1.3 device with a compute queue\n");
        return 77;
    }
    taesd_device_requirements req;
    if (taesd_query_device_requirements(VK_API_VERSION_1_3, &req) != TAESD_OK)
        return 1;
    VkPhysicalDeviceVulkan13Features f13 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES };
    VkPhysicalDeviceFeatures2 f2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f13 };
    vkGetPhysicalDeviceFeatures2(a->pd, &f2);
    if (!f13.synchronization2) {
        fprintf(stderr, "embed: the device has no synchronization2\n");
        return 77;
    }
    VkPhysicalDeviceVulkan13Features e13 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES,
                                             .synchronization2 = req.cmd_synchronization2 };
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qi = { .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, .queueFamilyIndex = a->family,
                                   .queueCount = 1, .pQueuePriorities = &prio };
    VkDeviceCreateInfo di = { .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .pNext = &e13, .queueCreateInfoCount = 1,
                              .pQueueCreateInfos = &qi, .enabledExtensionCount = req.extension_count,
                              .ppEnabledExtensionNames = req.extensions };
    CHECK(vkCreateDevice(a->pd, &di, NULL, &a->device));
    vkGetDeviceQueue(a->device, a->family, 0, &a->queue);
    vkGetPhysicalDeviceMemoryProperties(a->pd, &a->mem);
    return 0;
}

static uint32_t memory_type(const app *a, uint32_t bits, VkMemoryPropertyFlags want)
{
    for (uint32_t i = 0; i < a->mem.memoryTypeCount; i++)
        if ((bits & (1u << i)) && (a->mem.memoryTypes[i].propertyFlags & want) == want)
            return i;
    fprintf(stderr, "embed: no memory type with flags 0x%x\n", (unsigned)want);
    exit(1);
}

static VkDeviceMemory bind_memory(const app *a, VkMemoryRequirements mr, VkMemoryPropertyFlags want)
{
    VkMemoryAllocateInfo ai = { .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = mr.size,
                                .memoryTypeIndex = memory_type(a, mr.memoryTypeBits, want) };
    VkDeviceMemory m;
    CHECK(vkAllocateMemory(a->device, &ai, NULL, &m));
    return m;
}

int main(int argc, char **argv)
{
    if (argc != 5 || strcmp(argv[1], "-m") != 0) {
        fprintf(stderr, "usage: %s -m DECODER LATENT.npy REFERENCE.png\n", argv[0]);
        return 1;
    }
    const char *weights = argv[2], *latent_path = argv[3], *ref_path = argv[4];
    const char *env = getenv("TAESD_VALIDATION");
    const bool validation = env && *env && strcmp(env, "0") != 0;
    int c, h, w;
    float *latent = read_npy(latent_path, &c, &h, &w);
    if (!latent) {
        fprintf(stderr, "embed: %s: not a float32 (1,C,H,W) or (C,H,W) .npy file\n", latent_path);
        return 1;
    }

    app a = { 0 };
    int rc = create_device(&a, validation);
    if (rc != 0) {
        free(latent);
        return rc;
    }

    /* taesd on our device. */
    taesd_vulkan_host host = {
        .get_instance_proc_addr = vkGetInstanceProcAddr, .instance = a.instance,
        .instance_api_version = VK_API_VERSION_1_3, .physical_device = a.pd, .device = a.device,
        .queue_family_index = a.family, .queue = a.queue, .synchronization2_enabled = true,
    };
    taesd_context_desc cd = { .host = &host };
    taesd_context *ctx = NULL;
    taesd_model *model = NULL;
    taesd_plan *plan = NULL;
    taesd_model_desc md = { .path = weights };
    if (taesd_context_create(&cd, &ctx) != TAESD_OK || taesd_model_load(ctx, &md, &model) != TAESD_OK ||
        taesd_plan_create(model, h, w, &plan) != TAESD_OK) {
        fprintf(stderr, "embed: %s\n", ctx ? taesd_context_last_error(ctx) : "taesd_context_create failed");
        return 1;
    }
    int oh, ow;
    taesd_plan_output_size(plan, &oh, &ow);

    /* Our resources: the latent in a host-visible buffer, an RGBA8 image, a readback buffer. */
    const VkDeviceSize in_bytes = (VkDeviceSize)c * (VkDeviceSize)h * (VkDeviceSize)w * sizeof(float);
    const VkDeviceSize px_bytes = (VkDeviceSize)oh * (VkDeviceSize)ow * 4;
    const VkMemoryPropertyFlags HOST = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    VkBuffer in_buf, rb_buf;
    VkBufferCreateInfo bi = { .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = in_bytes,
                              .usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT };
    CHECK(vkCreateBuffer(a.device, &bi, NULL, &in_buf));
    bi.size = px_bytes;
    bi.usage = VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    CHECK(vkCreateBuffer(a.device, &bi, NULL, &rb_buf));
    VkMemoryRequirements mr;
    vkGetBufferMemoryRequirements(a.device, in_buf, &mr);
    VkDeviceMemory in_mem = bind_memory(&a, mr, HOST);
    CHECK(vkBindBufferMemory(a.device, in_buf, in_mem, 0));
    vkGetBufferMemoryRequirements(a.device, rb_buf, &mr);
    VkDeviceMemory rb_mem = bind_memory(&a, mr, HOST);
    CHECK(vkBindBufferMemory(a.device, rb_buf, rb_mem, 0));
    void *in_map, *rb_map;
    CHECK(vkMapMemory(a.device, in_mem, 0, VK_WHOLE_SIZE, 0, &in_map));
    CHECK(vkMapMemory(a.device, rb_mem, 0, VK_WHOLE_SIZE, 0, &rb_map));
    memcpy(in_map, latent, (size_t)in_bytes);

    VkImage image;
    VkImageCreateInfo ii = { .sType = VK_STRUCTURE_TYPE_IMAGE_CREATE_INFO, .imageType = VK_IMAGE_TYPE_2D,
                             .format = VK_FORMAT_R8G8B8A8_UNORM, .extent = { (uint32_t)ow, (uint32_t)oh, 1 },
                             .mipLevels = 1, .arrayLayers = 1, .samples = VK_SAMPLE_COUNT_1_BIT,
                             .tiling = VK_IMAGE_TILING_OPTIMAL,
                             .usage = VK_IMAGE_USAGE_TRANSFER_DST_BIT | VK_IMAGE_USAGE_TRANSFER_SRC_BIT |
                                      VK_IMAGE_USAGE_SAMPLED_BIT };
    CHECK(vkCreateImage(a.device, &ii, NULL, &image));
    vkGetImageMemoryRequirements(a.device, image, &mr);
    VkDeviceMemory image_mem = bind_memory(&a, mr, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    CHECK(vkBindImageMemory(a.device, image, image_mem, 0));

    /* Our command buffer: taesd's decode into our image, then our own copy of it back to the host. */
    VkCommandPool pool;
    VkCommandPoolCreateInfo pi = { .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO, .queueFamilyIndex = a.family };
    CHECK(vkCreateCommandPool(a.device, &pi, NULL, &pool));
    VkCommandBufferAllocateInfo cai = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, .commandPool = pool,
                                        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY, .commandBufferCount = 1 };
    VkCommandBuffer cb;
    CHECK(vkAllocateCommandBuffers(a.device, &cai, &cb));
    VkCommandBufferBeginInfo cbi = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO };
    CHECK(vkBeginCommandBuffer(cb, &cbi));
    taesd_cmd_input input = {
        .buffer = in_buf, .layout = TAESD_GPU_FLOAT32,
        .state = { .stage_before = VK_PIPELINE_STAGE_2_HOST_BIT, .access_before = VK_ACCESS_2_HOST_WRITE_BIT },
    };
    taesd_cmd_output output = {
        .image = image, .image_format = VK_FORMAT_R8G8B8A8_UNORM,
        .state = { .layout_before = VK_IMAGE_LAYOUT_UNDEFINED,   /* fresh image: nothing to keep */
                   .stage_after = VK_PIPELINE_STAGE_2_COPY_BIT, .access_after = VK_ACCESS_2_TRANSFER_READ_BIT,
                   .layout_after = VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL },
    };
    if (taesd_cmd_decode(plan, cb, &input, &output) != TAESD_OK) {
        fprintf(stderr, "embed: %s\n", taesd_context_last_error(ctx));
        return 1;
    }
    VkBufferImageCopy copy = { .imageSubresource = { VK_IMAGE_ASPECT_COLOR_BIT, 0, 0, 1 },
                               .imageExtent = { (uint32_t)ow, (uint32_t)oh, 1 } };
    vkCmdCopyImageToBuffer(cb, image, VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL, rb_buf, 1, &copy);
    VkMemoryBarrier2 to_host = { .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER_2,
                                 .srcStageMask = VK_PIPELINE_STAGE_2_COPY_BIT,
                                 .srcAccessMask = VK_ACCESS_2_TRANSFER_WRITE_BIT,
                                 .dstStageMask = VK_PIPELINE_STAGE_2_HOST_BIT,
                                 .dstAccessMask = VK_ACCESS_2_HOST_READ_BIT };
    VkDependencyInfo dep = { .sType = VK_STRUCTURE_TYPE_DEPENDENCY_INFO, .memoryBarrierCount = 1,
                             .pMemoryBarriers = &to_host };
    vkCmdPipelineBarrier2(cb, &dep);
    CHECK(vkEndCommandBuffer(cb));
    VkFence fence;
    VkFenceCreateInfo fci = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
    CHECK(vkCreateFence(a.device, &fci, NULL, &fence));
    VkSubmitInfo si = { .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cb };
    CHECK(vkQueueSubmit(a.queue, 1, &si, fence));
    CHECK(vkWaitForFences(a.device, 1, &fence, VK_TRUE, UINT64_MAX));

    /* Compare with the CLI's PNG. */
    int rw = 0, rh = 0, rn = 0;
    unsigned char *ref = stbi_load(ref_path, &rw, &rh, &rn, 3);
    int status = 0;
    if (!ref || rw != ow || rh != oh) {
        fprintf(stderr, "embed: %s: not a %dx%d PNG\n", ref_path, ow, oh);
        status = 1;
    } else {
        const unsigned char *px = rb_map;
        long differing = 0;
        int worst = 0;
        for (long i = 0; i < (long)ow * oh; i++) {
            int d = 0;
            for (int k = 0; k < 3; k++) {
                int e = abs((int)px[4 * i + k] - (int)ref[3 * i + k]);
                d = e > d ? e : d;
            }
            differing += d != 0;
            worst = d > worst ? d : worst;
        }
        printf("embed: %dx%d decoded into the application's image: %ld of %d pixels differ from %s (max %d)\n", ow,
               oh, differing, ow * oh, ref_path, worst);
        status = differing != 0;
    }
    stbi_image_free(ref);

    vkDestroyFence(a.device, fence, NULL);
    vkDestroyCommandPool(a.device, pool, NULL);
    taesd_plan_destroy(plan);   /* after the command buffer finished */
    taesd_model_destroy(model);
    taesd_context_destroy(ctx);
    vkDestroyImage(a.device, image, NULL);
    vkFreeMemory(a.device, image_mem, NULL);
    vkDestroyBuffer(a.device, in_buf, NULL);
    vkDestroyBuffer(a.device, rb_buf, NULL);
    vkFreeMemory(a.device, in_mem, NULL);
    vkFreeMemory(a.device, rb_mem, NULL);
    vkDestroyDevice(a.device, NULL);
    if (a.messenger)
        ((PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(a.instance, "vkDestroyDebugUtilsMessengerEXT"))(
            a.instance, a.messenger, NULL);
    vkDestroyInstance(a.instance, NULL);
    free(latent);
    if (validation_messages) {
        fprintf(stderr, "embed: %u validation messages\n", validation_messages);
        status = 1;
    }
    return status;
}
