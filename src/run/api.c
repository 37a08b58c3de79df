/* api.c — the public API (include/taesd.h) over the engine, the weight readers and the graph builders. */
#include "taesd.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/tensors.h"
#include "../model/latent_format.h"
#include "../model/model.h"
#include "api_internal.h"
#include "engine.h"
#include "tiling.h"

struct taesd_context {
    engine e;
    taesd_log_fn log;
    void *log_user;
    char last_error[1024];
};

struct taesd_model {
    taesd_context *ctx;
    model_weights mw;
    gpu_graph enc, dec;
    bool has_enc, has_dec;
    tiling *tiling;          /* exact tiling (tiling.h): decides per run, builds its graphs on first need */
    bool fp16;
};

static void set_error(taesd_context *ctx, int id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->last_error, sizeof ctx->last_error, fmt, ap);
    va_end(ap);
    if (ctx->log)
        ctx->log(TAESD_LOG_ERROR, id, ctx->last_error, ctx->log_user);
}

const char *taesd_result_string(taesd_result r)
{
    switch (r) {
    case TAESD_OK: return "ok";
    case TAESD_ERROR_INVALID_ARGUMENT: return "invalid argument";
    case TAESD_ERROR_IO: return "i/o error";
    case TAESD_ERROR_FORMAT: return "malformed file";
    case TAESD_ERROR_UNSUPPORTED: return "unsupported";
    case TAESD_ERROR_SHAPE: return "shape mismatch";
    case TAESD_ERROR_NO_DEVICE: return "no Vulkan device";
    case TAESD_ERROR_VULKAN: return "Vulkan error";
    case TAESD_ERROR_OUT_OF_MEMORY: return "out of memory";
    case TAESD_ERROR_NOT_FINITE: return "input is not finite";
    }
    return "unknown error";
}

const char *taesd_variant_name(taesd_variant v)
{
    return model_variant_name((model_variant)v);
}

taesd_result taesd_list_devices(taesd_device_info *out, int *count)
{
    char err[256];
    if (!count)
        return TAESD_ERROR_INVALID_ARGUMENT;
    return vkrt_list_devices(out, count, err, sizeof err);
}

taesd_result taesd_context_create(const taesd_context_desc *desc, taesd_context **out)
{
    if (!out)
        return TAESD_ERROR_INVALID_ARGUMENT;
    *out = NULL;
    taesd_context_desc d = { 0 };
    if (desc)
        d = *desc;
    const char *env = getenv("TAESD_VALIDATION");
    if (env && *env && strcmp(env, "0") != 0)
        d.enable_validation = true;
    if (d.host)
        d.enable_validation = false;   /* the host's instance decides about layers (taesd_vulkan.h) */
    taesd_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return TAESD_ERROR_OUT_OF_MEMORY;
    ctx->log = d.log;
    ctx->log_user = d.log_user;
    char err[512] = "";
    taesd_result r = engine_init(&ctx->e, d.host, d.device_index, d.enable_validation, d.log, d.log_user, err,
                                 sizeof err);
    if (r != TAESD_OK) {
        if (d.log)
            d.log(TAESD_LOG_ERROR, MSG_CONTEXT_CREATE, err, d.log_user);
        engine_destroy(&ctx->e);
        free(ctx);
        return r;
    }
    *out = ctx;
    return TAESD_OK;
}

void taesd_context_destroy(taesd_context *ctx)
{
    if (!ctx)
        return;
    engine_destroy(&ctx->e);
    free(ctx);
}

const char *taesd_context_last_error(const taesd_context *ctx)
{
    return ctx ? ctx->last_error : "no context";
}

void taesd_context_device_info(const taesd_context *ctx, taesd_device_info *out)
{
    if (ctx && out)
        vkrt_device_info(&ctx->e.rt, out);
}

uint32_t taesd_context_validation_messages(const taesd_context *ctx)
{
    return ctx ? ctx->e.rt.validation_messages : 0;
}

/* Internal (tests): counts of pipelines, descriptor sets and command buffers made so far. */
void taesd_context_get_stats(const taesd_context *ctx, taesd_context_stats *out)
{
    if (!ctx || !out)
        return;
    out->pipelines_created = ctx->e.stats.pipelines_created;
    out->descriptor_sets_allocated = ctx->e.stats.descriptor_sets_allocated;
    out->command_buffers_recorded = ctx->e.stats.command_buffers_recorded;
}

static taesd_result load_table(taesd_context *ctx, const char *path, tt_table *t)
{
    char err[512];
    if (tt_load_file(path, t, err, sizeof err) != 0) {
        set_error(ctx, MSG_MODEL_LOAD, "%s: %s", path, err);
        return strstr(err, "cannot open") || strstr(err, "cannot read") ? TAESD_ERROR_IO : TAESD_ERROR_FORMAT;
    }
    return TAESD_OK;
}

taesd_result taesd_model_load(taesd_context *ctx, const taesd_model_desc *desc, taesd_model **out)
{
    if (!ctx || !out)
        return TAESD_ERROR_INVALID_ARGUMENT;
    *out = NULL;
    if (!desc || !desc->path) {
        set_error(ctx, MSG_INVALID_ARGUMENT, "taesd_model_load: no weights path given");
        return TAESD_ERROR_INVALID_ARGUMENT;
    }
    if ((int)desc->variant < 0 || desc->variant > TAESD_VARIANT_TAESANA || (int)desc->precision < 0 ||
        desc->precision > TAESD_PRECISION_FP16) {
        set_error(ctx, MSG_INVALID_ARGUMENT, "taesd_model_load: bad variant or precision");
        return TAESD_ERROR_INVALID_ARGUMENT;
    }
    if (desc->tile < 0) {
        set_error(ctx, MSG_INVALID_ARGUMENT, "taesd_model_load: tile must be 0 (automatic) or more, not %d",
                  desc->tile);
        return TAESD_ERROR_INVALID_ARGUMENT;
    }
    /* AUTO: fp16 on GPUs (half the memory traffic). Not on CPU devices: there fp16 buys no bandwidth and costs
     * conversions (lavapipe: a 512² taef2 decode takes 7.2 s in fp16, 4.5 s in fp32). */
    bool fp16 = desc->precision == TAESD_PRECISION_FP16 ||
                (desc->precision == TAESD_PRECISION_AUTO && ctx->e.rt.fp16 &&
                 ctx->e.rt.props.deviceType != VK_PHYSICAL_DEVICE_TYPE_CPU);
    if (fp16 && !ctx->e.rt.fp16) {
        set_error(ctx, MSG_MODEL_LOAD, "%s: fp16 requested but the device lacks 16-bit storage or fp16 arithmetic",
                  desc->path);
        return TAESD_ERROR_UNSUPPORTED;
    }

    tt_table t1 = { 0 }, t2 = { 0 };
    taesd_result r = load_table(ctx, desc->path, &t1);
    if (r == TAESD_OK && desc->path2)
        r = load_table(ctx, desc->path2, &t2);
    if (r != TAESD_OK) {
        tt_free(&t1);
        tt_free(&t2);
        return r;
    }
    taesd_model *m = calloc(1, sizeof *m);
    if (!m) {
        tt_free(&t1);
        tt_free(&t2);
        return TAESD_ERROR_OUT_OF_MEMORY;
    }
    m->ctx = ctx;
    m->fp16 = fp16;
    char err[512];
    int br = model_build(&t1, desc->path2 ? &t2 : NULL, (model_variant)desc->variant, &m->mw, err, sizeof err);
    tt_free(&t1);
    tt_free(&t2);
    if (br != 0) {
        /* model_build marks problems of the second table; name that file. */
        const char *mark = " (second file)";
        size_t el = strlen(err), ml = strlen(mark);
        if (desc->path2 && el > ml && strcmp(err + el - ml, mark) == 0) {
            err[el - ml] = 0;
            set_error(ctx, MSG_MODEL_LOAD, "%s: %s", desc->path2, err);
        } else {
            set_error(ctx, MSG_MODEL_LOAD, "%s: %s", desc->path, err);
        }
        free(m);
        return TAESD_ERROR_FORMAT;
    }
    if (m->mw.encoder) {
        r = gpu_graph_create(&ctx->e, m->mw.encoder, fp16, desc->profile, &m->enc, err, sizeof err);
        m->has_enc = r == TAESD_OK;
    }
    if (r == TAESD_OK && m->mw.decoder) {
        r = gpu_graph_create(&ctx->e, m->mw.decoder, fp16, desc->profile, &m->dec, err, sizeof err);
        m->has_dec = r == TAESD_OK;
    }
    if (r == TAESD_OK && (r = tiling_create(desc->tile, desc->max_memory, fp16, m->has_enc ? &m->enc : NULL,
                                            m->has_dec ? &m->dec : NULL, &m->tiling)) != TAESD_OK)
        snprintf(err, sizeof err, "out of host memory");
    if (r != TAESD_OK) {
        set_error(ctx, MSG_MODEL_LOAD, "%s: %s", desc->path, err);
        taesd_model_destroy(m);
        return r;
    }
    *out = m;
    return TAESD_OK;
}

void taesd_model_destroy(taesd_model *m)
{
    if (!m)
        return;
    tiling_destroy(&m->ctx->e, m->tiling);
    if (m->has_enc)
        gpu_graph_destroy(&m->ctx->e, &m->enc);
    if (m->has_dec)
        gpu_graph_destroy(&m->ctx->e, &m->dec);
    model_free(&m->mw);
    free(m);
}

void taesd_model_get_info(const taesd_model *m, taesd_model_info *out)
{
    if (!m || !out)
        return;
    memset(out, 0, sizeof *out);
    out->variant = (taesd_variant)m->mw.variant;
    out->variant_name = model_variant_name(m->mw.variant);
    out->has_encoder = m->mw.encoder != NULL;
    out->has_decoder = m->mw.decoder != NULL;
    out->latent_channels = m->mw.latent_channels;
    out->scale = m->mw.scale;
    out->encoder_params = m->mw.encoder ? (uint64_t)m->mw.encoder->param_count : 0;
    out->decoder_params = m->mw.decoder ? (uint64_t)m->mw.decoder->param_count : 0;
    out->dtype = tt_dtype_name(m->mw.dtype);
    out->key_scheme = key_scheme_name(m->mw.scheme);
    out->has_vae_scale = m->mw.has_vae_scale;
    out->vae_scale = m->mw.has_vae_scale ? m->mw.vae_scale : 1.0f;
    out->vae_shift = m->mw.has_vae_scale ? m->mw.vae_shift : 0.0f;
    out->precision = m->fp16 ? TAESD_PRECISION_FP16 : TAESD_PRECISION_FP32;
}

int taesd_output_size(const taesd_model *m, taesd_part part, int h, int w, int *out_h, int *out_w)
{
    if (!m)
        return 0;
    const graph *g = part == TAESD_PART_ENCODER ? m->mw.encoder : part == TAESD_PART_DECODER ? m->mw.decoder : NULL;
    int oh = 0, ow = 0;
    if (!g || h < 1 || w < 1 || graph_output_size(g, h, w, &oh, &ow) != 0)
        return 0;
    if (out_h)
        *out_h = oh;
    if (out_w)
        *out_w = ow;
    return 1;
}

static gpu_graph *part_graph(taesd_model *m, taesd_part part)
{
    if (part == TAESD_PART_DECODER)
        return m->has_dec ? &m->dec : NULL;
    if (part == TAESD_PART_ENCODER)
        return m->has_enc ? &m->enc : NULL;
    return NULL;
}

static taesd_result run(taesd_model *m, taesd_part part, const float *in, int channels, int h, int w, float *out)
{
    taesd_context *ctx = m->ctx;
    const char *what = part == TAESD_PART_DECODER ? "decode" : "encode";
    gpu_graph *gg = part_graph(m, part);
    if (!gg) {
        set_error(ctx, MSG_RUN, "%s: the loaded weights hold no %s", what,
                  part == TAESD_PART_DECODER ? "decoder" : "encoder");
        return TAESD_ERROR_UNSUPPORTED;
    }
    if (!in || !out || h < 1 || w < 1) {
        set_error(ctx, MSG_INVALID_ARGUMENT, "%s: bad arguments (size %dx%d)", what, w, h);
        return TAESD_ERROR_INVALID_ARGUMENT;
    }
    if (channels != gg->g->in_channels) {
        set_error(ctx, MSG_RUN, "%s: input has %d channels, the model expects %d", what, channels,
                  gg->g->in_channels);
        return TAESD_ERROR_SHAPE;
    }
    int oh, ow;
    if (graph_output_size(gg->g, h, w, &oh, &ow) != 0) {
        set_error(ctx, MSG_RUN, "%s: input size %dx%d is too large", what, w, h);
        return TAESD_ERROR_SHAPE;
    }
    size_t n = (size_t)channels * (size_t)h * (size_t)w;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(in[i])) {
            set_error(ctx, MSG_RUN, "%s: input holds NaN or Inf (element %zu)", what, i);
            return TAESD_ERROR_NOT_FINITE;
        }
    }
    char err[512];
    tiling_report rep;
    taesd_result r = tiling_run(&ctx->e, m->tiling, (gpart)part, in, h, w, out, &rep, err, sizeof err);
    if (r != TAESD_OK)
        set_error(ctx, MSG_RUN, "%s: %s", what, err);
    else if (rep.tiled && ctx->log) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s: %dx%d in %d tile%s of %d latent pixel%s (windows of %dx%d, halo %d); "
                 "latent-resolution stage %s; %.1f MiB of plans", what, w, h, rep.tiles, rep.tiles == 1 ? "" : "s",
                 rep.tile, rep.tile == 1 ? "" : "s", rep.win_w, rep.win_h, rep.halo_high,
                 rep.low_tiles > 1 ? "tiled" : "whole",
                 (double)rep.plan_bytes / (1024.0 * 1024.0));
        ctx->log(TAESD_LOG_INFO, MSG_TILING, msg, ctx->log_user);
    }
    return r;
}

taesd_result taesd_model_run_cost(taesd_model *m, taesd_part part, int h, int w, taesd_run_cost *out)
{
    if (!m || !out)
        return TAESD_ERROR_INVALID_ARGUMENT;
    gpu_graph *gg = part_graph(m, part);
    if (!gg) {
        set_error(m->ctx, MSG_INVALID_ARGUMENT, "run cost: the loaded weights hold no such part");
        return TAESD_ERROR_UNSUPPORTED;
    }
    int oh, ow;
    if (h < 1 || w < 1 || graph_output_size(gg->g, h, w, &oh, &ow) != 0) {
        set_error(m->ctx, MSG_INVALID_ARGUMENT, "run cost: input size %dx%d is not supported", w, h);
        return TAESD_ERROR_SHAPE;
    }
    memset(out, 0, sizeof *out);
    out->flops = graph_flops(gg->g, h, w);
    char err[512];
    /* A run that goes in tiles builds no plan of the whole size: report the tiles' plans, computed. */
    tiling_report rep;
    taesd_result r = tiling_plan(&m->ctx->e, m->tiling, (gpart)part, h, w, &rep, err, sizeof err);
    if (r == TAESD_OK && rep.tiled) {
        out->plan_bytes = rep.plan_bytes;
        out->weight_bytes = gg->weights.size;
        return TAESD_OK;
    }
    if (r == TAESD_OK)
        r = gpu_graph_memory(&m->ctx->e, gg, h, w, &out->plan_bytes, &out->weight_bytes, err, sizeof err);
    if (r != TAESD_OK)
        set_error(m->ctx, MSG_RUN, "%s", err);
    return r;
}

int taesd_model_op_times(taesd_model *m, taesd_part part, int h, int w, taesd_op_time *out, int capacity)
{
    static const char *const kinds[GOP_KIND_COUNT] = { "conv3x3", "conv1x1", "gn_stats", "gn_apply" };
    gpu_graph *gg = m ? part_graph(m, part) : NULL;
    if (!gg || (capacity > 0 && !out))
        return -1;
    const graph *g = gg->g;
    double *ms = calloc((size_t)g->nops, sizeof *ms);
    gdims *ind = calloc((size_t)g->nops, sizeof *ind), *outd = calloc((size_t)g->nops, sizeof *outd);
    int n = -1;
    if (ms && ind && outd && graph_dims(g, h, w, ind, outd) == 0)
        n = gpu_graph_op_times(&m->ctx->e, gg, h, w, ms, g->nops);
    for (int i = 0; i < n && i < capacity; i++) {
        const gop *op = &g->ops[i];
        out[i] = (taesd_op_time){ .name = op->name,
                                  .kind = kinds[op->kind],
                                  .out_h = outd[i].h,
                                  .out_w = outd[i].w,
                                  .cin = op->cin,
                                  .cout = op->cout,
                                  .flops = graph_op_flops(op, ind[i], outd[i]),
                                  .ms = ms[i] };
    }
    free(ms);
    free(ind);
    free(outd);
    return n;
}

taesd_result taesd_decode(taesd_model *m, const float *latent, int channels, int h, int w, float *rgb)
{
    if (!m)
        return TAESD_ERROR_INVALID_ARGUMENT;
    return run(m, TAESD_PART_DECODER, latent, channels, h, w, rgb);
}

taesd_result taesd_encode(taesd_model *m, const float *rgb, int h, int w, float *latent)
{
    if (!m)
        return TAESD_ERROR_INVALID_ARGUMENT;
    return run(m, TAESD_PART_ENCODER, rgb, 3, h, w, latent);
}

/* ---- Host devices (taesd_vulkan.h) ------------------------------------------------------------------------ */

taesd_result taesd_query_device_requirements(uint32_t api_version, taesd_device_requirements *out)
{
    static const char *const fp16_exts_11[] = { VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME };
    static const char *const cmd_exts_12[] = { VK_KHR_SYNCHRONIZATION_2_EXTENSION_NAME };
    if (!out)
        return TAESD_ERROR_INVALID_ARGUMENT;
    uint32_t v = VK_MAKE_API_VERSION(0, VK_API_VERSION_MAJOR(api_version), VK_API_VERSION_MINOR(api_version), 0);
    memset(out, 0, sizeof *out);
    out->min_api_version = VK_API_VERSION_1_1;
    out->queue_flags = VK_QUEUE_COMPUTE_BIT;
    out->extension_count = 0;            /* storage buffers, compute, fences: all core 1.0/1.1 */
    out->extensions = NULL;
    if (v < VK_API_VERSION_1_2) {        /* 16-bit storage is core in 1.1; shaderFloat16 only from 1.2 */
        out->fp16_extension_count = 1;
        out->fp16_extensions = fp16_exts_11;
    }
    out->fp16_storage_buffer_16bit_access = true;
    out->fp16_shader_float16 = true;
    if (v < VK_API_VERSION_1_3) {        /* synchronization2 is core from 1.3 */
        out->cmd_extension_count = 1;
        out->cmd_extensions = cmd_exts_12;
    }
    out->cmd_synchronization2 = true;
    return v < VK_API_VERSION_1_1 ? TAESD_ERROR_UNSUPPORTED : TAESD_OK;
}

/* ---- Latent formats --------------------------------------------------------------------------------------- */

taesd_result taesd_latent_shape(taesd_latent_format format, bool to_diffusion, int c, int h, int w, int *out_c,
                                int *out_h, int *out_w)
{
    return lf_shape(format, to_diffusion, c, h, w, out_c, out_h, out_w);
}

taesd_result taesd_latent_to_diffusion(taesd_latent_format format, const float *in, int c, int h, int w, float *out)
{
    return lf_to_diffusion(format, in, c, h, w, out);
}

taesd_result taesd_latent_from_diffusion(taesd_latent_format format, const float *in, int c, int h, int w,
                                         float *out)
{
    return lf_from_diffusion(format, in, c, h, w, out);
}

const char *taesd_latent_format_name(taesd_latent_format format)
{
    return lf_name(format);
}

taesd_result taesd_latent_format_parse(const char *name, taesd_latent_format *out)
{
    return lf_parse(name, out) ? TAESD_OK : TAESD_ERROR_INVALID_ARGUMENT;
}

/* ---- internal accessors (api_internal.h) ------------------------------------------------------------------- */

engine *api_model_engine(taesd_model *m)
{
    return &m->ctx->e;
}

gpu_graph *api_model_decoder(taesd_model *m)
{
    return m->has_dec ? &m->dec : NULL;
}

void api_model_error(taesd_model *m, int id, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    set_error(m->ctx, id, "%s", msg);
}
