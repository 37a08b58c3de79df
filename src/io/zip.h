/* zip.h — a read-only view of a stored (uncompressed) zip held in memory, as PyTorch writes them. Pure C. */
#ifndef TAESD_IO_ZIP_H
#define TAESD_IO_ZIP_H

#include <stddef.h>
#include <stdint.h>

typedef struct zip_entry {
    const char *name;        /* NUL-terminated, owned by the archive */
    const uint8_t *data;     /* points into the caller's buffer */
    size_t size;
} zip_entry;

typedef struct zip_archive {
    zip_entry *entries;      /* sorted by name (strcmp), unique */
    size_t count;
    char *names;             /* storage for the names */
} zip_archive;

/* Parses and validates the whole archive: EOCD (zip64 too), central directory, local headers, CRC-32 of every
 * entry; only stored entries; no absolute or '..' names; every data range inside the buffer. The buffer must
 * outlive the archive. Returns 0 on success; else one line into err and *z is empty. */
int zip_open(const uint8_t *data, size_t size, zip_archive *z, char *err, size_t errlen);
const zip_entry *zip_find(const zip_archive *z, const char *name);
void zip_close(zip_archive *z);

#endif
