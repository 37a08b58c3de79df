/* fuzz_npy.c — libFuzzer target: .npy arrays (latents, images) through npy_read_memory. */
#include "io/npy.h"

#include "fuzz_common.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    npy_array a;
    char err[256];
    memset(err, 0, sizeof err);
    if (npy_read_memory(data, size, &a, err, sizeof err) != 0) {
        fuzz_check_err(err, sizeof err);
        if (a.data)
            abort();
        return 0;
    }
    if (a.ndim < 1 || a.ndim > 4 || !a.data)
        abort();
    if (fuzz_numel(a.shape, a.ndim) != a.numel)
        abort();
    volatile float sink = 0.0f;
    for (int64_t i = 0; i < a.numel; i++)   /* every element was written (MSan/ASan see reads of the buffer) */
        sink += a.data[i];
    (void)sink;
    npy_free(&a);
    return 0;
}
