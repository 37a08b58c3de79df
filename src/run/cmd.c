/* cmd.c — recording a decode into the host's command buffer (taesd_plan_*, taesd_cmd_decode; taesd_vulkan.h).
 *
 * Host resources are never bound to descriptors: the input is copied into the plan's input buffer and the result
 * is copied out of a buffer of the plan's, so every descriptor set is written once when the plan is made and no
 * set can be in use by a pending command buffer when it is written. The copies cost a few percent of a decode. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "taesd_vulkan.h"

#include "api_internal.h"
#include "engine.h"
#include "shaders_spv.h"

/* io_convert.comp modes. */
enum { CONV_HALF_TO_FLOAT = 0, CONV_RGBA8 = 1, CONV_RGBA16F = 2, CONV_RGBA32F = 3 };

/* Pixel buffers by bytes per pixel: RGBA8, RGBA16F, RGBA32F. */
enum { PX_8 = 0, PX_16F = 1, PX_32F = 2, PX_KINDS = 3 };
static const int px_bytes[PX_KINDS] = { 4, 8, 16 };

struct taesd_plan {
    taesd_model *model;
    engine *e;
    gpu_graph *gg;
    plan *p;
    int h, w, out_h, out_w, channels;
    VkDescriptorPool pool;        /* the sets below */
    vk_buffer half_in;            /* FLOAT16 input, copied from the host's buffer (made on first use) */
    VkDescriptorSet half_set;
    vk_buffer px[PX_KINDS];       /* converted pixels (made on first use of that size) */
    VkDescriptorSet px_set[PX_KINDS];
    VkPipeline pipes[4][2];       /* io_convert by mode and R/B swap, looked up once: not on every recorded frame */
};

static taesd_result vk_error(taesd_model *m, VkResult vr, const char *what)
{
    api_model_error(m, MSG_CMD, "%s failed: %s", what, vkrt_result_name(vr));
    return vr == VK_ERROR_OUT_OF_DEVICE_MEMORY || vr == VK_ERROR_OUT_OF_HOST_MEMORY ? TAESD_ERROR_OUT_OF_MEMORY
                                                                                     : TAESD_ERROR_VULKAN;
}

taesd_result taesd_plan_create(taesd_model *model, int h, int w, taesd_plan **out)
{
    if (!out)
        return TAESD_ERROR_INVALID_ARGUMENT;
    *out = NULL;
    if (!model)
        return TAESD_ERROR_INVALID_ARGUMENT;
    if (h < 1 || w < 1) {
        api_model_error(model, MSG_INVALID_ARGUMENT, "taesd_plan_create: bad latent size %dx%d", w, h);
        return TAESD_ERROR_INVALID_ARGUMENT;
    }
    engine *e = api_model_engine(model);
    gpu_graph *gg = api_model_decoder(model);
    if (!gg) {
        api_model_error(model, MSG_CMD, "taesd_plan_create: the loaded weights hold no decoder");
        return TAESD_ERROR_UNSUPPORTED;
    }
    if (e->rt.owns_device) {
        api_model_error(model, MSG_CMD, "taesd_plan_create: recording into the application's command buffers needs "
                                        "a context on the application's device (taesd_context_desc.host)");
        return TAESD_ERROR_UNSUPPORTED;
    }
    if (!e->rt.sync2) {
        api_model_error(model, MSG_CMD, "taesd_plan_create: the host device has no synchronization2 "
                                        "(taesd_vulkan_host.synchronization2_enabled)");
        return TAESD_ERROR_UNSUPPORTED;
    }
    taesd_plan *tp = calloc(1, sizeof *tp);
    if (!tp)
        return TAESD_ERROR_OUT_OF_MEMORY;
    tp->model = model;
    tp->e = e;
    tp->gg = gg;
    tp->h = h;
    tp->w = w;
    tp->channels = gg->g->in_channels;
    char err[512];
    taesd_result r = gpu_graph_plan_create(e, gg, h, w, &tp->p, err, sizeof err);
    if (r != TAESD_OK) {
        api_model_error(model, r == TAESD_ERROR_SHAPE ? MSG_RUN : MSG_CMD, "taesd_plan_create: %s", err);
        free(tp);
        return r;
    }
    tp->out_h = tp->p->out_h;
    tp->out_w = tp->p->out_w;
    VkDescriptorPoolSize ps = { .type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                .descriptorCount = (1 + PX_KINDS) * ENGINE_BINDINGS };
    VkDescriptorPoolCreateInfo dpci = { .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                        .maxSets = 1 + PX_KINDS,
                                        .poolSizeCount = 1,
                                        .pPoolSizes = &ps };
    VkResult vr = e->rt.vk.vkCreateDescriptorPool(e->rt.device, &dpci, e->rt.alloc, &tp->pool);
    if (vr != VK_SUCCESS) {
        r = vk_error(model, vr, "vkCreateDescriptorPool");
        taesd_plan_destroy(tp);
        return r;
    }
    *out = tp;
    return TAESD_OK;
}

void taesd_plan_destroy(taesd_plan *tp)
{
    if (!tp)
        return;
    engine *e = tp->e;
    if (tp->pool)
        e->rt.vk.vkDestroyDescriptorPool(e->rt.device, tp->pool, e->rt.alloc);
    vkrt_buffer_destroy(&e->rt, &tp->half_in);
    for (int k = 0; k < PX_KINDS; k++)
        vkrt_buffer_destroy(&e->rt, &tp->px[k]);
    gpu_graph_plan_destroy(e, tp->p);
    free(tp);
}

void taesd_plan_output_size(const taesd_plan *tp, int *out_h, int *out_w)
{
    if (!tp)
        return;
    if (out_h)
        *out_h = tp->out_h;
    if (out_w)
        *out_w = tp->out_w;
}

/* A buffer of `size` bytes and a set reading `src` (binding 0 or 1) and writing it (binding 3 or 4), made once;
 * the set is never written again, so no pending command buffer can see it change. */
static taesd_result make_conv_target(taesd_plan *tp, VkDeviceSize size, vk_buffer *buf, VkDescriptorSet *set,
                                     bool half_input)
{
    engine *e = tp->e;
    char err[512];
    taesd_result r = vkrt_buffer_create(&e->rt, size, false, buf, err, sizeof err);
    if (r != TAESD_OK) {
        api_model_error(tp->model, MSG_CMD, "taesd_cmd_decode: %s", err);
        return r;
    }
    VkDescriptorSetAllocateInfo ai = { .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                       .descriptorPool = tp->pool,
                                       .descriptorSetCount = 1,
                                       .pSetLayouts = &e->set_layout };
    VkResult vr = e->rt.vk.vkAllocateDescriptorSets(e->rt.device, &ai, set);
    if (vr != VK_SUCCESS) {
        vkrt_buffer_destroy(&e->rt, buf);
        return vk_error(tp->model, vr, "vkAllocateDescriptorSets");
    }
    e->stats.descriptor_sets_allocated++;
    VkDescriptorBufferInfo bi[ENGINE_BINDINGS];
    for (int k = 0; k < ENGINE_BINDINGS; k++)
        bi[k] = (VkDescriptorBufferInfo){ e->dummy.buffer, 0, VK_WHOLE_SIZE };
    if (half_input) {
        bi[1] = (VkDescriptorBufferInfo){ buf->buffer, 0, VK_WHOLE_SIZE };
        bi[4] = (VkDescriptorBufferInfo){ tp->p->bufs[GBUF_INPUT].buffer, 0, VK_WHOLE_SIZE };
    } else {
        bi[0] = (VkDescriptorBufferInfo){ tp->p->bufs[GBUF_OUTPUT].buffer, 0, VK_WHOLE_SIZE };
        bi[3] = (VkDescriptorBufferInfo){ buf->buffer, 0, VK_WHOLE_SIZE };
        bi[4] = (VkDescriptorBufferInfo){ buf->buffer, 0, VK_WHOLE_SIZE };
    }
    VkWriteDescriptorSet wr[ENGINE_BINDINGS];
    for (int k = 0; k < ENGINE_BINDINGS; k++)
        wr[k] = (VkWriteDescriptorSet){ .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                        .dstSet = *set,
                                        .dstBinding = (uint32_t)k,
                                        .descriptorCount = 1,
                                        .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                        .pBufferInfo = &bi[k] };
    e->rt.vk.vkUpdateDescriptorSets(e->rt.device, ENGINE_BINDINGS, wr, 0, NULL);
    return TAESD_OK;
}

static taesd_result convert_pipeline(taesd_plan *tp, int mode, bool swap_rb, VkPipeline *out)
{
    VkPipeline *cached = &tp->pipes[mode][swap_rb];
    if (!*cached) {
        pipeline_key key = { .shader = SHADER_IO_CONVERT, .spec = { mode, swap_rb }, .nspec = 2 };
        char err[512];
        taesd_result r = engine_get_pipeline(tp->e, &key, cached, err, sizeof err);
        if (r != TAESD_OK) {
            api_model_error(tp->model, MSG_CMD, "taesd_cmd_decode: %s", err);
            return r;
        }
    }
    *out = *cached;
    return TAESD_OK;
}

static void record_convert(taesd_plan *tp, VkCommandBuffer cb, VkPipeline pipe, VkDescriptorSet set, int rows,
                           int cols)
{
    engine *e = tp->e;
    const vk_dispatch *vk = &e->rt.vk;
    int32_t pc[4] = { rows, cols, 0, 0 };
    vk->vkCmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, pipe);
    vk->vkCmdBindDescriptorSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, e->pipeline_layout, 0, 1, &set, 0, NULL);
    vk->vkCmdPushConstants(cb, e->pipeline_layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof pc, pc);
    vk->vkCmdDispatch(cb, (uint32_t)(cols + 63) / 64, (uint32_t)rows, 1);
}

static void barrier2(const engine *e, VkCommandBuffer cb, const VkMemoryBarrier2 *mb, uint32_t nmb,
                     const VkBufferMemoryBarrier2 *bb, uint32_t nbb, const VkImageMemoryBarrier2 *ib, uint32_t nib)
{
    if (!nmb && !nbb && !nib)
        return;
    VkDependencyInfo di = { .sType = VK_STRUCTURE_TYPE_DEPENDENCY_INFO,
                            .memoryBarrierCount = nmb,
                            .pMemoryBarriers = mb,
                            .bufferMemoryBarrierCount = nbb,
                            .pBufferMemoryBarriers = bb,
                            .imageMemoryBarrierCount = nib,
                            .pImageMemoryBarriers = ib };
    e->rt.vk.vkCmdPipelineBarrier2(cb, &di);
}

static VkMemoryBarrier2 mem_barrier(VkPipelineStageFlags2 ss, VkAccessFlags2 sa, VkPipelineStageFlags2 ds,
                                    VkAccessFlags2 da)
{
    return (VkMemoryBarrier2){ .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER_2,
                               .srcStageMask = ss, .srcAccessMask = sa, .dstStageMask = ds, .dstAccessMask = da };
}

static VkBufferMemoryBarrier2 buf_barrier(VkBuffer b, VkPipelineStageFlags2 ss, VkAccessFlags2 sa,
                                          VkPipelineStageFlags2 ds, VkAccessFlags2 da)
{
    return (VkBufferMemoryBarrier2){ .sType = VK_STRUCTURE_TYPE_BUFFER_MEMORY_BARRIER_2,
                                     .srcStageMask = ss, .srcAccessMask = sa, .dstStageMask = ds, .dstAccessMask = da,
                                     .srcQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED,
                                     .dstQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED,
                                     .buffer = b, .offset = 0, .size = VK_WHOLE_SIZE };
}

static VkImageMemoryBarrier2 img_barrier(VkImage img, VkPipelineStageFlags2 ss, VkAccessFlags2 sa,
                                         VkPipelineStageFlags2 ds, VkAccessFlags2 da, VkImageLayout from,
                                         VkImageLayout to)
{
    return (VkImageMemoryBarrier2){ .sType = VK_STRUCTURE_TYPE_IMAGE_MEMORY_BARRIER_2,
                                    .srcStageMask = ss, .srcAccessMask = sa, .dstStageMask = ds, .dstAccessMask = da,
                                    .oldLayout = from, .newLayout = to,
                                    .srcQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED,
                                    .dstQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED,
                                    .image = img,
                                    .subresourceRange = { VK_IMAGE_ASPECT_COLOR_BIT, 0, 1, 0, 1 } };
}

/* Conversion of the decoder output into an image format: pixel kind, shader mode, R/B swap. */
static bool image_format_conv(VkFormat f, int *kind, int *mode, bool *swap)
{
    *swap = false;
    switch (f) {
    case VK_FORMAT_B8G8R8A8_UNORM:
    case VK_FORMAT_B8G8R8A8_SRGB:
        *swap = true;
        /* fall through */
    case VK_FORMAT_R8G8B8A8_UNORM:
    case VK_FORMAT_R8G8B8A8_SRGB:
        *kind = PX_8;
        *mode = CONV_RGBA8;
        return true;
    case VK_FORMAT_R16G16B16A16_SFLOAT:
        *kind = PX_16F;
        *mode = CONV_RGBA16F;
        return true;
    case VK_FORMAT_R32G32B32A32_SFLOAT:
        *kind = PX_32F;
        *mode = CONV_RGBA32F;
        return true;
    default:
        return false;
    }
}

taesd_result taesd_cmd_decode(taesd_plan *tp, VkCommandBuffer cb, const taesd_cmd_input *in,
                              const taesd_cmd_output *out)
{
    if (!tp)
        return TAESD_ERROR_INVALID_ARGUMENT;
    taesd_model *m = tp->model;
    if (!cb || !in || !out || !in->buffer || (in->offset & 3) || (out->offset & 3) || out->x < 0 || out->y < 0 ||
        (in->layout != TAESD_GPU_FLOAT32 && in->layout != TAESD_GPU_FLOAT16) ||
        (!out->image == !out->buffer)) {
        api_model_error(m, MSG_INVALID_ARGUMENT, "taesd_cmd_decode: bad arguments (NULL command buffer, input or "
                                                 "output; image and buffer both or neither set; offset not a "
                                                 "multiple of 4; negative x/y; unknown input layout)");
        return TAESD_ERROR_INVALID_ARGUMENT;
    }
    int kind = PX_8, mode = CONV_RGBA8;
    bool swap = false, raw_out = false;
    if (out->image) {
        if (!image_format_conv(out->image_format, &kind, &mode, &swap)) {
            api_model_error(m, MSG_INVALID_ARGUMENT, "taesd_cmd_decode: output image format %d is not supported "
                            "(RGBA8/BGRA8 UNORM or SRGB, RGBA16F, RGBA32F)", (int)out->image_format);
            return TAESD_ERROR_INVALID_ARGUMENT;
        }
    } else if (out->buffer_layout == TAESD_GPU_FLOAT32) {
        raw_out = true;
    } else if (out->buffer_layout != TAESD_GPU_RGBA8) {
        api_model_error(m, MSG_INVALID_ARGUMENT, "taesd_cmd_decode: output buffer layout %d is not supported "
                        "(FLOAT32 or RGBA8)", (int)out->buffer_layout);
        return TAESD_ERROR_INVALID_ARGUMENT;
    }

    /* Everything that can fail comes before the first recorded command. */
    engine *e = tp->e;
    const vk_dispatch *vk = &e->rt.vk;
    const plan *p = tp->p;
    const size_t n_in = (size_t)tp->channels * (size_t)tp->h * (size_t)tp->w;
    const bool half = in->layout == TAESD_GPU_FLOAT16;
    VkPipeline half_pipe = VK_NULL_HANDLE, px_pipe = VK_NULL_HANDLE;
    taesd_result r = TAESD_OK;
    if (half && !tp->half_in.buffer)
        r = make_conv_target(tp, (n_in * 2 + 3) / 4 * 4, &tp->half_in, &tp->half_set, true);
    if (r == TAESD_OK && half)
        r = convert_pipeline(tp, CONV_HALF_TO_FLOAT, false, &half_pipe);
    if (r == TAESD_OK && !raw_out && !tp->px[kind].buffer)
        r = make_conv_target(tp, (VkDeviceSize)tp->out_h * (VkDeviceSize)tp->out_w * (VkDeviceSize)px_bytes[kind],
                             &tp->px[kind], &tp->px_set[kind], false);
    if (r == TAESD_OK && !raw_out)
        r = convert_pipeline(tp, mode, swap, &px_pipe);
    if (r != TAESD_OK)
        return r;

    const VkPipelineStageFlags2 COMPUTE = VK_PIPELINE_STAGE_2_COMPUTE_SHADER_BIT, COPY = VK_PIPELINE_STAGE_2_COPY_BIT;
    const VkAccessFlags2 SH_R = VK_ACCESS_2_SHADER_STORAGE_READ_BIT, SH_W = VK_ACCESS_2_SHADER_STORAGE_WRITE_BIT,
                         TR_R = VK_ACCESS_2_TRANSFER_READ_BIT, TR_W = VK_ACCESS_2_TRANSFER_WRITE_BIT;
    const taesd_resource_state *is = &in->state, *os = &out->state;

    /* 1. Acquire: taesd's own buffers (an earlier decode of this plan may still read or write them), the host's
     *    input (from its last writer) and output (from its last use; images move to TRANSFER_DST_OPTIMAL). */
    {
        VkMemoryBarrier2 mb = mem_barrier(COMPUTE | COPY, SH_W | TR_W, COMPUTE | COPY, SH_R | SH_W | TR_R | TR_W);
        VkBufferMemoryBarrier2 bb[2];
        uint32_t nbb = 0;
        VkImageMemoryBarrier2 ib;
        if (is->stage_before)
            bb[nbb++] = buf_barrier(in->buffer, is->stage_before, is->access_before, COPY, TR_R);
        if (out->buffer && os->stage_before)
            bb[nbb++] = buf_barrier(out->buffer, os->stage_before, os->access_before, COPY, TR_W);
        if (out->image)
            ib = img_barrier(out->image, os->stage_before, os->access_before, COPY, TR_W, os->layout_before,
                             VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL);
        barrier2(e, cb, &mb, 1, bb, nbb, &ib, out->image ? 1 : 0);
    }

    /* 2. Input into the plan's planar float32 input buffer. */
    if (!half) {
        VkBufferCopy c = { in->offset, 0, n_in * sizeof(float) };
        vk->vkCmdCopyBuffer(cb, in->buffer, p->bufs[GBUF_INPUT].buffer, 1, &c);
    } else {
        VkBufferCopy c = { in->offset, 0, n_in * 2 };
        vk->vkCmdCopyBuffer(cb, in->buffer, tp->half_in.buffer, 1, &c);
        VkMemoryBarrier2 mb = mem_barrier(COPY, TR_W, COMPUTE, SH_R);
        barrier2(e, cb, &mb, 1, NULL, 0, NULL, 0);
        record_convert(tp, cb, half_pipe, tp->half_set, tp->channels * tp->h, tp->w);
    }
    {
        VkMemoryBarrier2 mb = mem_barrier(COPY | COMPUTE, TR_W | SH_W, COMPUTE, SH_R);
        barrier2(e, cb, &mb, 1, NULL, 0, NULL, 0);
    }

    /* 3. The network (each op ends with a barrier to compute and transfer reads). */
    plan_record_ops(e, tp->gg, p, cb);

    /* 4. Output: convert to pixels in the plan's buffer, then copy into the host's image or buffer. */
    VkBuffer src = p->bufs[GBUF_OUTPUT].buffer;
    if (!raw_out) {
        record_convert(tp, cb, px_pipe, tp->px_set[kind], tp->out_h, tp->out_w);
        VkMemoryBarrier2 mb = mem_barrier(COMPUTE, SH_W, COPY, TR_R);
        barrier2(e, cb, &mb, 1, NULL, 0, NULL, 0);
        src = tp->px[kind].buffer;
    }
    if (out->image) {
        VkBufferImageCopy c = { .bufferOffset = 0,
                                .imageSubresource = { VK_IMAGE_ASPECT_COLOR_BIT, 0, 0, 1 },
                                .imageOffset = { out->x, out->y, 0 },
                                .imageExtent = { (uint32_t)tp->out_w, (uint32_t)tp->out_h, 1 } };
        vk->vkCmdCopyBufferToImage(cb, src, out->image, VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, 1, &c);
    } else {
        VkDeviceSize bytes = (VkDeviceSize)tp->out_h * (VkDeviceSize)tp->out_w * (raw_out ? 3 * sizeof(float) : 4);
        VkBufferCopy c = { 0, out->offset, bytes };
        vk->vkCmdCopyBuffer(cb, src, out->buffer, 1, &c);
    }

    /* 5. Release to the states the caller asked for. */
    {
        VkBufferMemoryBarrier2 bb[2];
        uint32_t nbb = 0;
        VkImageMemoryBarrier2 ib;
        uint32_t nib = 0;
        if (is->stage_after)
            bb[nbb++] = buf_barrier(in->buffer, COPY, 0, is->stage_after, is->access_after);
        if (out->buffer && os->stage_after)
            bb[nbb++] = buf_barrier(out->buffer, COPY, TR_W, os->stage_after, os->access_after);
        if (out->image && (os->stage_after || os->layout_after)) {
            VkImageLayout to = os->layout_after ? os->layout_after : VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL;
            ib = img_barrier(out->image, COPY, TR_W, os->stage_after, os->access_after,
                             VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, to);
            nib = 1;
        }
        barrier2(e, cb, NULL, 0, bb, nbb, &ib, nib);
    }
    return TAESD_OK;
}
