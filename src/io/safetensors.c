/* safetensors.c — the safetensors format: 8-byte little-endian header length, a JSON header, then the data area.
 * The JSON is read by a small strict parser (UTF-8 checked, depth-limited); every range is checked. */
#include "io/ioutil.h"
#include "io/tensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)
#define JSON_MAX_DEPTH 64

typedef struct jp {
    const char *s;
    size_t n, pos;
    char *err;
    size_t errlen;
} jp;

static int jfail(jp *j, const char *what)
{
    if (j->pos >= j->n)
        return io_err(j->err, j->errlen, "safetensors: JSON header ends unexpectedly at byte %zu (truncated)", j->pos);
    return io_err(j->err, j->errlen, "safetensors: invalid JSON header at byte %zu: %s", j->pos, what);
}

static void ws(jp *j)
{
    while (j->pos < j->n && (j->s[j->pos] == ' ' || j->s[j->pos] == '\t' || j->s[j->pos] == '\n' ||
                             j->s[j->pos] == '\r'))
        j->pos++;
}

static int peek(jp *j)
{
    ws(j);
    return j->pos < j->n ? (unsigned char)j->s[j->pos] : -1;
}

static int expect(jp *j, char c)
{
    if (peek(j) != (unsigned char)c) {
        char m[32];
        snprintf(m, sizeof m, "expected '%c'", c);
        return jfail(j, m);
    }
    j->pos++;
    return 0;
}

/* Byte offset of the first invalid UTF-8 sequence, or n if the text is valid. */
static size_t utf8_check(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return i;
        }
        if (n - i < len)
            return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return i;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += len;
    }
    return n;
}

static int hex4(jp *j, uint32_t *v)
{
    if (j->n - j->pos < 4)
        return jfail(j, "truncated \\u escape");
    *v = 0;
    for (int k = 0; k < 4; k++) {
        char c = j->s[j->pos + (size_t)k];
        uint32_t d;
        if (c >= '0' && c <= '9')
            d = (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (uint32_t)(c - 'A' + 10);
        else
            return jfail(j, "bad \\u escape");
        *v = (*v << 4) | d;
    }
    j->pos += 4;
    return 0;
}

/* Reads a string at pos. Decodes into buf (cap bytes incl. NUL; buf may be NULL); *len is the full decoded length
 * (it may exceed cap-1, then buf holds a prefix). */
static int jstring(jp *j, char *buf, size_t cap, size_t *len)
{
    if (expect(j, '"') != 0)
        return -1;
    size_t o = 0;
    for (;;) {
        if (j->pos >= j->n)
            return jfail(j, "unterminated string");
        unsigned char c = (unsigned char)j->s[j->pos++];
        char tmp[4];
        size_t tn = 1;
        if (c == '"')
            break;
        if (c < 0x20) {
            j->pos--;
            return jfail(j, "control character in string");
        }
        if (c != '\\') {
            tmp[0] = (char)c;
        } else {
            if (j->pos >= j->n)
                return jfail(j, "unterminated string");
            char e = j->s[j->pos++];
            switch (e) {
            case '"': tmp[0] = '"'; break;
            case '\\': tmp[0] = '\\'; break;
            case '/': tmp[0] = '/'; break;
            case 'b': tmp[0] = '\b'; break;
            case 'f': tmp[0] = '\f'; break;
            case 'n': tmp[0] = '\n'; break;
            case 'r': tmp[0] = '\r'; break;
            case 't': tmp[0] = '\t'; break;
            case 'u': {
                uint32_t cp;
                if (hex4(j, &cp) != 0)
                    return -1;
                if (cp >= 0xdc00 && cp <= 0xdfff)
                    return jfail(j, "unpaired low surrogate");
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    uint32_t lo;
                    if (j->n - j->pos < 2 || j->s[j->pos] != '\\' || j->s[j->pos + 1] != 'u')
                        return jfail(j, "unpaired high surrogate");
                    j->pos += 2;
                    if (hex4(j, &lo) != 0)
                        return -1;
                    if (lo < 0xdc00 || lo > 0xdfff)
                        return jfail(j, "unpaired high surrogate");
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
                if (cp < 0x80) {
                    tmp[0] = (char)cp;
                } else if (cp < 0x800) {
                    tmp[0] = (char)(0xc0 | (cp >> 6));
                    tmp[1] = (char)(0x80 | (cp & 0x3f));
                    tn = 2;
                } else if (cp < 0x10000) {
                    tmp[0] = (char)(0xe0 | (cp >> 12));
                    tmp[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
                    tmp[2] = (char)(0x80 | (cp & 0x3f));
                    tn = 3;
                } else {
                    tmp[0] = (char)(0xf0 | (cp >> 18));
                    tmp[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
                    tmp[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
                    tmp[3] = (char)(0x80 | (cp & 0x3f));
                    tn = 4;
                }
                break;
            }
            default:
                j->pos--;
                return jfail(j, "bad escape in string");
            }
        }
        for (size_t k = 0; k < tn; k++, o++)
            if (buf && o + 1 < cap)
                buf[o] = tmp[k];
    }
    if (buf && cap)
        buf[o < cap ? o : cap - 1] = '\0';
    *len = o;
    return 0;
}

/* Reads a number; *is_uint set (and *v) when it is a plain non-negative integer that fits in 62 bits. */
static int jnumber(jp *j, uint64_t *v, int *is_uint)
{
    ws(j);
    size_t p = j->pos;
    const char *s = j->s;
    int plain = 1;
    uint64_t acc = 0;
    if (p < j->n && s[p] == '-') {
        plain = 0;
        p++;
    }
    if (p >= j->n || s[p] < '0' || s[p] > '9')
        return jfail(j, "expected a number");
    if (s[p] == '0') {
        p++;
    } else {
        while (p < j->n && s[p] >= '0' && s[p] <= '9') {
            if (acc > ((uint64_t)1 << 62) / 10)
                plain = 0;
            else
                acc = acc * 10 + (uint64_t)(s[p] - '0');
            p++;
        }
    }
    if (p < j->n && s[p] == '.') {
        plain = 0;
        p++;
        if (p >= j->n || s[p] < '0' || s[p] > '9') {
            j->pos = p;
            return jfail(j, "bad number");
        }
        while (p < j->n && s[p] >= '0' && s[p] <= '9')
            p++;
    }
    if (p < j->n && (s[p] == 'e' || s[p] == 'E')) {
        plain = 0;
        p++;
        if (p < j->n && (s[p] == '+' || s[p] == '-'))
            p++;
        if (p >= j->n || s[p] < '0' || s[p] > '9') {
            j->pos = p;
            return jfail(j, "bad number");
        }
        while (p < j->n && s[p] >= '0' && s[p] <= '9')
            p++;
    }
    if (acc > ((uint64_t)1 << 62))
        plain = 0;
    j->pos = p;
    *v = acc;
    *is_uint = plain;
    return 0;
}

static int jskip(jp *j, int depth)
{
    if (depth > JSON_MAX_DEPTH)
        return io_err(j->err, j->errlen, "safetensors: JSON nesting depth limit exceeded (%d)", JSON_MAX_DEPTH);
    int c = peek(j);
    size_t len;
    uint64_t v;
    int u;
    switch (c) {
    case '"':
        return jstring(j, NULL, 0, &len);
    case '{':
        j->pos++;
        if (peek(j) == '}') {
            j->pos++;
            return 0;
        }
        for (;;) {
            if (jstring(j, NULL, 0, &len) != 0 || expect(j, ':') != 0 || jskip(j, depth + 1) != 0)
                return -1;
            c = peek(j);
            j->pos++;
            if (c == '}')
                return 0;
            if (c != ',') {
                j->pos--;
                return jfail(j, "expected ',' or '}'");
            }
        }
    case '[':
        j->pos++;
        if (peek(j) == ']') {
            j->pos++;
            return 0;
        }
        for (;;) {
            if (jskip(j, depth + 1) != 0)
                return -1;
            c = peek(j);
            j->pos++;
            if (c == ']')
                return 0;
            if (c != ',') {
                j->pos--;
                return jfail(j, "expected ',' or ']'");
            }
        }
    case 't':
    case 'f':
    case 'n': {
        const char *lit = c == 't' ? "true" : c == 'f' ? "false" : "null";
        size_t l = strlen(lit);
        if (j->n - j->pos < l || memcmp(j->s + j->pos, lit, l) != 0)
            return jfail(j, "bad literal");
        j->pos += l;
        return 0;
    }
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return jnumber(j, &v, &u);
        return jfail(j, "expected a value");
    }
}

typedef struct st_range {
    uint64_t begin, end;
    int idx;
} st_range;

/* Reads a JSON array of at most max plain non-negative integers. */
static int juint_array(jp *j, const char *tname, const char *field, uint64_t *v, int max, int *n)
{
    char q[96];
    if (expect(j, '[') != 0)
        return -1;
    *n = 0;
    if (peek(j) == ']') {
        j->pos++;
        return 0;
    }
    for (;;) {
        uint64_t x;
        int plain;
        if (jnumber(j, &x, &plain) != 0)
            return -1;
        if (!plain)
            return io_err(j->err, j->errlen, "safetensors: tensor '%s' field '%s' must hold non-negative integers",
                          io_quote(q, sizeof q, tname, strlen(tname)), field);
        if (*n >= max)
            return io_err(j->err, j->errlen, "safetensors: tensor '%s' field '%s' has more than %d entries%s",
                          io_quote(q, sizeof q, tname, strlen(tname)), field, max,
                          max == TT_MAX_DIMS ? " (at most 4 dimensions supported)" : "");
        v[(*n)++] = x;
        int c = peek(j);
        j->pos++;
        if (c == ']')
            return 0;
        if (c != ',') {
            j->pos--;
            return jfail(j, "expected ',' or ']'");
        }
    }
}

/* Parses one tensor entry object into t and its byte range. */
static int parse_entry(jp *j, tt_tensor *t, st_range *r, size_t data_size)
{
    char q[96];
    io_quote(q, sizeof q, t->name, strlen(t->name));
    if (peek(j) != '{')
        return io_err(j->err, j->errlen, "safetensors: entry '%s' is not an object", q);
    j->pos++;
    int have_dtype = 0, have_shape = 0, have_offsets = 0;
    char dtype[24] = "";
    size_t dtype_len = 0;
    uint64_t shape[TT_MAX_DIMS], offs[2];
    int nshape = 0, noffs = 0;
    if (peek(j) == '}') {
        j->pos++;
    } else {
        for (;;) {
            char key[24];
            size_t klen;
            if (jstring(j, key, sizeof key, &klen) != 0 || expect(j, ':') != 0)
                return -1;
            int *have = NULL;
            if (klen == 5 && strcmp(key, "dtype") == 0)
                have = &have_dtype;
            else if (klen == 5 && strcmp(key, "shape") == 0)
                have = &have_shape;
            else if (klen == 12 && strcmp(key, "data_offsets") == 0)
                have = &have_offsets;
            if (have && *have)
                return io_err(j->err, j->errlen, "safetensors: tensor '%s' has field '%s' twice", q, key);
            if (have == &have_dtype) {
                if (peek(j) != '"')
                    return io_err(j->err, j->errlen, "safetensors: tensor '%s' dtype is not a string", q);
                if (jstring(j, dtype, sizeof dtype, &dtype_len) != 0)
                    return -1;
            } else if (have == &have_shape) {
                if (juint_array(j, t->name, "shape", shape, TT_MAX_DIMS, &nshape) != 0)
                    return -1;
            } else if (have == &have_offsets) {
                if (juint_array(j, t->name, "data_offsets", offs, 2, &noffs) != 0)
                    return -1;
                if (noffs != 2)
                    return io_err(j->err, j->errlen, "safetensors: tensor '%s' data_offsets must have 2 entries", q);
            } else if (jskip(j, 2) != 0) {
                return -1;
            }
            if (have)
                *have = 1;
            int c = peek(j);
            j->pos++;
            if (c == '}')
                break;
            if (c != ',') {
                j->pos--;
                return jfail(j, "expected ',' or '}'");
            }
        }
    }
    if (!have_dtype || !have_shape || !have_offsets)
        return io_err(j->err, j->errlen, "safetensors: tensor '%s' lacks '%s'", q,
                      !have_dtype ? "dtype" : !have_shape ? "shape" : "data_offsets");
    char qd[32];
    if (dtype_len == 3 && strcmp(dtype, "F32") == 0)
        t->dtype = TT_F32;
    else if (dtype_len == 3 && strcmp(dtype, "F16") == 0)
        t->dtype = TT_F16;
    else if (dtype_len == 4 && strcmp(dtype, "BF16") == 0)
        t->dtype = TT_BF16;
    else
        return io_err(j->err, j->errlen, "safetensors: tensor '%s' has dtype '%s' (only F32, F16 and BF16 are "
                      "supported)", q, io_quote(qd, sizeof qd, dtype, dtype_len < sizeof dtype ? dtype_len : sizeof dtype - 1));
    uint64_t numel = 1;
    for (int i = 0; i < nshape; i++) {
        if (shape[i] && numel > (uint64_t)(INT64_MAX / 8) / shape[i])
            return io_err(j->err, j->errlen, "safetensors: tensor '%s' element count overflows", q);
        numel *= shape[i];
    }
    t->ndim = nshape;
    for (int i = 0; i < nshape; i++)
        t->shape[i] = (int64_t)shape[i];
    t->numel = (int64_t)numel;
    uint64_t need = numel * io_dtype_size(t->dtype);
    if (offs[1] < offs[0])
        return io_err(j->err, j->errlen, "safetensors: tensor '%s' data_offsets [%llu, %llu] end before they begin", q,
                      (unsigned long long)offs[0], (unsigned long long)offs[1]);
    if (offs[1] - offs[0] != need)
        return io_err(j->err, j->errlen, "safetensors: tensor '%s' has %llu bytes of data but its shape needs %llu",
                      q, (unsigned long long)(offs[1] - offs[0]), (unsigned long long)need);
    if (offs[1] > data_size)
        return io_err(j->err, j->errlen, "safetensors: tensor '%s' data range [%llu, %llu] is past the end of the "
                      "data area (%zu bytes)", q, (unsigned long long)offs[0], (unsigned long long)offs[1], data_size);
    r->begin = offs[0];
    r->end = offs[1];
    return 0;
}

static int cmp_range(const void *a, const void *b)
{
    const st_range *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return x->idx - y->idx;
}

int io_load_safetensors(const uint8_t *blob, size_t size, tt_tensor **out, int *count, char *err, size_t errlen)
{
    *out = NULL;
    *count = 0;
    if (size < 8)
        return io_err(err, errlen, "safetensors: file is too short (%zu bytes)", size);
    uint64_t hlen = io_rd64(blob);
    if (hlen > size - 8)
        return io_err(err, errlen, "safetensors: header length %llu is past the end of the file (size %zu)",
                      (unsigned long long)hlen, size);
    if (hlen > ST_MAX_HEADER)
        return io_err(err, errlen, "safetensors: header length %llu exceeds the limit of %llu bytes",
                      (unsigned long long)hlen, (unsigned long long)ST_MAX_HEADER);
    size_t bad = utf8_check(blob + 8, (size_t)hlen);
    if (bad != hlen)
        return io_err(err, errlen, "safetensors: JSON header is not valid UTF-8 (byte %zu)", bad);
    const uint8_t *data = blob + 8 + hlen;
    size_t data_size = size - 8 - (size_t)hlen;
    jp j = { (const char *)blob + 8, (size_t)hlen, 0, err, errlen };
    tt_tensor *ts = NULL;
    st_range *rs = NULL;
    size_t n = 0, cap = 0;
    int rc = -1;
    if (expect(&j, '{') != 0)
        goto done;
    if (peek(&j) == '}') {
        j.pos++;
    } else {
        for (;;) {
            char name[TT_NAME_MAX];
            size_t nlen;
            if (peek(&j) != '"') {
                jfail(&j, "expected a string key");
                goto done;
            }
            if (jstring(&j, name, sizeof name, &nlen) != 0 || expect(&j, ':') != 0)
                goto done;
            char q[96];
            if (nlen >= TT_NAME_MAX || memchr(name, '\0', nlen)) {
                io_err(err, errlen, "safetensors: tensor name '%s' is longer than %d bytes or has a NUL byte",
                       io_quote(q, sizeof q, name, nlen < TT_NAME_MAX ? nlen : TT_NAME_MAX - 1), TT_NAME_MAX - 1);
                goto done;
            }
            if (strcmp(name, "__metadata__") == 0) {
                if (peek(&j) != '{') {
                    io_err(err, errlen, "safetensors: __metadata__ is not an object");
                    goto done;
                }
                if (jskip(&j, 1) != 0)
                    goto done;
            } else {
                if (n == IO_MAX_TENSORS) {
                    io_err(err, errlen, "safetensors: more than %d tensors", IO_MAX_TENSORS);
                    goto done;
                }
                if (n == cap) {
                    size_t nc = cap ? cap * 2 : 64;
                    tt_tensor *t2 = realloc(ts, nc * sizeof *t2);
                    if (t2)
                        ts = t2;
                    st_range *r2 = realloc(rs, nc * sizeof *r2);
                    if (r2)
                        rs = r2;
                    if (!t2 || !r2) {
                        io_err(err, errlen, "safetensors: out of memory");
                        goto done;
                    }
                    cap = nc;
                }
                tt_tensor *t = &ts[n];
                memset(t, 0, sizeof *t);
                memcpy(t->name, name, nlen + 1);
                if (parse_entry(&j, t, &rs[n], data_size) != 0)
                    goto done;
                t->data = data + rs[n].begin;
                rs[n].idx = (int)n;
                n++;
            }
            int c = peek(&j);
            j.pos++;
            if (c == '}')
                break;
            if (c != ',') {
                j.pos--;
                jfail(&j, "expected ',' or '}'");
                goto done;
            }
        }
    }
    ws(&j);
    if (j.pos != j.n) {
        io_err(err, errlen, "safetensors: unexpected data after the JSON header at byte %zu", j.pos);
        goto done;
    }
    /* no two non-empty ranges may overlap */
    if (n > 1) {
        qsort(rs, n, sizeof *rs, cmp_range);
        uint64_t max_end = 0;
        int owner = -1;
        for (size_t i = 0; i < n; i++) {
            if (rs[i].begin == rs[i].end)
                continue;
            if (owner >= 0 && rs[i].begin < max_end) {
                char q1[96], q2[96];
                io_err(err, errlen, "safetensors: tensors '%s' and '%s' have overlapping data ranges",
                       io_quote(q1, sizeof q1, ts[owner].name, strlen(ts[owner].name)),
                       io_quote(q2, sizeof q2, ts[rs[i].idx].name, strlen(ts[rs[i].idx].name)));
                goto done;
            }
            if (rs[i].end > max_end) {
                max_end = rs[i].end;
                owner = rs[i].idx;
            }
        }
    }
    rc = 0;
    *out = ts;
    *count = (int)n;
    ts = NULL;
done:
    free(ts);
    free(rs);
    return rc;
}
