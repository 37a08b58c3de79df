/* testutil.h — helpers shared by the cmocka suites. */
#ifndef TAESD_TESTS_TESTUTIL_H
#define TAESD_TESTS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>
#include <setjmp.h>
#include <cmocka.h>

/* Path under the shared data folder (env TAESD_SHARED, default ../shared). Returns a static buffer per call slot. */
const char *shared_path(const char *rel);
/* 1 if the shared data folder is there. */
int shared_available(void);
/* Writes bytes to a fresh temp file and returns its path (static storage, overwritten by the next call slot). */
const char *write_temp(const char *suffix, const void *data, size_t size);
/* Reads a whole file (malloc'ed); NULL on failure. */
uint8_t *read_all(const char *path, size_t *size);
/* Relative L2 error: ||a-b|| / ||b||. */
double rel_l2(const float *a, const float *b, size_t n);
double max_abs_diff(const float *a, const float *b, size_t n);
/* Deterministic pseudo-random floats in [lo, hi). */
void fill_random(float *x, size_t n, uint32_t seed, float lo, float hi);

#endif
