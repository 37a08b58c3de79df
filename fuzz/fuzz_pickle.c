/* fuzz_pickle.c — libFuzzer target: the restricted unpickler alone (data.pkl of a .pth), so that inserted and
 * deleted bytes are not lost to the zip layer's offsets. Every storage key resolves to one 4 KiB zero buffer
 * (key "0") or fails (any other key), as the zip lookup would. */
#include "io/tensors.h"
#include "io/unpickle.h"

#include "fuzz_common.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t storage_bytes[4096];

static int storage(void *ctx, const char *key, size_t key_len, const uint8_t **data, size_t *size, char *err,
                   size_t errlen)
{
    (void)ctx;
    if (key_len == 1 && key[0] == '0') {
        *data = storage_bytes;
        *size = sizeof storage_bytes;
        return 0;
    }
    snprintf(err, errlen, "pickle: no storage");
    return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tt_tensor *t = NULL;
    int count = -1;
    char err[256];
    memset(err, 0, sizeof err);
    if (unpickle_state_dict(data, size, storage, NULL, &t, &count, err, sizeof err) != 0) {
        fuzz_check_err(err, sizeof err);
        free(t);
        return 0;
    }
    volatile float sink = 0.0f;
    for (int i = 0; i < count; i++) {
        const tt_tensor *x = &t[i];
        size_t bytes = (size_t)x->numel * (x->dtype == TT_F32 ? 4u : 2u);
        if (strnlen(x->name, TT_NAME_MAX) == TT_NAME_MAX || x->numel < 0 ||
            (x->numel > 0 && (x->data < storage_bytes || bytes > sizeof storage_bytes ||
                              (size_t)(x->data - storage_bytes) > sizeof storage_bytes - bytes)))
            abort();
        if (x->numel > 0)
            sink += tt_get(x, 0) + tt_get(x, x->numel - 1);
    }
    (void)sink;
    free(t);
    return 0;
}
