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
#include "host_app.h"
#include "io/npy.h"
#include "testutil.h"

#define WEIGHTS "weights/synth_sd_decoder_f16.safetensors"
#define GOLDEN_IN "golden/synth_sd_dec_12x8.in.npy"
#define GOLDEN_OUT "golden/synth_sd_dec_12x8.out.npy"

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
