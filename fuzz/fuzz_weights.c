/* fuzz_weights.c — libFuzzer target: weights files (.pth = zip + restricted unpickler, .safetensors) through
 * tt_load_memory, then the key-scheme / variant detection of model_build on whatever table loads.
 * Fuzz builds skip the zip CRC-32 check (FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION) so mutations reach the pickle. */
#include "io/tensors.h"
#include "model/model.h"

#include "fuzz_common.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tt_table t;
    char err[256];
    memset(err, 0, sizeof err);
    if (tt_load_memory(data, size, &t, err, sizeof err) != 0) {
        fuzz_check_err(err, sizeof err);
        if (t.tensors || t.blob || t.count)
            abort();                           /* failure leaves the table empty */
        return 0;
    }
    /* Every tensor: a NUL-terminated name, a sane shape, data inside the blob. Read its first and last element. */
    volatile float sink = 0.0f;
    for (int i = 0; i < t.count; i++) {
        const tt_tensor *x = &t.tensors[i];
        if (strnlen(x->name, TT_NAME_MAX) == TT_NAME_MAX || x->ndim < 0 || x->ndim > TT_MAX_DIMS || x->numel < 0)
            abort();
        if (fuzz_numel(x->shape, x->ndim) != x->numel)
            abort();
        size_t bytes = (size_t)x->numel * (x->dtype == TT_F32 ? 4u : 2u);
        if (x->numel > 0 && (x->data < t.blob || bytes > t.blob_size ||
                             (size_t)(x->data - t.blob) > t.blob_size - bytes))
            abort();
        if (x->numel > 0)
            sink += tt_get(x, 0) + tt_get(x, x->numel - 1);
    }
    (void)sink;
    if (tt_find(&t, "") && t.count == 0)
        abort();

    model_weights m;
    memset(err, 0, sizeof err);
    if (model_build(&t, NULL, MV_AUTO, &m, err, sizeof err) == 0)
        model_free(&m);
    else
        fuzz_check_err(err, sizeof err);
    tt_free(&t);
    return 0;
}
