/* tensors.h — a weights file read into a table of named tensors. Pure C, no Vulkan.
 * Formats: PyTorch .pth (zip + restricted unpickler; never executes anything) and .safetensors,
 * recognised by content, not by file name. */
#ifndef TAESD_IO_TENSORS_H
#define TAESD_IO_TENSORS_H

#include <stddef.h>
#include <stdint.h>

typedef enum tt_dtype { TT_F32 = 0, TT_F16 = 1, TT_BF16 = 2 } tt_dtype;

#define TT_MAX_DIMS 4
#define TT_NAME_MAX 160

typedef struct tt_tensor {
    char name[TT_NAME_MAX];
    tt_dtype dtype;
    int ndim;                      /* 0..4 (0: a scalar) */
    int64_t shape[TT_MAX_DIMS];
    int64_t numel;
    const uint8_t *data;           /* contiguous, little-endian, numel elements of dtype; points into the table's blob.
                                    * Not necessarily aligned (old .pth zips, safetensors): read through tt_get/memcpy. */
} tt_tensor;

typedef struct tt_table {
    tt_tensor *tensors;
    int count;
    uint8_t *blob;                 /* owned: the file's bytes (tensors point into it) */
    size_t blob_size;
    const char *format;            /* "pth" or "safetensors" (static string) */
} tt_table;

/* Reads and validates a whole file. On failure returns non-zero, writes one line (no path, no newline)
 * describing the problem into err, and leaves *out empty. */
int tt_load_file(const char *path, tt_table *out, char *err, size_t errlen);
/* Same, from bytes in memory (copied). */
int tt_load_memory(const uint8_t *data, size_t size, tt_table *out, char *err, size_t errlen);
void tt_free(tt_table *t);
const tt_tensor *tt_find(const tt_table *t, const char *name);
/* Element i of a tensor as float (f16/bf16 widened exactly). */
float tt_get(const tt_tensor *t, int64_t i);
const char *tt_dtype_name(tt_dtype d);   /* "f32", "f16", "bf16" */
/* "[64, 32, 3, 3]" into buf (truncated to len), for error messages. */
void tt_format_shape(char *buf, size_t len, int ndim, const int64_t *shape);

/* Half <-> float conversion shared across the project (round to nearest even). */
float tt_half_to_float(uint16_t h);
uint16_t tt_float_to_half(float f);
float tt_bf16_to_float(uint16_t b);
uint16_t tt_float_to_bf16(float f);      /* round to nearest even; NaN stays NaN */

#endif
