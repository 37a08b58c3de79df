/* zip.c — stored-only zip reader over a buffer (PyTorch .pth). Every offset and length is bounds-checked. */
#include "io/zip.h"
#include "io/ioutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOC64 0x07064b50u
#define ZIP_MAX_ENTRIES ((size_t)1 << 20)

static void crc_table(uint32_t t[256])
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        t[i] = c;
    }
}

static uint32_t crc32_buf(const uint32_t t[256], const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++)
        c = t[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

/* Rejects names that are empty, absolute, or contain a '..' component. */
static int check_name(const char *name, size_t n, size_t idx, char *err, size_t errlen)
{
    char q[128];
    if (n == 0)
        return io_err(err, errlen, "zip: central directory entry %zu has an empty name", idx);
    if (memchr(name, '\0', n))
        return io_err(err, errlen, "zip: central directory entry %zu has a NUL byte in its name", idx);
    if (name[0] == '/' || name[0] == '\\' ||
        (n >= 2 && name[1] == ':' && ((name[0] >= 'A' && name[0] <= 'Z') || (name[0] >= 'a' && name[0] <= 'z'))))
        return io_err(err, errlen, "zip: entry name '%s' is an absolute path", io_quote(q, sizeof q, name, n));
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || name[i] == '/' || name[i] == '\\') {
            if (i - start == 2 && name[start] == '.' && name[start + 1] == '.')
                return io_err(err, errlen, "zip: entry name '%s' contains a '..' component (path traversal)",
                              io_quote(q, sizeof q, name, n));
            start = i + 1;
        }
    }
    return 0;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const zip_entry *)a)->name, ((const zip_entry *)b)->name);
}

/* Locates the end-of-central-directory record: the last signature whose record and comment fit in the file,
 * searching at most 65535+22 bytes back. */
static int find_eocd(const uint8_t *d, size_t size, size_t *pos)
{
    if (size < 22)
        return -1;
    size_t lo = size - 22 > 65535 ? size - 22 - 65535 : 0;
    for (size_t p = size - 22;; p--) {
        if (io_rd32(d + p) == SIG_EOCD && p + 22 + io_rd16(d + p + 20) <= size) {
            *pos = p;
            return 0;
        }
        if (p == lo)
            break;
    }
    return -1;
}

int zip_open(const uint8_t *d, size_t size, zip_archive *z, char *err, size_t errlen)
{
    memset(z, 0, sizeof *z);
    size_t eocd;
    if (size < 22)
        return io_err(err, errlen, "zip: file is too short (%zu bytes) to hold an end of central directory record", size);
    if (find_eocd(d, size, &eocd) != 0)
        return io_err(err, errlen, "zip: end of central directory record not found (file truncated or not a zip)");
    uint32_t disk = io_rd16(d + eocd + 4), cd_disk = io_rd16(d + eocd + 6);
    uint64_t n_disk = io_rd16(d + eocd + 8), n_total = io_rd16(d + eocd + 10);
    uint64_t cd_size = io_rd32(d + eocd + 12), cd_off = io_rd32(d + eocd + 16);
    int need64 = n_total == 0xffff || n_disk == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu;
    if (eocd >= 20 && io_rd32(d + eocd - 20) == SIG_LOC64) {
        uint64_t off64 = io_rd64(d + eocd - 20 + 8);
        if (!io_range_ok(off64, 56, eocd - 20) || io_rd32(d + off64) != SIG_EOCD64)
            return io_err(err, errlen, "zip: zip64 end of central directory record at offset %llu is missing or "
                          "past the end of the file", (unsigned long long)off64);
        const uint8_t *r = d + off64;
        disk = io_rd32(r + 16);
        cd_disk = io_rd32(r + 20);
        n_disk = io_rd64(r + 24);
        n_total = io_rd64(r + 32);
        cd_size = io_rd64(r + 40);
        cd_off = io_rd64(r + 48);
    } else if (need64) {
        return io_err(err, errlen, "zip: zip64 end of central directory locator is missing");
    }
    if (disk != 0 || cd_disk != 0 || n_disk != n_total)
        return io_err(err, errlen, "zip: multi-disk archives are not supported");
    if (!io_range_ok(cd_off, cd_size, eocd))
        return io_err(err, errlen, "zip: central directory (offset %llu, size %llu) lies past the end of the file "
                      "(end record at %zu)", (unsigned long long)cd_off, (unsigned long long)cd_size, eocd);
    if (n_total > cd_size / 46)
        return io_err(err, errlen, "zip: central directory claims %llu entries but its %llu bytes hold at most %llu",
                      (unsigned long long)n_total, (unsigned long long)cd_size, (unsigned long long)(cd_size / 46));
    if (n_total > ZIP_MAX_ENTRIES)
        return io_err(err, errlen, "zip: %llu entries exceed the limit of %zu", (unsigned long long)n_total,
                      ZIP_MAX_ENTRIES);
    size_t n = (size_t)n_total;
    /* names total at most cd_size bytes, plus one NUL each */
    z->entries = malloc((n ? n : 1) * sizeof *z->entries);
    z->names = malloc((size_t)cd_size + n + 1);
    if (!z->entries || !z->names) {
        zip_close(z);
        return io_err(err, errlen, "zip: out of memory");
    }
    uint32_t table[256];
    crc_table(table);
    const uint8_t *cd = d + cd_off;
    size_t cd_len = (size_t)cd_size, p = 0, name_used = 0;
    char q[128];
    for (size_t i = 0; i < n; i++) {
        if (cd_len - p < 46) {
            io_err(err, errlen, "zip: central directory entry %zu is truncated", i);
            goto fail;
        }
        const uint8_t *c = cd + p;
        if (io_rd32(c) != SIG_CENTRAL) {
            io_err(err, errlen, "zip: central directory entry %zu has a bad signature", i);
            goto fail;
        }
        uint32_t flags = io_rd16(c + 8), method = io_rd16(c + 10), crc = io_rd32(c + 16);
        uint64_t csize = io_rd32(c + 20), usize = io_rd32(c + 24), loff = io_rd32(c + 42);
        size_t nlen = io_rd16(c + 28), xlen = io_rd16(c + 30), clen = io_rd16(c + 32);
        if (cd_len - p - 46 < nlen + xlen + clen) {
            io_err(err, errlen, "zip: central directory entry %zu is truncated", i);
            goto fail;
        }
        const char *name = (const char *)c + 46;
        if (check_name(name, nlen, i, err, errlen) != 0)
            goto fail;
        io_quote(q, sizeof q, name, nlen);
        /* zip64 extra field: the saturated fields, in order */
        const uint8_t *x = c + 46 + nlen, *xend = x + xlen;
        while (xend - x >= 4) {
            uint32_t id = io_rd16(x), len = io_rd16(x + 2);
            if ((size_t)(xend - x - 4) < len) {
                io_err(err, errlen, "zip: entry '%s' has a truncated extra field", q);
                goto fail;
            }
            if (id == 0x0001) {
                const uint8_t *y = x + 4, *yend = x + 4 + len;
                uint64_t *vals[3] = { &usize, &csize, &loff };
                for (int k = 0; k < 3; k++) {
                    if (*vals[k] != 0xffffffffu)
                        continue;
                    if (yend - y < 8) {
                        io_err(err, errlen, "zip: entry '%s' has a truncated zip64 extra field", q);
                        goto fail;
                    }
                    *vals[k] = io_rd64(y);
                    y += 8;
                }
            }
            x += 4 + len;
        }
        if (flags & 1) {
            io_err(err, errlen, "zip: entry '%s' is encrypted", q);
            goto fail;
        }
        if (method != 0) {
            io_err(err, errlen, "zip: entry '%s' is compressed (method %u); only stored entries are supported", q,
                   (unsigned)method);
            goto fail;
        }
        if (csize != usize) {
            io_err(err, errlen, "zip: stored entry '%s' has different compressed (%llu) and uncompressed (%llu) sizes",
                   q, (unsigned long long)csize, (unsigned long long)usize);
            goto fail;
        }
        if (!io_range_ok(loff, 30, size)) {
            io_err(err, errlen, "zip: central directory entry %zu points past the end of the file", i);
            goto fail;
        }
        const uint8_t *l = d + loff;
        if (io_rd32(l) != SIG_LOCAL) {
            io_err(err, errlen, "zip: entry '%s' has no local header at offset %llu", q, (unsigned long long)loff);
            goto fail;
        }
        size_t lnlen = io_rd16(l + 26), lxlen = io_rd16(l + 28);
        uint64_t doff = loff + 30 + lnlen + lxlen;   /* loff + 30 <= size, no overflow */
        if (lnlen != nlen || !io_range_ok(loff + 30, lnlen, size) || memcmp(l + 30, name, nlen) != 0) {
            io_err(err, errlen, "zip: entry '%s' local header name does not match the central directory", q);
            goto fail;
        }
        if (!io_range_ok(doff, usize, size)) {
            io_err(err, errlen, "zip: entry '%s' data (offset %llu, %llu bytes) runs past the end of the file (size %zu)",
                   q, (unsigned long long)doff, (unsigned long long)usize, size);
            goto fail;
        }
        uint32_t got = crc32_buf(table, d + doff, (size_t)usize);
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
        got = crc;   /* fuzz builds only (fuzz/meson.build): let mutated entries reach the unpickler */
#endif
        if (got != crc) {
            io_err(err, errlen, "zip: entry '%s' fails its CRC-32 check (stored %08x, computed %08x)", q, crc, got);
            goto fail;
        }
        memcpy(z->names + name_used, name, nlen);
        z->names[name_used + nlen] = '\0';
        z->entries[i].name = z->names + name_used;
        z->entries[i].data = d + doff;
        z->entries[i].size = (size_t)usize;
        name_used += nlen + 1;
        p += 46 + nlen + xlen + clen;
    }
    z->count = n;
    qsort(z->entries, n, sizeof *z->entries, cmp_entry);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(z->entries[i - 1].name, z->entries[i].name) == 0) {
            io_err(err, errlen, "zip: duplicate entry name '%s'",
                   io_quote(q, sizeof q, z->entries[i].name, strlen(z->entries[i].name)));
            goto fail;
        }
    }
    return 0;
fail:
    zip_close(z);
    return -1;
}

const zip_entry *zip_find(const zip_archive *z, const char *name)
{
    if (!z || !z->count || !name)
        return NULL;
    zip_entry key = { name, NULL, 0 };
    return bsearch(&key, z->entries, z->count, sizeof *z->entries, cmp_entry);
}

void zip_close(zip_archive *z)
{
    if (!z)
        return;
    free(z->entries);
    free(z->names);
    memset(z, 0, sizeof *z);
}
