/* test_cmd.c — taesd_cmd_decode: a decode recorded into the application's own command buffer (taesd_vulkan.h).
 *
 * The test is the application (tests/host_app.c: its own instance with the validation layer, device with
 * synchronization2, queue). It uploads a latent into its own buffer, records taesd's decode into its own command
 * buffer with its own image or buffer as the target, copies the result back itself, and compares with
 * taesd_decode of the same latent: every input layout (float32, float16) and output (RGBA8, BGRA8, RGBA16F,
 * RGBA32F images at an offset; float32 and RGBA8 buffers). Also: recording again builds nothing, a plan of another
 * size, the errors. Any validation message fails. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host_app.h"
#include "io/npy.h"
#include "io/tensors.h"
#include "testutil.h"

#define WEIGHTS "weights/synth_sd_decoder_f16.safetensors"
#define LATENT "golden/synth_sd_dec_12x8.in.npy"

/* ---- the application's own Vulkan objects ----------------------------------------------------------------- */

typedef struct host_buffer {
    VkBuffer buffer;
    VkDeviceMemory memory;
    void *mapped;
} host_buffer;

typedef struct host_image {
    VkImage image;
    VkDeviceMemory memory;
} host_image;

static uint32_t memory_type(uint32_t bits, VkMemoryPropertyFlags want)
{
    VkPhysicalDeviceMemoryProperties mp;
    ((PFN_vkGetPhysicalDeviceMemoryProperties)inst_fn("vkGetPhysicalDeviceMemoryProperties"))(app.pd, &mp);
    for (uint32_t i = 0; i < mp.memoryTypeCount; i++)
        if ((bits & (1u << i)) && (mp.memoryTypes[i].propertyFlags & want) == want)
            return i;
    fail_msg("no memory type with flags 0x%x", (unsigned)want);
    return 0;
}

static host_buffer buffer_create(VkDeviceSize size, VkBufferUsageFlags usage)
{
    host_buffer b = { 0 };
    VkBufferCreateInfo bi = { .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = size, .usage = usage,
                              .sharingMode = VK_SHARING_MODE_EXCLUSIVE };
    assert_int_equal(app.CreateBuffer(app.device, &bi, NULL, &b.buffer), VK_SUCCESS);
    VkMemoryRequirements mr;
    app.GetBufferMemoryRequirements(app.device, b.buffer, &mr);
    VkMemoryAllocateInfo ai = { .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = mr.size,
                                .memoryTypeIndex = memory_type(mr.memoryTypeBits,
                                                               VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                                                   VK_MEMORY_PROPERTY_HOST_COHERENT_BIT) };
    assert_int_equal(app.AllocateMemory(app.device, &ai, NULL, &b.memory), VK_SUCCESS);
    assert_int_equal(app.BindBufferMemory(app.device, b.buffer, b.memory, 0), VK_SUCCESS);
    assert_int_equal(DEV_FN(vkMapMemory)(app.device, b.memory, 0, VK_WHOLE_SIZE, 0, &b.mapped), VK_SUCCESS);
    return b;
}

static void buffer_destroy(host_buffer *b)
{
    app.DestroyBuffer(app.device, b->buffer, NULL);
    app.FreeMemory(app.device, b->memory, NULL);
}

static host_image image_create(VkFormat format, uint32_t w, uint32_t h)
{
    host_image im = { 0 };
    VkImageCreateInfo ci = { .sType = VK_STRUCTURE_TYPE_IMAGE_CREATE_INFO, .imageType = VK_IMAGE_TYPE_2D,
                             .format = format, .extent = { w, h, 1 }, .mipLevels = 1, .arrayLayers = 1,
                             .samples = VK_SAMPLE_COUNT_1_BIT, .tiling = VK_IMAGE_TILING_OPTIMAL,
                             .usage = VK_IMAGE_USAGE_TRANSFER_DST_BIT | VK_IMAGE_USAGE_TRANSFER_SRC_BIT |
                                      VK_IMAGE_USAGE_SAMPLED_BIT,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE, .initialLayout = VK_IMAGE_LAYOUT_UNDEFINED };
    assert_int_equal(DEV_FN(vkCreateImage)(app.device, &ci, NULL, &im.image), VK_SUCCESS);
    VkMemoryRequirements mr;
    DEV_FN(vkGetImageMemoryRequirements)(app.device, im.image, &mr);
    VkMemoryAllocateInfo ai = { .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = mr.size,
                                .memoryTypeIndex = memory_type(mr.memoryTypeBits,
                                                               VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT) };
    assert_int_equal(app.AllocateMemory(app.device, &ai, NULL, &im.memory), VK_SUCCESS);
    assert_int_equal(DEV_FN(vkBindImageMemory)(app.device, im.image, im.memory, 0), VK_SUCCESS);
    return im;
}

static void image_destroy(host_image *im)
{
    DEV_FN(vkDestroyImage)(app.device, im->image, NULL);
    app.FreeMemory(app.device, im->memory, NULL);
}

static VkCommandPool pool;

static VkCommandBuffer cmd_begin(void)
{
    if (!pool) {
        VkCommandPoolCreateInfo pi = { .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                       .queueFamilyIndex = app.family };
        assert_int_equal(DEV_FN(vkCreateCommandPool)(app.device, &pi, NULL, &pool), VK_SUCCESS);
    }
    VkCommandBufferAllocateInfo ai = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, .commandPool = pool,
                                       .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY, .commandBufferCount = 1 };
    VkCommandBuffer cb;
    assert_int_equal(DEV_FN(vkAllocateCommandBuffers)(app.device, &ai, &cb), VK_SUCCESS);
    VkCommandBufferBeginInfo bi = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                    .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT };
    assert_int_equal(DEV_FN(vkBeginCommandBuffer)(cb, &bi), VK_SUCCESS);
    return cb;
}

static void cmd_submit_wait(VkCommandBuffer cb)
{
    assert_int_equal(DEV_FN(vkEndCommandBuffer)(cb), VK_SUCCESS);
    VkFenceCreateInfo fi = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
    VkFence fence;
    assert_int_equal(app.CreateFence(app.device, &fi, NULL, &fence), VK_SUCCESS);
    VkSubmitInfo si = { .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cb };
    assert_int_equal(app.QueueSubmit(app.queue, 1, &si, fence), VK_SUCCESS);
    assert_int_equal(app.WaitForFences(app.device, 1, &fence, VK_TRUE, UINT64_MAX), VK_SUCCESS);
    app.DestroyFence(app.device, fence, NULL);
    DEV_FN(vkFreeCommandBuffers)(app.device, pool, 1, &cb);
}

/* ---- references ------------------------------------------------------------------------------------------- */

typedef struct fixture {
    taesd_context *ctx;
    taesd_model *model;
    npy_array latent;
    int c, h, w, oh, ow;
    float *ref;          /* taesd_decode of the latent: 3 × oh × ow */
} fixture;

static fixture fx;

static uint8_t png_byte(float v)   /* as src/io/image.c writes PNGs */
{
    float x = v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f;
    return (uint8_t)lrintf(x * 255.0f);
}

static float clamp01(float v) { return v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f; }

static int setup(void **state)
{
    (void)state;
    if (host_create(state) != 0)
        return -1;
    if (!app.sync2) {
        fprintf(stderr, "the device offers no synchronization2: taesd_cmd_decode cannot be tested\n");
        return -1;
    }
    taesd_vulkan_host h = host_desc();
    taesd_context_desc cd = { .host = &h };
    if (taesd_context_create(&cd, &fx.ctx) != TAESD_OK)
        return -1;
    taesd_model_desc md = { .path = shared_path(WEIGHTS), .precision = TAESD_PRECISION_FP32 };
    if (taesd_model_load(fx.ctx, &md, &fx.model) != TAESD_OK) {
        fprintf(stderr, "%s\n", taesd_context_last_error(fx.ctx));
        return -1;
    }
    char err[256];
    if (npy_read_file(shared_path(LATENT), &fx.latent, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", LATENT, err);
        return -1;
    }
    fx.c = (int)fx.latent.shape[1];
    fx.h = (int)fx.latent.shape[2];
    fx.w = (int)fx.latent.shape[3];
    taesd_output_size(fx.model, TAESD_PART_DECODER, fx.h, fx.w, &fx.oh, &fx.ow);
    fx.ref = malloc(sizeof(float) * 3 * (size_t)fx.oh * (size_t)fx.ow);
    if (!fx.ref || taesd_decode(fx.model, fx.latent.data, fx.c, fx.h, fx.w, fx.ref) != TAESD_OK)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    free(fx.ref);
    npy_free(&fx.latent);
    taesd_model_destroy(fx.model);
    taesd_context_destroy(fx.ctx);
    if (pool)
        DEV_FN(vkDestroyCommandPool)(app.device, pool, NULL);
    return host_destroy(state);
}

/* The latent in a host buffer, float32 or float16, at a non-zero offset. */
#define IN_OFFSET 256
static host_buffer upload_latent(bool half)
{
    size_t n = (size_t)fx.c * (size_t)fx.h * (size_t)fx.w;
    host_buffer b = buffer_create(IN_OFFSET + n * 4, VK_BUFFER_USAGE_TRANSFER_SRC_BIT);
    uint8_t *dst = (uint8_t *)b.mapped + IN_OFFSET;
    for (size_t i = 0; i < n; i++) {
        if (half) {
            uint16_t v = tt_float_to_half(fx.latent.data[i]);
            memcpy(dst + 2 * i, &v, 2);
        } else {
            memcpy(dst + 4 * i, &fx.latent.data[i], 4);
        }
    }
    return b;
}

static const taesd_resource_state input_state = {
    .stage_before = VK_PIPELINE_STAGE_2_HOST_BIT, .access_before = VK_ACCESS_2_HOST_WRITE_BIT,
};

/* ---- tests ------------------------------------------------------------------------------------------------ */

/* Decodes into an image of `format` at (x, y), reads the whole image back and checks every pixel: decoded ones
 * against taesd_decode, the rest untouched (the image was cleared to a marker first). */
static void decode_into_image(VkFormat format, int bpp, bool half, int x, int y)
{
    taesd_plan *plan = NULL;
    assert_int_equal(taesd_plan_create(fx.model, fx.h, fx.w, &plan), TAESD_OK);
    int ph, pw;
    taesd_plan_output_size(plan, &ph, &pw);
    assert_int_equal(ph, fx.oh);
    assert_int_equal(pw, fx.ow);
    const uint32_t iw = (uint32_t)(fx.ow + x + 3), ih = (uint32_t)(fx.oh + y + 2);
    host_image im = image_create(format, iw, ih);
    host_buffer in = upload_latent(half);
    host_buffer rb = buffer_create((VkDeviceSize)iw * ih * (VkDeviceSize)bpp, VK_BUFFER_USAGE_TRANSFER_DST_BIT);

    VkCommandBuffer cb = cmd_begin();
    /* The application's own use of the image before taesd: cleared to a marker value. */
    VkImageMemoryBarrier to_dst = { .sType = VK_STRUCTURE_TYPE_IMAGE_MEMORY_BARRIER, .dstAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
                                    .oldLayout = VK_IMAGE_LAYOUT_UNDEFINED, .newLayout = VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL,
                                    .srcQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED, .dstQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED,
                                    .image = im.image, .subresourceRange = { VK_IMAGE_ASPECT_COLOR_BIT, 0, 1, 0, 1 } };
    DEV_FN(vkCmdPipelineBarrier)(cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 0, NULL, 0,
                                 NULL, 1, &to_dst);
    VkClearColorValue marker = { .float32 = { 0.25f, 0.5f, 0.75f, 0.0f } };
    VkImageSubresourceRange range = { VK_IMAGE_ASPECT_COLOR_BIT, 0, 1, 0, 1 };
    DEV_FN(vkCmdClearColorImage)(cb, im.image, VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, &marker, 1, &range);

    taesd_cmd_input ci = { .buffer = in.buffer, .offset = IN_OFFSET,
                           .layout = half ? TAESD_GPU_FLOAT16 : TAESD_GPU_FLOAT32, .state = input_state };
    taesd_cmd_output co = { .image = im.image, .image_format = format, .x = x, .y = y,
                            .state = { .stage_before = VK_PIPELINE_STAGE_2_CLEAR_BIT,
                                       .access_before = VK_ACCESS_2_TRANSFER_WRITE_BIT,
                                       .layout_before = VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL,
                                       .stage_after = VK_PIPELINE_STAGE_2_COPY_BIT,
                                       .access_after = VK_ACCESS_2_TRANSFER_READ_BIT,
                                       .layout_after = VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL } };
    assert_int_equal(taesd_cmd_decode(plan, cb, &ci, &co), TAESD_OK);
    VkBufferImageCopy copy = { .imageSubresource = { VK_IMAGE_ASPECT_COLOR_BIT, 0, 0, 1 }, .imageExtent = { iw, ih, 1 } };
    DEV_FN(vkCmdCopyImageToBuffer)(cb, im.image, VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL, rb.buffer, 1, &copy);
    VkBufferMemoryBarrier to_host = { .sType = VK_STRUCTURE_TYPE_BUFFER_MEMORY_BARRIER,
                                      .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT, .dstAccessMask = VK_ACCESS_HOST_READ_BIT,
                                      .srcQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED, .dstQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED,
                                      .buffer = rb.buffer, .size = VK_WHOLE_SIZE };
    DEV_FN(vkCmdPipelineBarrier)(cb, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 0, NULL, 1,
                                 &to_host, 0, NULL);
    cmd_submit_wait(cb);

    /* float16 input: the reference is the decode of the latent rounded to half. */
    float *ref = fx.ref, *ref_half = NULL;
    if (half) {
        size_t n = (size_t)fx.c * (size_t)fx.h * (size_t)fx.w;
        float *lat = malloc(n * sizeof(float));
        ref_half = malloc(sizeof(float) * 3 * (size_t)fx.oh * (size_t)fx.ow);
        assert_non_null(lat);
        assert_non_null(ref_half);
        for (size_t i = 0; i < n; i++)
            lat[i] = tt_half_to_float(tt_float_to_half(fx.latent.data[i]));
        assert_int_equal(taesd_decode(fx.model, lat, fx.c, fx.h, fx.w, ref_half), TAESD_OK);
        free(lat);
        ref = ref_half;
    }
    const size_t plane = (size_t)fx.oh * (size_t)fx.ow;
    const bool bgra = format == VK_FORMAT_B8G8R8A8_UNORM || format == VK_FORMAT_B8G8R8A8_SRGB;
    const bool srgb = format == VK_FORMAT_R8G8B8A8_SRGB || format == VK_FORMAT_B8G8R8A8_SRGB;
    double worst = 0;
    int inside = 0, outside = 0;
    for (uint32_t py = 0; py < ih; py++)
        for (uint32_t px = 0; px < iw; px++) {
            const uint8_t *p = (const uint8_t *)rb.mapped + ((size_t)py * iw + px) * (size_t)bpp;
            bool in_img = (int)px >= x && (int)px < x + fx.ow && (int)py >= y && (int)py < y + fx.oh;
            size_t i = in_img ? (size_t)(py - (uint32_t)y) * (size_t)fx.ow + (px - (uint32_t)x) : 0;
            for (int ch = 0; ch < 4; ch++) {
                if (!in_img && srgb && ch < 3)
                    continue;   /* the clear colour is stored sRGB-encoded there */
                float want = !in_img ? marker.float32[ch] : ch == 3 ? 1.0f : ref[(size_t)ch * plane + i];
                double d;
                if (bpp == 4) {
                    int cch = bgra && ch < 3 ? 2 - ch : ch;
                    uint8_t want8 = !in_img ? (uint8_t)lrintf(marker.float32[ch] * 255.0f) : png_byte(want);
                    d = fabs((double)p[cch] - want8);
                } else if (bpp == 8) {
                    uint16_t hv;
                    memcpy(&hv, p + 2 * ch, 2);
                    d = fabs((double)tt_half_to_float(hv) - clamp01(want));
                } else {
                    float fv;
                    memcpy(&fv, p + 4 * ch, 4);
                    d = fabs((double)fv - clamp01(want));
                }
                if (d > worst)
                    worst = d;
            }
            if (in_img)
                inside++;
            else
                outside++;
        }
    printf("  format %d, %s input, at (%d,%d): %d decoded + %d untouched pixels, max diff %g\n", (int)format,
           half ? "float16" : "float32", x, y, inside, outside, worst);
    /* 8-bit: byte-exact with the PNG writer; 16F: half rounding of [0,1] values; 32F: exact. */
    assert_true(worst <= (bpp == 8 ? 1.0 / 2048 : 0.0));
    free(ref_half);
    buffer_destroy(&in);
    buffer_destroy(&rb);
    image_destroy(&im);
    taesd_plan_destroy(plan);
    assert_int_equal(atomic_load(&app.messages), 0);
}

static void test_image_rgba8(void **state) { (void)state; decode_into_image(VK_FORMAT_R8G8B8A8_UNORM, 4, false, 0, 0); }
static void test_image_bgra8_offset(void **state) { (void)state; decode_into_image(VK_FORMAT_B8G8R8A8_UNORM, 4, false, 5, 3); }
static void test_image_srgb_half_input(void **state) { (void)state; decode_into_image(VK_FORMAT_R8G8B8A8_SRGB, 4, true, 1, 2); }
static void test_image_rgba16f(void **state) { (void)state; decode_into_image(VK_FORMAT_R16G16B16A16_SFLOAT, 8, false, 2, 0); }
static void test_image_rgba32f(void **state) { (void)state; decode_into_image(VK_FORMAT_R32G32B32A32_SFLOAT, 16, true, 0, 1); }

/* Buffer outputs: the raw float32 decoder output (bit-exact with taesd_decode) and RGBA8 pixels; recorded twice in
 * one command buffer (the second decode of a new latent must see its own input), and a second recording adds no
 * pipeline, descriptor set or command buffer. */
static void test_buffer_outputs(void **state)
{
    (void)state;
    taesd_plan *plan = NULL;
    assert_int_equal(taesd_plan_create(fx.model, fx.h, fx.w, &plan), TAESD_OK);
    const size_t plane = (size_t)fx.oh * (size_t)fx.ow;
    host_buffer in = upload_latent(false);
    host_buffer outf = buffer_create(64 + plane * 12, VK_BUFFER_USAGE_TRANSFER_DST_BIT);
    host_buffer out8 = buffer_create(plane * 4, VK_BUFFER_USAGE_TRANSFER_DST_BIT);
    taesd_cmd_input ci = { .buffer = in.buffer, .offset = IN_OFFSET, .state = input_state };
    taesd_cmd_output of = { .buffer = outf.buffer, .offset = 64, .buffer_layout = TAESD_GPU_FLOAT32,
                            .state = { .stage_after = VK_PIPELINE_STAGE_2_HOST_BIT,
                                       .access_after = VK_ACCESS_2_HOST_READ_BIT } };
    taesd_cmd_output o8 = { .buffer = out8.buffer, .buffer_layout = TAESD_GPU_RGBA8,
                            .state = { .stage_after = VK_PIPELINE_STAGE_2_HOST_BIT,
                                       .access_after = VK_ACCESS_2_HOST_READ_BIT } };
    for (int round = 0; round < 2; round++) {
        taesd_context_stats before, after;
        taesd_context_get_stats(fx.ctx, &before);
        memset(outf.mapped, 0, 64 + plane * 12);
        memset(out8.mapped, 0, plane * 4);
        VkCommandBuffer cb = cmd_begin();
        assert_int_equal(taesd_cmd_decode(plan, cb, &ci, &of), TAESD_OK);
        assert_int_equal(taesd_cmd_decode(plan, cb, &ci, &o8), TAESD_OK);
        cmd_submit_wait(cb);
        taesd_context_get_stats(fx.ctx, &after);
        if (round == 1) {
            assert_int_equal(after.pipelines_created, before.pipelines_created);
            assert_int_equal(after.descriptor_sets_allocated, before.descriptor_sets_allocated);
            assert_int_equal(after.command_buffers_recorded, before.command_buffers_recorded);
        }
        const float *f = (const float *)((const uint8_t *)outf.mapped + 64);
        assert_memory_equal(f, fx.ref, plane * 3 * sizeof(float));
        const uint8_t *p8 = out8.mapped;
        for (size_t i = 0; i < plane; i++) {
            for (int ch = 0; ch < 3; ch++)
                if (p8[4 * i + (size_t)ch] != png_byte(fx.ref[(size_t)ch * plane + i]))
                    fail_msg("pixel %zu channel %d: %u, want %u", i, ch, p8[4 * i + (size_t)ch],
                             png_byte(fx.ref[(size_t)ch * plane + i]));
            assert_int_equal(p8[4 * i + 3], 255);
        }
    }
    printf("  float32 buffer bit-exact with taesd_decode, RGBA8 buffer byte-exact with the PNG writer\n");
    buffer_destroy(&in);
    buffer_destroy(&outf);
    buffer_destroy(&out8);
    taesd_plan_destroy(plan);
    assert_int_equal(atomic_load(&app.messages), 0);
}

/* A plan of another (odd) size works beside the first. */
static void test_other_size(void **state)
{
    (void)state;
    const int h = 5, w = 7, c = fx.c;
    float *lat = malloc(sizeof(float) * (size_t)(c * h * w));
    float *ref = malloc(sizeof(float) * 3 * 40 * 56);
    assert_non_null(lat);
    assert_non_null(ref);
    fill_random(lat, (size_t)(c * h * w), 7, -3.0f, 3.0f);
    assert_int_equal(taesd_decode(fx.model, lat, c, h, w, ref), TAESD_OK);
    taesd_plan *plan = NULL;
    assert_int_equal(taesd_plan_create(fx.model, h, w, &plan), TAESD_OK);
    host_buffer in = buffer_create(sizeof(float) * (size_t)(c * h * w), VK_BUFFER_USAGE_TRANSFER_SRC_BIT);
    memcpy(in.mapped, lat, sizeof(float) * (size_t)(c * h * w));
    host_buffer out = buffer_create(sizeof(float) * 3 * 40 * 56, VK_BUFFER_USAGE_TRANSFER_DST_BIT);
    taesd_cmd_input ci = { .buffer = in.buffer, .state = input_state };
    taesd_cmd_output co = { .buffer = out.buffer, .state = { .stage_after = VK_PIPELINE_STAGE_2_HOST_BIT,
                                                             .access_after = VK_ACCESS_2_HOST_READ_BIT } };
    VkCommandBuffer cb = cmd_begin();
    assert_int_equal(taesd_cmd_decode(plan, cb, &ci, &co), TAESD_OK);
    cmd_submit_wait(cb);
    assert_memory_equal(out.mapped, ref, sizeof(float) * 3 * 40 * 56);
    buffer_destroy(&in);
    buffer_destroy(&out);
    taesd_plan_destroy(plan);
    free(lat);
    free(ref);
    assert_int_equal(atomic_load(&app.messages), 0);
}

static void test_errors(void **state)
{
    (void)state;
    taesd_plan *plan = (taesd_plan *)1;
    assert_int_equal(taesd_plan_create(NULL, 4, 4, &plan), TAESD_ERROR_INVALID_ARGUMENT);
    assert_int_equal(taesd_plan_create(fx.model, 0, 4, &plan), TAESD_ERROR_INVALID_ARGUMENT);
    assert_null(plan);
    assert_int_equal(taesd_plan_create(fx.model, 4, 4, NULL), TAESD_ERROR_INVALID_ARGUMENT);
    assert_int_equal(taesd_cmd_decode(NULL, NULL, NULL, NULL), TAESD_ERROR_INVALID_ARGUMENT);
    taesd_plan_destroy(NULL);

    assert_int_equal(taesd_plan_create(fx.model, fx.h, fx.w, &plan), TAESD_OK);
    host_buffer in = upload_latent(false);
    VkCommandBuffer cb = cmd_begin();
    taesd_cmd_input ci = { .buffer = in.buffer, .offset = IN_OFFSET };
    taesd_cmd_output co = { .buffer = in.buffer };
    taesd_cmd_output both = { .buffer = in.buffer, .image = (VkImage)(uintptr_t)1 };
    taesd_cmd_output neither = { 0 };
    taesd_cmd_output badfmt = { .image = (VkImage)(uintptr_t)1, .image_format = VK_FORMAT_R8_UNORM };
    taesd_cmd_output badlayout = { .buffer = in.buffer, .buffer_layout = TAESD_GPU_FLOAT16 };
    taesd_cmd_input misaligned = { .buffer = in.buffer, .offset = 2 };
    assert_int_equal(taesd_cmd_decode(plan, cb, &ci, &both), TAESD_ERROR_INVALID_ARGUMENT);
    assert_int_equal(taesd_cmd_decode(plan, cb, &ci, &neither), TAESD_ERROR_INVALID_ARGUMENT);
    assert_int_equal(taesd_cmd_decode(plan, cb, &ci, &badfmt), TAESD_ERROR_INVALID_ARGUMENT);
    assert_non_null(strstr(taesd_context_last_error(fx.ctx), "format"));
    assert_int_equal(taesd_cmd_decode(plan, cb, &ci, &badlayout), TAESD_ERROR_INVALID_ARGUMENT);
    assert_int_equal(taesd_cmd_decode(plan, cb, &misaligned, &co), TAESD_ERROR_INVALID_ARGUMENT);
    assert_int_equal(taesd_cmd_decode(plan, NULL, &ci, &co), TAESD_ERROR_INVALID_ARGUMENT);
    cmd_submit_wait(cb);   /* nothing was recorded by the failed calls: an empty submit */
    buffer_destroy(&in);
    taesd_plan_destroy(plan);

    /* No synchronization2 granted: plans are refused with a reason. */
    taesd_vulkan_host h = host_desc();
    h.synchronization2_enabled = false;
    taesd_context_desc cd = { .host = &h };
    taesd_context *ctx = NULL;
    assert_int_equal(taesd_context_create(&cd, &ctx), TAESD_OK);
    taesd_model_desc md = { .path = shared_path(WEIGHTS), .precision = TAESD_PRECISION_FP32 };
    taesd_model *m = NULL;
    assert_int_equal(taesd_model_load(ctx, &md, &m), TAESD_OK);
    assert_int_equal(taesd_plan_create(m, 4, 4, &plan), TAESD_ERROR_UNSUPPORTED);
    assert_non_null(strstr(taesd_context_last_error(ctx), "synchronization2"));
    taesd_model_destroy(m);
    taesd_context_destroy(ctx);

    /* A library-owned device: the application has no command buffer of that device to record into. */
    taesd_context_desc od = { 0 };
    assert_int_equal(taesd_context_create(&od, &ctx), TAESD_OK);
    assert_int_equal(taesd_model_load(ctx, &md, &m), TAESD_OK);
    assert_int_equal(taesd_plan_create(m, 4, 4, &plan), TAESD_ERROR_UNSUPPORTED);
    assert_non_null(strstr(taesd_context_last_error(ctx), "application's device"));
    assert_int_equal(taesd_context_validation_messages(ctx), 0);
    taesd_model_destroy(m);
    taesd_context_destroy(ctx);

    /* An encoder-only model has nothing to decode with. */
    md.path = shared_path("weights/synth_sd_encoder_f16.safetensors");
    cd.host = &h;
    h.synchronization2_enabled = true;
    assert_int_equal(taesd_context_create(&cd, &ctx), TAESD_OK);
    assert_int_equal(taesd_model_load(ctx, &md, &m), TAESD_OK);
    assert_int_equal(taesd_plan_create(m, 4, 4, &plan), TAESD_ERROR_UNSUPPORTED);
    assert_non_null(strstr(taesd_context_last_error(ctx), "no decoder"));
    taesd_model_destroy(m);
    taesd_context_destroy(ctx);
    assert_int_equal(atomic_load(&app.messages), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_image_rgba8),
        cmocka_unit_test(test_image_bgra8_offset),
        cmocka_unit_test(test_image_srgb_half_input),
        cmocka_unit_test(test_image_rgba16f),
        cmocka_unit_test(test_image_rgba32f),
        cmocka_unit_test(test_buffer_outputs),
        cmocka_unit_test(test_other_size),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
