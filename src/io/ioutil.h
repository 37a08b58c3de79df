/* ioutil.h — internal helpers of the src/io layer (not part of the public contract). Pure C. */
#ifndef TAESD_IO_IOUTIL_H
#define TAESD_IO_IOUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define IO_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define IO_PRINTF(a, b)
#endif

/* Formats one line into err (NULL/0 allowed). Always returns -1 so callers can `return io_err(...)`. */
int io_err(char *err, size_t errlen, const char *fmt, ...) IO_PRINTF(3, 4);
/* Copies n bytes of untrusted text into buf for an error message: printable ASCII kept, other bytes as '?',
 * cut with "..." when longer than the buffer. Returns buf. */
const char *io_quote(char *buf, size_t buflen, const char *s, size_t n);

/* Upper bound on the size of any file the io layer reads (2 GiB). */
#define IO_MAX_FILE ((size_t)2 << 30)

static inline uint16_t io_rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t io_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t io_rd64(const uint8_t *p) { return (uint64_t)io_rd32(p) | ((uint64_t)io_rd32(p + 4) << 32); }

/* Overflow-checked size arithmetic: 0 on success, -1 on overflow. */
static inline int io_add(size_t a, size_t b, size_t *r)
{
    if (a > SIZE_MAX - b)
        return -1;
    *r = a + b;
    return 0;
}
static inline int io_mul(size_t a, size_t b, size_t *r)
{
    if (a != 0 && b > SIZE_MAX / a)
        return -1;
    *r = a * b;
    return 0;
}
/* 1 if [off, off+len) lies inside [0, size). */
static inline int io_range_ok(uint64_t off, uint64_t len, uint64_t size)
{
    return off <= size && len <= size - off;
}

#endif

/* ---- shared by tensors.c, safetensors.c, unpickle.c ---- */
struct tt_tensor;
/* Max tensors in one weights file. */
#define IO_MAX_TENSORS 100000
/* Parses a safetensors file held in blob; tensors point into blob. *out malloc'ed (may be NULL when *count is 0). */
int io_load_safetensors(const uint8_t *blob, size_t size, struct tt_tensor **out, int *count, char *err,
                        size_t errlen);
/* Fails with "<what>: duplicate tensor name '...'" if two tensors share a name. */
int io_check_unique_names(const struct tt_tensor *t, int n, const char *what, char *err, size_t errlen);
/* Element size in bytes of a tt_dtype. */
size_t io_dtype_size(int dtype);
