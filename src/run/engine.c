/* engine.c — pipelines, device weights and per-resolution plans. See engine.h. */
#include "engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/tensors.h"
#include "shaders_spv.h"

#define FAIL(code, ...)                              \
    do {                                             \
        snprintf(err, errlen, __VA_ARGS__);          \
        return (code);                               \
    } while (0)

static taesd_result vk_fail(VkResult r, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s failed: %s", what, vkrt_result_name(r));
    return r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY ? TAESD_ERROR_OUT_OF_MEMORY
                                                                                   : TAESD_ERROR_VULKAN;
}

/* ---- engine ---------------------------------------------------------------------------------------------- */

/* Waits for taesd's own work. On a host's device only taesd's queue is waited on: a device-wide wait would stall
 * (and require external synchronisation of) every queue the host owns. */
static void engine_wait_idle(engine *e)
{
    if (!e->rt.device)
        return;
    if (e->rt.owns_device)
        e->rt.vk.vkDeviceWaitIdle(e->rt.device);
    else if (e->rt.queue)
        e->rt.vk.vkQueueWaitIdle(e->rt.queue);
}

taesd_result engine_init(engine *e, const taesd_vulkan_host *host, int device_index, bool validation,
                         taesd_log_fn log, void *log_user, char *err, size_t errlen)
{
    memset(e, 0, sizeof *e);
    taesd_result r = host ? vkrt_create_from_host(&e->rt, host, log, log_user, err, errlen)
                          : vkrt_create(&e->rt, device_index, validation, log, log_user, err, errlen);
    if (r != TAESD_OK)
        return r;
    const vk_dispatch *vk = &e->rt.vk;

    VkDescriptorSetLayoutBinding b[ENGINE_BINDINGS + ENGINE_TEXEL_BINDINGS];
    for (uint32_t i = 0; i < ENGINE_BINDINGS + ENGINE_TEXEL_BINDINGS; i++)
        b[i] = (VkDescriptorSetLayoutBinding){ .binding = i,
                                               .descriptorType = i < ENGINE_BINDINGS
                                                                     ? VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
                                                                     : VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER,
                                               .descriptorCount = 1,
                                               .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT };
    VkDescriptorSetLayoutCreateInfo dsl = { .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                            .bindingCount = ENGINE_BINDINGS + ENGINE_TEXEL_BINDINGS,
                                            .pBindings = b };
    VkResult vr = vk->vkCreateDescriptorSetLayout(e->rt.device, &dsl, e->rt.alloc, &e->set_layout);
    if (vr != VK_SUCCESS)
        return vk_fail(vr, "vkCreateDescriptorSetLayout", err, errlen);

    VkPushConstantRange pcr = { .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0, .size = 4 * sizeof(int32_t) };
    VkPipelineLayoutCreateInfo pl = { .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                      .setLayoutCount = 1,
                                      .pSetLayouts = &e->set_layout,
                                      .pushConstantRangeCount = 1,
                                      .pPushConstantRanges = &pcr };
    vr = vk->vkCreatePipelineLayout(e->rt.device, &pl, e->rt.alloc, &e->pipeline_layout);
    if (vr != VK_SUCCESS)
        return vk_fail(vr, "vkCreatePipelineLayout", err, errlen);

    VkPipelineCacheCreateInfo pcc = { .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO };
    vr = vk->vkCreatePipelineCache(e->rt.device, &pcc, e->rt.alloc, &e->pipeline_cache);
    if (vr != VK_SUCCESS)
        return vk_fail(vr, "vkCreatePipelineCache", err, errlen);

    r = vkrt_buffer_create(&e->rt, 256, false, &e->dummy, err, errlen);
    if (r != TAESD_OK)
        return r;
    VkBufferViewCreateInfo vci = { .sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO, .buffer = e->dummy.buffer,
                                   .format = VK_FORMAT_R32G32B32A32_SFLOAT, .range = VK_WHOLE_SIZE };
    vr = vk->vkCreateBufferView(e->rt.device, &vci, e->rt.alloc, &e->dummy_view);
    if (vr != VK_SUCCESS)
        return vk_fail(vr, "vkCreateBufferView", err, errlen);

    /* lavapipe (Mesa 22.3) turns a storage-buffer load whose address it cannot prove uniform (anything indexed by
     * a loop counter, the weights included) into a loop over the SIMD lanes, a texel fetch into one vector gather.
     * Reading activations and weights through texel buffers made a 128² taef2 decode 2.2× faster in fp32 (0.68 ->
     * 0.31 s of CPU per run) and 2.5× in fp16. GPUs read storage buffers at full speed and keep that path. */
    e->texel_src = e->rt.props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;

    /* Register blocking: 8 pixels × 16 output channels per invocation, 8×8 invocations per workgroup. On lavapipe
     * (one SIMD lane per invocation) this measured best of 4..16 px × 4..32 channels: 14.8 GFLOP/s per thread for
     * 64->64 at 128², against 12.6 for 8 px × 8 ch; larger blocks spill. */
    e->conv_px = 8;
    e->conv_cob = 4;
    e->wg_x = 8;
    e->wg_y = 8;
    return TAESD_OK;
}

void engine_destroy(engine *e)
{
    if (!e->rt.device) {
        vkrt_destroy(&e->rt);
        return;
    }
    const vk_dispatch *vk = &e->rt.vk;
    engine_wait_idle(e);
    for (int i = 0; i < e->npipelines; i++)
        vk->vkDestroyPipeline(e->rt.device, e->pipelines[i].pipeline, e->rt.alloc);
    free(e->pipelines);
    for (int i = 0; i < (int)(sizeof e->modules / sizeof e->modules[0]); i++)
        if (e->modules[i])
            vk->vkDestroyShaderModule(e->rt.device, e->modules[i], e->rt.alloc);
    if (e->dummy_view)
        vk->vkDestroyBufferView(e->rt.device, e->dummy_view, e->rt.alloc);
    vkrt_buffer_destroy(&e->rt, &e->dummy);
    if (e->pipeline_cache)
        vk->vkDestroyPipelineCache(e->rt.device, e->pipeline_cache, e->rt.alloc);
    if (e->pipeline_layout)
        vk->vkDestroyPipelineLayout(e->rt.device, e->pipeline_layout, e->rt.alloc);
    if (e->set_layout)
        vk->vkDestroyDescriptorSetLayout(e->rt.device, e->set_layout, e->rt.alloc);
    vkrt_destroy(&e->rt);
    memset(e, 0, sizeof *e);
}

taesd_result engine_get_pipeline(engine *e, const pipeline_key *key, VkPipeline *out, char *err, size_t errlen)
{
    for (int i = 0; i < e->npipelines; i++) {
        const pipeline_key *k = &e->pipelines[i].key;
        if (k->shader == key->shader && k->nspec == key->nspec &&
            memcmp(k->spec, key->spec, sizeof(int32_t) * (size_t)key->nspec) == 0) {
            *out = e->pipelines[i].pipeline;
            return TAESD_OK;
        }
    }
    const vk_dispatch *vk = &e->rt.vk;
    if (!e->modules[key->shader]) {
        const shader_blob *sb = &shader_blobs[key->shader];
        VkShaderModuleCreateInfo smci = { .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                          .codeSize = sb->size,
                                          .pCode = sb->code };
        VkResult vr = vk->vkCreateShaderModule(e->rt.device, &smci, e->rt.alloc, &e->modules[key->shader]);
        if (vr != VK_SUCCESS)
            return vk_fail(vr, "vkCreateShaderModule", err, errlen);
    }
    VkSpecializationMapEntry map[16];
    for (int i = 0; i < key->nspec; i++)
        map[i] = (VkSpecializationMapEntry){ .constantID = (uint32_t)i,
                                             .offset = (uint32_t)(i * sizeof(int32_t)),
                                             .size = sizeof(int32_t) };
    VkSpecializationInfo si = { .mapEntryCount = (uint32_t)key->nspec,
                                .pMapEntries = map,
                                .dataSize = sizeof(int32_t) * (size_t)key->nspec,
                                .pData = key->spec };
    VkComputePipelineCreateInfo cpci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = { .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                   .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                   .module = e->modules[key->shader],
                   .pName = "main",
                   .pSpecializationInfo = &si },
        .layout = e->pipeline_layout,
    };
    VkPipeline p;
    VkResult vr = vk->vkCreateComputePipelines(e->rt.device, e->pipeline_cache, 1, &cpci, e->rt.alloc, &p);
    if (vr != VK_SUCCESS)
        return vk_fail(vr, "vkCreateComputePipelines", err, errlen);
    if (e->npipelines == e->cap_pipelines) {
        int cap = e->cap_pipelines ? e->cap_pipelines * 2 : 16;
        pipeline_entry *np = realloc(e->pipelines, sizeof *np * (size_t)cap);
        if (!np) {
            vk->vkDestroyPipeline(e->rt.device, p, e->rt.alloc);
            FAIL(TAESD_ERROR_OUT_OF_MEMORY, "out of host memory");
        }
        e->pipelines = np;
        e->cap_pipelines = cap;
    }
    e->pipelines[e->npipelines].key = *key;
    e->pipelines[e->npipelines].pipeline = p;
    e->npipelines++;
    e->stats.pipelines_created++;
    *out = p;
    return TAESD_OK;
}

/* ---- weights --------------------------------------------------------------------------------------------- */

static int div_up(int a, int b) { return (a + b - 1) / b; }
static VkDeviceSize align_up(VkDeviceSize v, VkDeviceSize a) { return (v + a - 1) / a * a; }

static int op_ksize(const gop *op) { return op->kind == GOP_CONV3X3 ? 3 : 1; }
/* Output channel groups (of 4) per invocation: the engine's blocking, less for narrow outputs (the final 64->3). */
static int op_cob(const engine *e, const gop *op)
{
    int c4 = div_up(op->cout, 4);
    return c4 < e->conv_cob ? c4 : e->conv_cob;
}
static bool op_is_conv(const gop *op) { return op->kind != GOP_GN_STATS; }

/* Scalars in the packed weight layout of conv.comp: [co4 padded to cob][ci4][tap][column j][row i]. */
static size_t packed_weight_scalars(const gop *op, int cob)
{
    int co4p = div_up(div_up(op->cout, 4), cob) * cob;
    int k = op_ksize(op);
    return (size_t)co4p * (size_t)div_up(op->cin, 4) * (size_t)(k * k) * 16;
}

static void pack_weights(const gop *op, const gparam *w, int cob, float *dst)
{
    const int k = op_ksize(op), taps = k * k;
    const int ci4n = div_up(op->cin, 4), co4p = div_up(div_up(op->cout, 4), cob) * cob;
    size_t n = 0;
    for (int co4 = 0; co4 < co4p; co4++)
        for (int ci4 = 0; ci4 < ci4n; ci4++)
            for (int t = 0; t < taps; t++)
                for (int j = 0; j < 4; j++)
                    for (int i = 0; i < 4; i++) {
                        int co = co4 * 4 + i, ci = ci4 * 4 + j;
                        dst[n++] = co < op->cout && ci < op->cin ? w->data[((size_t)co * op->cin + ci) * taps + t] : 0.0f;
                    }
}

static void pack_vec(const float *src, int n, int n4, float *dst)
{
    for (int i = 0; i < n4 * 4; i++)
        dst[i] = i < n ? src[i] : 0.0f;
}

static void free_gpu_graph_arrays(gpu_graph *gg)
{
    free(gg->w_off);
    free(gg->b_off);
    free(gg->aff_off);
    free(gg->w_size);
    free(gg->b_size);
    free(gg->aff_size);
    free(gg->pipes);
    free(gg->w_views);
    gg->w_views = NULL;
    gg->w_off = gg->b_off = gg->aff_off = gg->w_size = gg->b_size = gg->aff_size = NULL;
    gg->pipes = NULL;
}

static shader_id conv_shader(const engine *e, const gop *op, bool fp16)
{
    bool in_planar = op->src == GBUF_INPUT, out_planar = op->dst == GBUF_OUTPUT;
    if (e->texel_src && !in_planar)
        return out_planar ? (fp16 ? SHADER_CONV_TEX_OUT_PLANAR_F16 : SHADER_CONV_TEX_OUT_PLANAR_F32)
                          : (fp16 ? SHADER_CONV_TEX_F16 : SHADER_CONV_TEX_F32);
    if (in_planar && out_planar)
        return fp16 ? SHADER_CONV_IO_PLANAR_F16 : SHADER_CONV_IO_PLANAR_F32;
    if (in_planar)
        return fp16 ? SHADER_CONV_IN_PLANAR_F16 : SHADER_CONV_IN_PLANAR_F32;
    if (out_planar)
        return fp16 ? SHADER_CONV_OUT_PLANAR_F16 : SHADER_CONV_OUT_PLANAR_F32;
    return fp16 ? SHADER_CONV_F16 : SHADER_CONV_F32;
}

static void op_pipeline_key(const engine *e, const gop *op, bool fp16, pipeline_key *k)
{
    memset(k, 0, sizeof *k);
    if (op->kind == GOP_GN_STATS) {
        float eps = op->eps;
        k->shader = fp16 ? SHADER_GN_STATS_F16 : SHADER_GN_STATS_F32;
        k->spec[0] = 256;        /* workgroup size: a power of two (tree reduction) */
        k->spec[1] = 1;
        k->spec[2] = op->cin;
        k->spec[3] = op->groups;
        memcpy(&k->spec[4], &eps, sizeof eps);
        k->nspec = 5;
        return;
    }
    k->shader = conv_shader(e, op, fp16);
    k->spec[0] = e->wg_x;
    k->spec[1] = e->wg_y;
    k->spec[2] = op->cin;
    k->spec[3] = op->cout;
    k->spec[4] = op_ksize(op);
    k->spec[5] = op->stride > 0 ? op->stride : 1;
    k->spec[6] = op->upsample;
    k->spec[7] = op->tanh_clamp;
    k->spec[8] = op->kind == GOP_GN_APPLY;
    k->spec[9] = op->bias >= 0;
    k->spec[10] = op->skip != GBUF_NONE;
    k->spec[11] = op->relu;
    k->spec[12] = e->conv_px;
    k->spec[13] = op_cob(e, op);
    k->spec[14] = op->kind == GOP_GN_APPLY && op->groups > 0 ? op->cin / op->groups : 4;
    k->nspec = 15;
}

taesd_result gpu_graph_create(engine *e, const graph *g, bool fp16, bool profile, gpu_graph *gg, char *err,
                              size_t errlen)
{
    memset(gg, 0, sizeof *gg);
    gg->g = g;
    gg->fp16 = fp16;
    gg->profile = profile && e->rt.props.limits.timestampComputeAndGraphics;
    size_t n = (size_t)(g->nops > 0 ? g->nops : 1);
    gg->w_off = calloc(n, sizeof(VkDeviceSize));
    gg->b_off = calloc(n, sizeof(VkDeviceSize));
    gg->aff_off = calloc(n, sizeof(VkDeviceSize));
    gg->w_size = calloc(n, sizeof(VkDeviceSize));
    gg->b_size = calloc(n, sizeof(VkDeviceSize));
    gg->aff_size = calloc(n, sizeof(VkDeviceSize));
    gg->pipes = calloc(n, sizeof(VkPipeline));
    gg->w_views = calloc(n, sizeof(VkBufferView));
    if (!gg->w_off || !gg->b_off || !gg->aff_off || !gg->w_size || !gg->b_size || !gg->aff_size || !gg->pipes ||
        !gg->w_views) {
        free_gpu_graph_arrays(gg);
        FAIL(TAESD_ERROR_OUT_OF_MEMORY, "out of host memory");
    }

    /* Layout of the one weights buffer: per op, packed weights, bias, GroupNorm affine; each binding aligned. */
    VkDeviceSize align = align_up(e->rt.props.limits.minStorageBufferOffsetAlignment, 16);
    if (e->texel_src)
        align = align_up(align, e->rt.props.limits.minTexelBufferOffsetAlignment);
    const size_t scalar = fp16 ? 2 : 4;
    VkDeviceSize total = 0;
    for (int i = 0; i < g->nops; i++) {
        const gop *op = &g->ops[i];
        if (!op_is_conv(op))
            continue;
        gg->w_off[i] = total;
        gg->w_size[i] = packed_weight_scalars(op, op_cob(e, op)) * scalar;
        total = align_up(total + gg->w_size[i], align);
        if (op->bias >= 0) {
            gg->b_off[i] = total;
            gg->b_size[i] = (VkDeviceSize)div_up(op->cout, 4) * 4 * scalar;
            total = align_up(total + gg->b_size[i], align);
        }
        if (op->kind == GOP_GN_APPLY) {
            gg->aff_off[i] = total;
            gg->aff_size[i] = (VkDeviceSize)div_up(op->cin, 4) * 8 * scalar;
            total = align_up(total + gg->aff_size[i], align);
        }
    }
    if (total == 0)
        total = 16;

    float *tmp = NULL;
    uint8_t *host = calloc(1, (size_t)total);
    if (!host) {
        free_gpu_graph_arrays(gg);
        FAIL(TAESD_ERROR_OUT_OF_MEMORY, "out of host memory for %llu bytes of weights", (unsigned long long)total);
    }
    size_t max_scalars = 0;
    for (int i = 0; i < g->nops; i++) {
        size_t s = (size_t)(gg->w_size[i] + gg->b_size[i] + gg->aff_size[i]) / scalar;
        if (s > max_scalars)
            max_scalars = s;
    }
    tmp = malloc((max_scalars + 16) * sizeof(float));
    if (!tmp) {
        free(host);
        free_gpu_graph_arrays(gg);
        FAIL(TAESD_ERROR_OUT_OF_MEMORY, "out of host memory");
    }
    for (int i = 0; i < g->nops; i++) {
        const gop *op = &g->ops[i];
        struct { VkDeviceSize off, size; } parts[3] = { { gg->w_off[i], gg->w_size[i] },
                                                        { gg->b_off[i], gg->b_size[i] },
                                                        { gg->aff_off[i], gg->aff_size[i] } };
        for (int p = 0; p < 3; p++) {
            if (!parts[p].size)
                continue;
            size_t ns = (size_t)parts[p].size / scalar;
            if (p == 0)
                pack_weights(op, &g->params[op->weight], op_cob(e, op), tmp);
            else if (p == 1)
                pack_vec(g->params[op->bias].data, op->cout, div_up(op->cout, 4), tmp);
            else {
                int c4 = div_up(op->cin, 4);
                pack_vec(g->params[op->gamma].data, op->cin, c4, tmp);
                pack_vec(g->params[op->beta].data, op->cin, c4, tmp + c4 * 4);
            }
            if (fp16) {
                uint16_t *d = (uint16_t *)(host + parts[p].off);
                for (size_t k = 0; k < ns; k++)
                    d[k] = tt_float_to_half(tmp[k]);
            } else {
                memcpy(host + parts[p].off, tmp, ns * sizeof(float));
            }
        }
    }
    free(tmp);

    taesd_result r = vkrt_buffer_create(&e->rt, total, false, &gg->weights, err, errlen);
    if (r == TAESD_OK)
        r = vkrt_upload(&e->rt, &gg->weights, 0, host, (size_t)total, err, errlen);
    free(host);
    for (int i = 0; e->texel_src && r == TAESD_OK && i < g->nops; i++) {
        if (!gg->w_size[i])
            continue;
        const VkDeviceSize texel = fp16 ? 8 : 16;
        VkBufferViewCreateInfo vci = { .sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO,
                                       .buffer = gg->weights.buffer,
                                       .format = fp16 ? VK_FORMAT_R16G16B16A16_SFLOAT : VK_FORMAT_R32G32B32A32_SFLOAT,
                                       .offset = gg->w_off[i],
                                       .range = gg->w_size[i] / texel * texel };
        VkResult vr = e->rt.vk.vkCreateBufferView(e->rt.device, &vci, e->rt.alloc, &gg->w_views[i]);
        if (vr != VK_SUCCESS)
            r = vk_fail(vr, "vkCreateBufferView", err, errlen);
    }
    for (int i = 0; r == TAESD_OK && i < g->nops; i++) {
        pipeline_key key;
        op_pipeline_key(e, &g->ops[i], fp16, &key);
        r = engine_get_pipeline(e, &key, &gg->pipes[i], err, errlen);
    }
    if (r != TAESD_OK)
        gpu_graph_destroy(e, gg);
    return r;
}

static void plan_destroy(engine *e, plan *p)
{
    if (!p)
        return;
    const vk_dispatch *vk = &e->rt.vk;
    if (p->fence)
        vk->vkDestroyFence(e->rt.device, p->fence, e->rt.alloc);
    if (p->timestamps)
        vk->vkDestroyQueryPool(e->rt.device, p->timestamps, e->rt.alloc);
    if (p->cmd)
        vk->vkFreeCommandBuffers(e->rt.device, e->rt.command_pool, 1, &p->cmd);
    if (p->pool)
        vk->vkDestroyDescriptorPool(e->rt.device, p->pool, e->rt.alloc);
    for (int i = 0; i < GBUF_COUNT; i++) {
        if (p->views[i])
            vk->vkDestroyBufferView(e->rt.device, p->views[i], e->rt.alloc);
        vkrt_buffer_destroy(&e->rt, &p->bufs[i]);
    }
    vkrt_buffer_destroy(&e->rt, &p->staging_in);
    vkrt_buffer_destroy(&e->rt, &p->staging_out);
    free(p->sets);
    free(p->in_dims);
    free(p->out_dims);
    free(p);
}

void gpu_graph_destroy(engine *e, gpu_graph *gg)
{
    if (e->rt.device)
        engine_wait_idle(e);
    for (int i = 0; i < GPU_GRAPH_MAX_PLANS; i++) {
        plan_destroy(e, gg->plans[i]);
        gg->plans[i] = NULL;
    }
    for (int i = 0; gg->w_views && i < gg->g->nops; i++)
        if (gg->w_views[i])
            e->rt.vk.vkDestroyBufferView(e->rt.device, gg->w_views[i], e->rt.alloc);
    vkrt_buffer_destroy(&e->rt, &gg->weights);
    free_gpu_graph_arrays(gg);
}

/* ---- plans ----------------------------------------------------------------------------------------------- */

/* Bytes a buffer needs to hold `c` channels of h×w: planar float32 for INPUT/OUTPUT, else packed vec4 groups. */
static uint64_t act_bytes(gbuf b, int c, int h, int w, bool fp16)
{
    if (b == GBUF_INPUT || b == GBUF_OUTPUT)
        return (uint64_t)c * (uint64_t)h * (uint64_t)w * 4u;
    return (uint64_t)div_up(c, 4) * 4u * (uint64_t)h * (uint64_t)w * (fp16 ? 2u : 4u);
}

static void compute_barrier(const vk_dispatch *vk, VkCommandBuffer cb, VkPipelineStageFlags src_stage,
                            VkAccessFlags src, VkPipelineStageFlags dst_stage, VkAccessFlags dst)
{
    VkMemoryBarrier mb = { .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = src, .dstAccessMask = dst };
    vk->vkCmdPipelineBarrier(cb, src_stage, dst_stage, 0, 1, &mb, 0, NULL, 0, NULL);
}

void plan_record_ops(engine *e, const gpu_graph *gg, const plan *p, VkCommandBuffer cb)
{
    const graph *g = gg->g;
    const vk_dispatch *vk = &e->rt.vk;
    const bool stamps = p->timestamps && cb == p->cmd;
    if (stamps)
        vk->vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, p->timestamps, 0);
    for (int i = 0; i < g->nops; i++) {
        const gop *op = &g->ops[i];
        const gdims in = p->in_dims[i], out = p->out_dims[i];
        int32_t pc[4] = { in.h, in.w, out.h, out.w };
        vk->vkCmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, gg->pipes[i]);
        vk->vkCmdBindDescriptorSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, e->pipeline_layout, 0, 1, &p->sets[i], 0,
                                    NULL);
        vk->vkCmdPushConstants(cb, e->pipeline_layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof pc, pc);
        if (op->kind == GOP_GN_STATS) {
            vk->vkCmdDispatch(cb, (uint32_t)op->groups, 1, 1);
        } else {
            uint32_t gx = (uint32_t)div_up(div_up(out.w, e->conv_px), e->wg_x);
            uint32_t gy = (uint32_t)div_up(out.h, e->wg_y);
            uint32_t gz = (uint32_t)div_up(div_up(op->cout, 4), op_cob(e, op));
            vk->vkCmdDispatch(cb, gx, gy, gz);
        }
        compute_barrier(vk, cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT,
                        VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                        VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT);
        if (stamps)
            vk->vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, p->timestamps, (uint32_t)i + 1);
    }
}

static taesd_result plan_create(engine *e, gpu_graph *gg, int h, int w, bool host_cmd, plan **out, char *err,
                                size_t errlen)
{
    const graph *g = gg->g;
    const vk_dispatch *vk = &e->rt.vk;
    plan *p = calloc(1, sizeof *p);
    gdims *ind = calloc((size_t)g->nops, sizeof *ind), *outd = calloc((size_t)g->nops, sizeof *outd);
    VkDescriptorSet *sets = calloc((size_t)g->nops, sizeof *sets);
    taesd_result r = TAESD_OK;
    if (p) {
        p->in_dims = ind;
        p->out_dims = outd;
        p->sets = sets;
        p->host_cmd = host_cmd;
    }
    if (!ind || !outd || !p || !sets) {
        if (!p) {
            free(ind);
            free(outd);
            free(sets);
        }
        snprintf(err, errlen, "out of host memory");
        r = TAESD_ERROR_OUT_OF_MEMORY;
        goto done;
    }
    if (graph_dims(g, h, w, ind, outd) != 0) {
        snprintf(err, errlen, "input size %dx%d is not supported", w, h);
        r = TAESD_ERROR_SHAPE;
        goto done;
    }
    p->h = h;
    p->w = w;
    graph_output_size(g, h, w, &p->out_h, &p->out_w);

    uint64_t need[GBUF_COUNT] = { 0 };
    for (int i = 0; i < g->nops; i++) {
        const gop *op = &g->ops[i];
        uint64_t s = act_bytes(op->src, op->cin, ind[i].h, ind[i].w, gg->fp16);
        uint64_t d = op->kind == GOP_GN_STATS ? (uint64_t)op->groups * 8u
                                              : act_bytes(op->dst, op->cout, outd[i].h, outd[i].w, gg->fp16);
        if (s > need[op->src])
            need[op->src] = s;
        if (d > need[op->dst])
            need[op->dst] = d;
    }
    const uint64_t limit = e->rt.props.limits.maxStorageBufferRange;
    for (int b = 0; b < GBUF_COUNT; b++) {
        if (need[b] > limit) {
            snprintf(err, errlen,
                     "a %dx%d input needs a %llu MiB activation buffer, above this device's maxStorageBufferRange "
                     "(%llu MiB)",
                     w, h, (unsigned long long)(need[b] >> 20), (unsigned long long)(limit >> 20));
            r = TAESD_ERROR_OUT_OF_MEMORY;
            goto done;
        }
    }
    for (int b = 0; b < GBUF_COUNT && r == TAESD_OK; b++) {
        if (!need[b])
            continue;
        r = vkrt_buffer_create(&e->rt, need[b], false, &p->bufs[b], err, errlen);
        p->device_bytes += need[b];
    }
    /* Texel views of the packed activations (planar INPUT/OUTPUT and the GroupNorm stats are never fetched). */
    for (int b = GBUF_A; e->texel_src && b < GBUF_COUNT && r == TAESD_OK; b++) {
        if (!need[b] || b == GBUF_GN_STATS)
            continue;
        const VkDeviceSize texel = gg->fp16 ? 8 : 16;
        if (need[b] / texel > e->rt.props.limits.maxTexelBufferElements) {
            snprintf(err, errlen, "a %dx%d input needs %llu texels in one buffer, above this device's "
                     "maxTexelBufferElements (%u)", w, h, (unsigned long long)(need[b] / texel),
                     e->rt.props.limits.maxTexelBufferElements);
            r = TAESD_ERROR_OUT_OF_MEMORY;
            break;
        }
        VkBufferViewCreateInfo vci = { .sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO,
                                       .buffer = p->bufs[b].buffer,
                                       .format = gg->fp16 ? VK_FORMAT_R16G16B16A16_SFLOAT
                                                          : VK_FORMAT_R32G32B32A32_SFLOAT,
                                       .range = need[b] / texel * texel };
        VkResult vr2 = vk->vkCreateBufferView(e->rt.device, &vci, e->rt.alloc, &p->views[b]);
        if (vr2 != VK_SUCCESS)
            r = vk_fail(vr2, "vkCreateBufferView", err, errlen);
    }
    if (r == TAESD_OK && !host_cmd) {
        r = vkrt_buffer_create(&e->rt, need[GBUF_INPUT], true, &p->staging_in, err, errlen);
        if (r == TAESD_OK)
            r = vkrt_buffer_create(&e->rt, need[GBUF_OUTPUT], true, &p->staging_out, err, errlen);
        p->device_bytes += need[GBUF_INPUT] + need[GBUF_OUTPUT];
    }
    if (r != TAESD_OK)
        goto done;
    if (gg->profile && !host_cmd) {
        VkQueryPoolCreateInfo qpci = { .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                       .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                       .queryCount = (uint32_t)g->nops + 1 };
        VkResult qr = vk->vkCreateQueryPool(e->rt.device, &qpci, e->rt.alloc, &p->timestamps);
        if (qr != VK_SUCCESS) {
            r = vk_fail(qr, "vkCreateQueryPool", err, errlen);
            goto done;
        }
    }

    /* Descriptor sets: one per op, written once. */
    VkDescriptorPoolSize ps[2] = { { VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, (uint32_t)g->nops * ENGINE_BINDINGS },
                                   { VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER,
                                     (uint32_t)g->nops * ENGINE_TEXEL_BINDINGS } };
    VkDescriptorPoolCreateInfo dpci = { .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                        .maxSets = (uint32_t)g->nops,
                                        .poolSizeCount = 2,
                                        .pPoolSizes = ps };
    VkResult vr = vk->vkCreateDescriptorPool(e->rt.device, &dpci, e->rt.alloc, &p->pool);
    if (vr != VK_SUCCESS) {
        r = vk_fail(vr, "vkCreateDescriptorPool", err, errlen);
        goto done;
    }
    for (int i = 0; i < g->nops; i++) {
        VkDescriptorSetAllocateInfo ai = { .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                           .descriptorPool = p->pool,
                                           .descriptorSetCount = 1,
                                           .pSetLayouts = &e->set_layout };
        vr = vk->vkAllocateDescriptorSets(e->rt.device, &ai, &sets[i]);
        if (vr != VK_SUCCESS) {
            r = vk_fail(vr, "vkAllocateDescriptorSets", err, errlen);
            goto done;
        }
        e->stats.descriptor_sets_allocated++;
        const gop *op = &g->ops[i];
        VkDescriptorBufferInfo bi[ENGINE_BINDINGS];
        for (int k = 0; k < ENGINE_BINDINGS; k++)
            bi[k] = (VkDescriptorBufferInfo){ e->dummy.buffer, 0, VK_WHOLE_SIZE };
        bi[0] = (VkDescriptorBufferInfo){ p->bufs[op->src].buffer, 0, VK_WHOLE_SIZE };
        if (op->kind == GOP_GN_STATS) {
            bi[5] = (VkDescriptorBufferInfo){ p->bufs[op->dst].buffer, 0, VK_WHOLE_SIZE };
        } else {
            bi[1] = (VkDescriptorBufferInfo){ gg->weights.buffer, gg->w_off[i], gg->w_size[i] };
            if (gg->b_size[i])
                bi[2] = (VkDescriptorBufferInfo){ gg->weights.buffer, gg->b_off[i], gg->b_size[i] };
            if (op->skip != GBUF_NONE)
                bi[3] = (VkDescriptorBufferInfo){ p->bufs[op->skip].buffer, 0, VK_WHOLE_SIZE };
            bi[4] = (VkDescriptorBufferInfo){ p->bufs[op->dst].buffer, 0, VK_WHOLE_SIZE };
            if (op->kind == GOP_GN_APPLY) {
                bi[5] = (VkDescriptorBufferInfo){ p->bufs[op->aux].buffer, 0, VK_WHOLE_SIZE };
                bi[6] = (VkDescriptorBufferInfo){ gg->weights.buffer, gg->aff_off[i], gg->aff_size[i] };
            }
        }
        VkBufferView tv[ENGINE_TEXEL_BINDINGS] = { e->dummy_view, e->dummy_view, e->dummy_view };
        if (p->views[op->src])
            tv[0] = p->views[op->src];
        if (gg->w_views[i])
            tv[2] = gg->w_views[i];
        if (op->skip != GBUF_NONE && p->views[op->skip])
            tv[1] = p->views[op->skip];
        VkWriteDescriptorSet wr[ENGINE_BINDINGS + ENGINE_TEXEL_BINDINGS];
        for (int k = 0; k < ENGINE_BINDINGS + ENGINE_TEXEL_BINDINGS; k++)
            wr[k] = (VkWriteDescriptorSet){ .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                            .dstSet = sets[i],
                                            .dstBinding = (uint32_t)k,
                                            .descriptorCount = 1,
                                            .descriptorType = k < ENGINE_BINDINGS
                                                                  ? VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
                                                                  : VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER,
                                            .pBufferInfo = k < ENGINE_BINDINGS ? &bi[k] : NULL,
                                            .pTexelBufferView = k < ENGINE_BINDINGS ? NULL
                                                                                    : &tv[k - ENGINE_BINDINGS] };
        vk->vkUpdateDescriptorSets(e->rt.device, ENGINE_BINDINGS + ENGINE_TEXEL_BINDINGS, wr, 0, NULL);
    }

    if (host_cmd)
        goto done;

    /* The command buffer: upload copy, every op, download copy. Recorded once, submitted on every run. */
    VkCommandBufferAllocateInfo cbai = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                         .commandPool = e->rt.command_pool,
                                         .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                         .commandBufferCount = 1 };
    vr = vk->vkAllocateCommandBuffers(e->rt.device, &cbai, &p->cmd);
    if (vr != VK_SUCCESS) {
        r = vk_fail(vr, "vkAllocateCommandBuffers", err, errlen);
        goto done;
    }
    VkCommandBufferBeginInfo cbbi = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO };
    vk->vkBeginCommandBuffer(p->cmd, &cbbi);
    if (p->timestamps)
        vk->vkCmdResetQueryPool(p->cmd, p->timestamps, 0, (uint32_t)g->nops + 1);
    VkBufferCopy cin = { 0, 0, need[GBUF_INPUT] };
    vk->vkCmdCopyBuffer(p->cmd, p->staging_in.buffer, p->bufs[GBUF_INPUT].buffer, 1, &cin);
    compute_barrier(vk, p->cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT,
                    VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_READ_BIT);
    plan_record_ops(e, gg, p, p->cmd);
    VkBufferCopy cout = { 0, 0, need[GBUF_OUTPUT] };
    vk->vkCmdCopyBuffer(p->cmd, p->bufs[GBUF_OUTPUT].buffer, p->staging_out.buffer, 1, &cout);
    compute_barrier(vk, p->cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT,
                    VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT);
    vr = vk->vkEndCommandBuffer(p->cmd);
    if (vr != VK_SUCCESS) {
        r = vk_fail(vr, "vkEndCommandBuffer", err, errlen);
        goto done;
    }
    e->stats.command_buffers_recorded++;
    VkFenceCreateInfo fci = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
    vr = vk->vkCreateFence(e->rt.device, &fci, e->rt.alloc, &p->fence);
    if (vr != VK_SUCCESS)
        r = vk_fail(vr, "vkCreateFence", err, errlen);

done:
    if (r != TAESD_OK) {
        plan_destroy(e, p);
        p = NULL;
    }
    *out = p;
    return r;
}

/* The plan for h×w, built on first use (a free slot, else the least recently used plan makes room). */
static taesd_result plan_get(engine *e, gpu_graph *gg, int h, int w, plan **out, char *err, size_t errlen)
{
    int slot = -1;
    for (int i = 0; i < GPU_GRAPH_MAX_PLANS; i++) {
        if (gg->plans[i] && gg->plans[i]->h == h && gg->plans[i]->w == w) {
            *out = gg->plans[i];
            return TAESD_OK;
        }
        if (!gg->plans[i] && slot < 0)
            slot = i;
    }
    if (slot < 0) {
        slot = 0;
        for (int i = 1; i < GPU_GRAPH_MAX_PLANS; i++)
            if (gg->plans[i]->last_used < gg->plans[slot]->last_used)
                slot = i;
        plan_destroy(e, gg->plans[slot]);
        gg->plans[slot] = NULL;
    }
    taesd_result r = plan_create(e, gg, h, w, false, out, err, errlen);
    if (r == TAESD_OK)
        gg->plans[slot] = *out;
    return r;
}

taesd_result gpu_graph_plan_create(engine *e, gpu_graph *gg, int h, int w, plan **out, char *err, size_t errlen)
{
    return plan_create(e, gg, h, w, true, out, err, errlen);
}

void gpu_graph_plan_destroy(engine *e, plan *p)
{
    plan_destroy(e, p);
}

taesd_result gpu_graph_run(engine *e, gpu_graph *gg, const float *input, int h, int w, float *output, char *err,
                           size_t errlen)
{
    const graph *g = gg->g;
    plan *p = NULL;
    taesd_result r = plan_get(e, gg, h, w, &p, err, errlen);
    if (r != TAESD_OK)
        return r;
    p->last_used = ++gg->use_clock;

    memcpy(p->staging_in.mapped, input, (size_t)g->in_channels * (size_t)h * (size_t)w * sizeof(float));
    r = vkrt_submit_wait(&e->rt, p->cmd, p->fence, err, errlen);
    if (r != TAESD_OK)
        return r;
    memcpy(output, p->staging_out.mapped, (size_t)g->out_channels * (size_t)p->out_h * (size_t)p->out_w * sizeof(float));
    return TAESD_OK;
}

taesd_result gpu_graph_memory(engine *e, gpu_graph *gg, int h, int w, uint64_t *plan_bytes, uint64_t *weight_bytes,
                              char *err, size_t errlen)
{
    plan *p = NULL;
    taesd_result r = plan_get(e, gg, h, w, &p, err, errlen);
    if (r != TAESD_OK)
        return r;
    *plan_bytes = p->device_bytes;
    *weight_bytes = gg->weights.size;
    return TAESD_OK;
}

int gpu_graph_op_times(engine *e, gpu_graph *gg, int h, int w, double *ms, int capacity)
{
    const graph *g = gg->g;
    plan *p = NULL;
    for (int i = 0; i < GPU_GRAPH_MAX_PLANS; i++)
        if (gg->plans[i] && gg->plans[i]->h == h && gg->plans[i]->w == w)
            p = gg->plans[i];
    if (!p || !p->timestamps || !p->last_used)
        return -1;
    uint64_t *t = calloc((size_t)g->nops + 1, sizeof *t);
    if (!t)
        return -1;
    VkResult vr = e->rt.vk.vkGetQueryPoolResults(e->rt.device, p->timestamps, 0, (uint32_t)g->nops + 1,
                                                 sizeof(uint64_t) * ((size_t)g->nops + 1), t, sizeof(uint64_t),
                                                 VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
    int n = -1;
    if (vr == VK_SUCCESS) {
        const double period_ms = (double)e->rt.props.limits.timestampPeriod * 1e-6;
        n = g->nops;
        for (int i = 0; i < g->nops && i < capacity; i++)
            ms[i] = (double)(t[i + 1] - t[i]) * period_ms;
    }
    free(t);
    return n;
}

/* ---- tiling support ---- */

int plan_size(const graph *g, bool fp16, int h, int w, uint64_t *total, uint64_t *largest)
{
    gdims *ind = calloc((size_t)(g->nops > 0 ? g->nops : 1), sizeof *ind);
    gdims *outd = calloc((size_t)(g->nops > 0 ? g->nops : 1), sizeof *outd);
    int rc = -1;
    if (ind && outd && graph_dims(g, h, w, ind, outd) == 0) {
        /* As plan_create sizes them: each buffer for its largest use, plus the two staging buffers. */
        uint64_t need[GBUF_COUNT] = { 0 };
        for (int i = 0; i < g->nops; i++) {
            const gop *op = &g->ops[i];
            uint64_t s = act_bytes(op->src, op->cin, ind[i].h, ind[i].w, fp16);
            uint64_t d = op->kind == GOP_GN_STATS ? (uint64_t)op->groups * 8u
                                                  : act_bytes(op->dst, op->cout, outd[i].h, outd[i].w, fp16);
            if (s > need[op->src])
                need[op->src] = s;
            if (d > need[op->dst])
                need[op->dst] = d;
        }
        uint64_t t = need[GBUF_INPUT] + need[GBUF_OUTPUT], big = 0;
        for (int b = 0; b < GBUF_COUNT; b++) {
            t += need[b];
            if (need[b] > big)
                big = need[b];
        }
        *total = t;
        *largest = big;
        rc = 0;
    }
    free(ind);
    free(outd);
    return rc;
}

void gpu_graph_drop_plans(engine *e, gpu_graph *gg, int keep_h, int keep_w)
{
    bool waited = false;
    for (int i = 0; i < GPU_GRAPH_MAX_PLANS; i++) {
        plan *p = gg->plans[i];
        if (!p || (p->h == keep_h && p->w == keep_w))
            continue;
        if (!waited)
            engine_wait_idle(e);
        waited = true;
        plan_destroy(e, p);
        gg->plans[i] = NULL;
    }
}
