/* fuzz_common.h — checks every fuzz target makes on a reader's error line. */
#ifndef TAESD_FUZZ_COMMON_H
#define TAESD_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A failing reader must leave one NUL-terminated, non-empty line of printable ASCII in err: the CLI prints it after
 * "taesd: ", so bytes from the file (names, chunk types) must have been quoted (io_quote), never copied raw. */
static inline void fuzz_check_err(const char *err, size_t errlen)
{
    size_t n = strnlen(err, errlen);
    if (n == 0 || n == errlen) {
        fprintf(stderr, "fuzz: error line is empty or not terminated\n");
        abort();
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)err[i] < 0x20 || (unsigned char)err[i] > 0x7e) {
            fprintf(stderr, "fuzz: byte 0x%02x at %zu of the error line: ", (unsigned char)err[i], i);
            fwrite(err, 1, n, stderr);
            fputc('\n', stderr);
            abort();
        }
    }
}

/* The element count of a shape; -1 if a dimension is negative or the product overflows. A zero dimension makes it
 * 0 whatever the others are (a reader may accept (0, 2^62): nothing to read; its users check each dimension). */
static inline int64_t fuzz_numel(const int64_t *shape, int ndim)
{
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0)
            return -1;
        if (shape[d] == 0)
            n = 0;
    }
    for (int d = 0; d < ndim && n != 0; d++)
        if (__builtin_mul_overflow(n, shape[d], &n))
            return -1;
    return n;
}

#endif
