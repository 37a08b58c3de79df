/* fileutil.h — small file helpers shared by the readers and writers. Pure C. */
#ifndef TAESD_IO_FILEUTIL_H
#define TAESD_IO_FILEUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Reads a whole regular file (max_size guards absurd inputs). Returns 0 on success; else one line into err. */
int file_read_all(const char *path, size_t max_size, uint8_t **data, size_t *size, char *err, size_t errlen);
/* Writes atomically: a temp file beside path, then rename. On failure nothing is left behind. */
int file_write_atomic(const char *path, const void *data, size_t size, char *err, size_t errlen);

#endif
