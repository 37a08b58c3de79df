/* engine.h — running graphs on Vulkan: pipelines (one per kernel variant + specialization), weights in
 * device-local storage buffers, and per-resolution plans (buffers, descriptor sets, one recorded command buffer
 * reused on every call). */
#ifndef TAESD_RUN_ENGINE_H
#define TAESD_RUN_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "../model/graph.h"
#include "../vk/vk.h"

#define ENGINE_BINDINGS 7   /* storage buffers: src, weights, bias, skip, dst, gn stats, gn affine (conv.comp) */
#define ENGINE_TEXEL_BINDINGS 3   /* then uniform texel buffers: src, skip, weights (conv.comp, TEXEL_SRC) */

typedef struct pipeline_key {
    int shader;             /* shader_id */
    int32_t spec[16];       /* specialization constants, by constant_id */
    int nspec;
} pipeline_key;

typedef struct pipeline_entry {
    pipeline_key key;
    VkPipeline pipeline;
} pipeline_entry;

typedef struct engine_stats {
    uint32_t pipelines_created;
    uint32_t descriptor_sets_allocated;
    uint32_t command_buffers_recorded;
} engine_stats;

typedef struct engine {
    vk_runtime rt;
    VkDescriptorSetLayout set_layout;
    VkPipelineLayout pipeline_layout;
    VkPipelineCache pipeline_cache;
    VkShaderModule modules[32];         /* by shader_id, created on first use */
    pipeline_entry *pipelines;
    int npipelines, cap_pipelines;
    vk_buffer dummy;                    /* bound where an op has no such input */
    VkBufferView dummy_view;            /* the same, as a texel buffer */
    bool texel_src;                     /* conv reads packed activations through texel buffers (CPU devices) */
    engine_stats stats;
    /* kernel tiling chosen for the device */
    int conv_px, conv_cob, wg_x, wg_y;
} engine;

/* host: NULL to create our own instance and device, else the host's (see taesd_vulkan.h). */
taesd_result engine_init(engine *e, const taesd_vulkan_host *host, int device_index, bool validation,
                         taesd_log_fn log, void *log_user, char *err, size_t errlen);
void engine_destroy(engine *e);

/* One resolution of one graph: everything a run needs, recorded once. */
typedef struct plan {
    int h, w, out_h, out_w;
    bool host_cmd;                      /* recorded into the host's command buffers (taesd_cmd_decode): no staging
                                         * buffers, no command buffer or fence of its own */
    vk_buffer bufs[GBUF_COUNT];
    vk_buffer staging_in, staging_out;
    VkDescriptorPool pool;
    VkDescriptorSet *sets;              /* per op, written once */
    VkBufferView views[GBUF_COUNT];     /* texel views of the packed activation buffers (engine.texel_src) */
    gdims *in_dims, *out_dims;          /* per op */
    VkCommandBuffer cmd;
    VkFence fence;
    VkQueryPool timestamps;             /* profiling only: one timestamp before and after every op */
    uint64_t last_used;
    uint64_t device_bytes;              /* activation and staging buffers of this plan */
} plan;

#define GPU_GRAPH_MAX_PLANS 4

/* A graph whose weights live on the device, plus its plans. */
typedef struct gpu_graph {
    const graph *g;                     /* not owned */
    bool fp16;
    bool profile;                       /* record GPU timestamps around every op */
    vk_buffer weights;
    VkDeviceSize *w_off, *b_off, *aff_off, *w_size, *b_size, *aff_size;  /* per op; size 0: none */
    VkPipeline *pipes;                  /* per op (owned by the engine's cache) */
    VkBufferView *w_views;              /* per op: its packed weights as a texel buffer (engine.texel_src) */
    plan *plans[GPU_GRAPH_MAX_PLANS];
    uint64_t use_clock;
} gpu_graph;

taesd_result gpu_graph_create(engine *e, const graph *g, bool fp16, bool profile, gpu_graph *out, char *err,
                              size_t errlen);
void gpu_graph_destroy(engine *e, gpu_graph *gg);
/* Runs the graph on a planar float32 CHW input of h×w; writes the planar float32 output. Builds the plan for
 * this size on first use (the plan is kept: later calls at this size only upload, submit and wait). */
taesd_result gpu_graph_run(engine *e, gpu_graph *gg, const float *input, int h, int w, float *output, char *err,
                           size_t errlen);


/* A plan outside the graph's LRU, for recording into the host's command buffers (see taesd_cmd_decode): its
 * activation buffers and descriptor sets only. Destroy with gpu_graph_plan_destroy (no wait). */
taesd_result gpu_graph_plan_create(engine *e, gpu_graph *gg, int h, int w, plan **out, char *err, size_t errlen);
void gpu_graph_plan_destroy(engine *e, plan *p);
/* Records the plan's ops into cb: per op bind, push constants, dispatch, then a barrier making its writes visible
 * to the next op's reads and to transfers. The caller has made the INPUT buffer's contents visible to compute. */
void plan_record_ops(engine *e, const gpu_graph *gg, const plan *p, VkCommandBuffer cb);
/* The pipeline of `key`, built on first use and cached for the engine's lifetime. */
taesd_result engine_get_pipeline(engine *e, const pipeline_key *key, VkPipeline *out, char *err, size_t errlen);

/* Device bytes a run at h×w uses: the plan's buffers (built if needed) plus the weights. */
taesd_result gpu_graph_memory(engine *e, gpu_graph *gg, int h, int w, uint64_t *plan_bytes, uint64_t *weight_bytes,
                              char *err, size_t errlen);
/* GPU milliseconds of each op in the last run at h×w (profiling graphs only). Returns the op count, or -1. */
int gpu_graph_op_times(engine *e, gpu_graph *gg, int h, int w, double *ms, int capacity);

/* ---- tiling support ---- */

/* Device bytes a plan for g at h×w would take (its buffers and staging buffers, as plan_create sizes them) and its
 * largest buffer, without building anything. Returns 0, or -1 for an unsupported size. */
int plan_size(const graph *g, bool fp16, int h, int w, uint64_t *total, uint64_t *largest);
/* Destroys the graph's cached plans except the one for keep_h×keep_w (0, 0: all of them). */
void gpu_graph_drop_plans(engine *e, gpu_graph *gg, int keep_h, int keep_w);

#endif
