/* npy.h — NumPy .npy arrays (read: float32/float16 little-endian, C order; write: float32). Pure C. */
#ifndef TAESD_IO_NPY_H
#define TAESD_IO_NPY_H

#include <stddef.h>
#include <stdint.h>

typedef struct npy_array {
    int ndim;                /* 1..4 */
    int64_t shape[4];
    int64_t numel;
    float *data;             /* owned, converted to float32 */
} npy_array;

/* Returns 0 on success; else writes one line (no path) into err. Rejects fortran order, other dtypes,
 * shapes whose element count overflows or does not match the file length. */
int npy_read_file(const char *path, npy_array *out, char *err, size_t errlen);
int npy_read_memory(const uint8_t *data, size_t size, npy_array *out, char *err, size_t errlen);
/* Writes float32 C-order; atomically (temp file + rename), so no partial file is left on failure. */
int npy_write_file(const char *path, const float *data, int ndim, const int64_t *shape, char *err, size_t errlen);
void npy_free(npy_array *a);

#endif
