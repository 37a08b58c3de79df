/* unpickle.c — restricted pickle stack machine (protocols 2..5) producing tt_tensor records. */
#include "io/unpickle.h"
#include "io/ioutil.h"
#include "io/tensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { K_NONE, K_BOOL, K_INT, K_FLOAT, K_STR, K_TUPLE, K_LIST, K_DICT, K_GLOBAL, K_STORAGE, K_TENSOR };
enum glob { G_ORDERED_DICT, G_REBUILD_TENSOR, G_HALF_STORAGE, G_FLOAT_STORAGE, G_BF16_STORAGE };
static const char *const glob_names[] = { "collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
                                          "torch.HalfStorage", "torch.FloatStorage", "torch.BFloat16Storage" };

typedef struct obj obj;
struct obj {
    int kind;
    int depth;     /* nesting depth (containers) */
    int ordered;   /* dict made by OrderedDict() */
    union {
        int64_t i;
        double f;
        struct { char *s; size_t n; } str;
        struct { obj **v; size_t n, cap; } seq;   /* tuple, list; dict as key,value pairs */
        int glob;
        struct { int dtype; const uint8_t *data; size_t size; int64_t numel; char *key; } st;
        struct { obj *storage; int64_t offset; int ndim; int64_t shape[TT_MAX_DIMS], stride[TT_MAX_DIMS]; } t;
    } u;
};

typedef struct up {
    const uint8_t *p;
    size_t n, pos, op_pos;
    uint8_t op;
    obj **objs;
    size_t nobj, capobj;
    obj **stack;
    size_t sp, capstack;
    size_t marks[UNPICKLE_MAX_MARKS];
    size_t nmarks;
    obj **memo;
    size_t capmemo, nmemo;   /* nmemo: entries set (what MEMOIZE uses as the next index) */
    size_t items;
    unpickle_storage_fn storage;
    void *ctx;
    char *err;
    size_t errlen;
} up;

static int fail_at(up *u, const char *what)
{
    char opname[8];
    if (u->op >= 0x20 && u->op < 0x7f)
        snprintf(opname, sizeof opname, "'%c'", u->op);
    else
        snprintf(opname, sizeof opname, "0x%02x", u->op);
    return io_err(u->err, u->errlen, "pickle: %s at offset %zu (opcode %s)", what, u->op_pos, opname);
}

static obj *new_obj(up *u, int kind)
{
    if (u->nobj >= UNPICKLE_MAX_OBJECTS) {
        io_err(u->err, u->errlen, "pickle: object count limit exceeded (%zu)", UNPICKLE_MAX_OBJECTS);
        return NULL;
    }
    if (u->nobj == u->capobj) {
        size_t nc = u->capobj ? u->capobj * 2 : 256;
        obj **v = realloc(u->objs, nc * sizeof *v);
        if (!v) {
            io_err(u->err, u->errlen, "pickle: out of memory");
            return NULL;
        }
        u->objs = v;
        u->capobj = nc;
    }
    obj *o = calloc(1, sizeof *o);
    if (!o) {
        io_err(u->err, u->errlen, "pickle: out of memory");
        return NULL;
    }
    o->kind = kind;
    u->objs[u->nobj++] = o;
    return o;
}

static void free_all(up *u)
{
    for (size_t i = 0; i < u->nobj; i++) {
        obj *o = u->objs[i];
        if (o->kind == K_STR)
            free(o->u.str.s);
        else if (o->kind == K_TUPLE || o->kind == K_LIST || o->kind == K_DICT)
            free(o->u.seq.v);
        else if (o->kind == K_STORAGE)
            free(o->u.st.key);
        free(o);
    }
    free(u->objs);
    free(u->stack);
    free(u->memo);
}

static int push(up *u, obj *o)
{
    if (!o)
        return -1;
    if (u->sp >= UNPICKLE_MAX_STACK)
        return io_err(u->err, u->errlen, "pickle: stack size limit exceeded (%d items)", UNPICKLE_MAX_STACK);
    if (u->sp == u->capstack) {
        size_t nc = u->capstack ? u->capstack * 2 : 64;
        obj **v = realloc(u->stack, nc * sizeof *v);
        if (!v)
            return io_err(u->err, u->errlen, "pickle: out of memory");
        u->stack = v;
        u->capstack = nc;
    }
    u->stack[u->sp++] = o;
    return 0;
}

static int need_stack(up *u, size_t k)
{
    if (u->sp < k)
        return fail_at(u, "stack underflow");
    if (u->nmarks && u->sp - k < u->marks[u->nmarks - 1])
        return fail_at(u, "stack underflow (past a MARK)");
    return 0;
}

static int pop_mark(up *u, size_t *k)
{
    if (!u->nmarks)
        return fail_at(u, "no MARK on the stack");
    *k = u->marks[--u->nmarks];
    return 0;
}

static int bump_depth(up *u, obj *c, const obj *child)
{
    if (child->depth + 1 > c->depth)
        c->depth = child->depth + 1;
    if (c->depth > UNPICKLE_MAX_DEPTH)
        return io_err(u->err, u->errlen, "pickle: nesting depth limit exceeded (%d)", UNPICKLE_MAX_DEPTH);
    return 0;
}

/* Appends k objects to a container's item array. */
static int seq_add(up *u, obj *c, obj *const *items, size_t k)
{
    if (k > UNPICKLE_MAX_ITEMS - u->items)
        return io_err(u->err, u->errlen, "pickle: container item limit exceeded (%zu)", UNPICKLE_MAX_ITEMS);
    if (c->u.seq.n + k > c->u.seq.cap) {
        size_t nc = c->u.seq.cap ? c->u.seq.cap : 4;
        while (nc < c->u.seq.n + k)
            nc *= 2;
        obj **v = realloc(c->u.seq.v, nc * sizeof *v);
        if (!v)
            return io_err(u->err, u->errlen, "pickle: out of memory");
        c->u.seq.v = v;
        c->u.seq.cap = nc;
    }
    for (size_t i = 0; i < k; i++) {
        if (bump_depth(u, c, items[i]) != 0)
            return -1;
        c->u.seq.v[c->u.seq.n++] = items[i];
    }
    u->items += k;
    return 0;
}

/* Replaces stack[k..sp) by a new container of those items. */
static int collapse(up *u, size_t k, int kind)
{
    obj *c = new_obj(u, kind);
    if (!c || (u->sp > k && seq_add(u, c, u->stack + k, u->sp - k) != 0))
        return -1;
    u->sp = k;
    return push(u, c);
}

static int rd(up *u, size_t k, const uint8_t **p)
{
    if (u->n - u->pos < k)
        return fail_at(u, "data ends inside an opcode (truncated)");
    *p = u->p + u->pos;
    u->pos += k;
    return 0;
}

static int push_str(up *u, size_t len)
{
    const uint8_t *p;
    if (u->n - u->pos < len)
        return fail_at(u, "string runs past the end of the data");
    if (rd(u, len, &p) != 0)
        return -1;
    obj *o = new_obj(u, K_STR);
    if (!o)
        return -1;
    o->u.str.s = malloc(len + 1);
    if (!o->u.str.s)
        return io_err(u->err, u->errlen, "pickle: out of memory");
    memcpy(o->u.str.s, p, len);
    o->u.str.s[len] = '\0';
    o->u.str.n = len;
    return push(u, o);
}

static int push_int(up *u, int64_t v)
{
    obj *o = new_obj(u, K_INT);
    if (!o)
        return -1;
    o->u.i = v;
    return push(u, o);
}

static int memo_put(up *u, size_t idx)
{
    if (u->sp == 0 || (u->nmarks && u->sp == u->marks[u->nmarks - 1]))
        return fail_at(u, "memo store with an empty stack");
    if (idx >= UNPICKLE_MAX_MEMO)
        return io_err(u->err, u->errlen, "pickle: memo limit exceeded (index %zu, at most %u)", idx,
                      UNPICKLE_MAX_MEMO);
    if (idx >= u->capmemo) {
        size_t nc = u->capmemo ? u->capmemo : 64;
        while (nc <= idx)
            nc *= 2;
        obj **v = realloc(u->memo, nc * sizeof *v);
        if (!v)
            return io_err(u->err, u->errlen, "pickle: out of memory");
        memset(v + u->capmemo, 0, (nc - u->capmemo) * sizeof *v);
        u->memo = v;
        u->capmemo = nc;
    }
    if (!u->memo[idx])
        u->nmemo++;
    u->memo[idx] = u->stack[u->sp - 1];
    return 0;
}

static int memo_get(up *u, size_t idx)
{
    if (idx >= u->capmemo || !u->memo[idx]) {
        char m[64];
        snprintf(m, sizeof m, "memo slot %zu read before it was set", idx);
        return fail_at(u, m);
    }
    return push(u, u->memo[idx]);
}

static int global(up *u, const char *mod, size_t mlen, const char *name, size_t nlen)
{
    static const struct { const char *m, *n; int g; } allowed[] = {
        { "collections", "OrderedDict", G_ORDERED_DICT },
        { "torch._utils", "_rebuild_tensor_v2", G_REBUILD_TENSOR },
        { "torch", "HalfStorage", G_HALF_STORAGE },
        { "torch", "FloatStorage", G_FLOAT_STORAGE },
        { "torch", "BFloat16Storage", G_BF16_STORAGE },
    };
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        if (strlen(allowed[i].m) == mlen && memcmp(allowed[i].m, mod, mlen) == 0 && strlen(allowed[i].n) == nlen &&
            memcmp(allowed[i].n, name, nlen) == 0) {
            obj *o = new_obj(u, K_GLOBAL);
            if (!o)
                return -1;
            o->u.glob = allowed[i].g;
            return push(u, o);
        }
    }
    char qm[80], qn[80];
    io_quote(qm, sizeof qm, mod, mlen);
    io_quote(qn, sizeof qn, name, nlen);
    if (mlen == 5 && memcmp(mod, "torch", 5) == 0 && nlen > 7 && memcmp(name + nlen - 7, "Storage", 7) == 0)
        return io_err(u->err, u->errlen, "pickle: storage type 'torch.%s' is not supported (HalfStorage, "
                      "FloatStorage and BFloat16Storage only)", qn);
    return io_err(u->err, u->errlen, "pickle: forbidden global '%s.%s' (only collections.OrderedDict, "
                  "torch._utils._rebuild_tensor_v2 and torch.*Storage are allowed)", qm, qn);
}

static int int_tuple(const obj *o, int64_t *v, int max, int *n)
{
    if (o->kind != K_TUPLE || o->u.seq.n > (size_t)max)
        return -1;
    for (size_t i = 0; i < o->u.seq.n; i++) {
        if (o->u.seq.v[i]->kind != K_INT)
            return -1;
        v[i] = o->u.seq.v[i]->u.i;
    }
    *n = (int)o->u.seq.n;
    return 0;
}

static int reduce(up *u)
{
    if (need_stack(u, 2) != 0)
        return -1;
    obj *args = u->stack[u->sp - 1], *fn = u->stack[u->sp - 2];
    u->sp -= 2;
    if (fn->kind != K_GLOBAL)
        return fail_at(u, "REDUCE on an object that is not an allowed callable");
    if (args->kind != K_TUPLE)
        return fail_at(u, "REDUCE arguments are not a tuple");
    obj **a = args->u.seq.v;
    size_t na = args->u.seq.n;
    if (fn->u.glob == G_ORDERED_DICT) {
        if (na != 0)
            return fail_at(u, "OrderedDict() with arguments is not supported");
        obj *d = new_obj(u, K_DICT);
        if (!d)
            return -1;
        d->ordered = 1;
        return push(u, d);
    }
    if (fn->u.glob != G_REBUILD_TENSOR) {
        char m[96];
        snprintf(m, sizeof m, "REDUCE on '%s' is not allowed", glob_names[fn->u.glob]);
        return fail_at(u, m);
    }
    /* _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) */
    if (na != 6 && na != 7)
        return fail_at(u, "_rebuild_tensor_v2 takes 6 or 7 arguments");
    if (a[0]->kind != K_STORAGE)
        return fail_at(u, "_rebuild_tensor_v2 argument 1 is not a storage");
    if (a[1]->kind != K_INT)
        return fail_at(u, "_rebuild_tensor_v2 storage offset is not an integer");
    obj *t = new_obj(u, K_TENSOR);
    if (!t)
        return -1;
    int nst = 0;
    if (a[2]->kind == K_TUPLE && a[2]->u.seq.n > TT_MAX_DIMS) {
        char m[96];
        snprintf(m, sizeof m, "tensor has %zu dimensions (at most %d supported)", a[2]->u.seq.n, TT_MAX_DIMS);
        return fail_at(u, m);
    }
    if (int_tuple(a[2], t->u.t.shape, TT_MAX_DIMS, &t->u.t.ndim) != 0)
        return fail_at(u, "_rebuild_tensor_v2 size is not a tuple of integers");
    if (int_tuple(a[3], t->u.t.stride, TT_MAX_DIMS, &nst) != 0 || nst != t->u.t.ndim)
        return fail_at(u, "_rebuild_tensor_v2 stride is not a tuple of integers matching the size");
    t->u.t.storage = a[0];
    t->u.t.offset = a[1]->u.i;
    t->depth = 1;
    return push(u, t);
}

static int persid(up *u)
{
    if (need_stack(u, 1) != 0)
        return -1;
    obj *pid = u->stack[--u->sp];
    if (pid->kind != K_TUPLE || pid->u.seq.n != 5)
        return fail_at(u, "persistent id is not a 5-tuple ('storage', type, key, location, numel)");
    obj **a = pid->u.seq.v;
    if (a[0]->kind != K_STR || strcmp(a[0]->u.str.s, "storage") != 0 || a[0]->u.str.n != 7)
        return fail_at(u, "persistent id does not start with 'storage'");
    if (a[1]->kind != K_GLOBAL || a[1]->u.glob < G_HALF_STORAGE)
        return fail_at(u, "persistent id storage type is not a storage class");
    if (a[2]->kind != K_STR || a[3]->kind != K_STR)
        return fail_at(u, "persistent id key or location is not a string");
    if (a[4]->kind != K_INT || a[4]->u.i < 0)
        return fail_at(u, "persistent id element count is not a non-negative integer");
    int dtype = a[1]->u.glob == G_HALF_STORAGE ? TT_F16 : a[1]->u.glob == G_FLOAT_STORAGE ? TT_F32 : TT_BF16;
    obj *s = new_obj(u, K_STORAGE);
    if (!s)
        return -1;
    s->u.st.key = malloc(a[2]->u.str.n + 1);
    if (!s->u.st.key)
        return io_err(u->err, u->errlen, "pickle: out of memory");
    memcpy(s->u.st.key, a[2]->u.str.s, a[2]->u.str.n + 1);
    s->u.st.dtype = dtype;
    s->u.st.numel = a[4]->u.i;
    if (u->storage(u->ctx, a[2]->u.str.s, a[2]->u.str.n, &s->u.st.data, &s->u.st.size, u->err, u->errlen) != 0)
        return -1;
    size_t bytes;
    char q[64];
    io_quote(q, sizeof q, a[2]->u.str.s, a[2]->u.str.n);
    if ((uint64_t)a[4]->u.i > SIZE_MAX || io_mul((size_t)a[4]->u.i, io_dtype_size(dtype), &bytes) != 0 ||
        bytes > s->u.st.size)
        return io_err(u->err, u->errlen, "pickle: storage '%s' declares %lld %s elements but its data entry holds "
                      "only %zu bytes", q, (long long)a[4]->u.i, tt_dtype_name((tt_dtype)dtype), s->u.st.size);
    return push(u, s);
}

static int run(up *u)
{
    for (;;) {
        if (u->pos >= u->n)
            return io_err(u->err, u->errlen, "pickle: data ends without STOP (truncated)");
        u->op_pos = u->pos;
        u->op = u->p[u->pos++];
        const uint8_t *a = NULL;
        size_t k = 0;
        switch (u->op) {
        case 0x80: /* PROTO */
            if (rd(u, 1, &a) != 0)
                return -1;
            if (a[0] < 2 || a[0] > 5) {
                char m[64];
                snprintf(m, sizeof m, "protocol %u not supported (2 to 5)", a[0]);
                return fail_at(u, m);
            }
            break;
        case 0x95: /* FRAME */
            if (rd(u, 8, &a) != 0)
                return -1;
            if (io_rd64(a) > u->n - u->pos)
                return fail_at(u, "frame runs past the end of the data");
            break;
        case '.': /* STOP */
            if (u->sp == 0)
                return fail_at(u, "STOP with an empty stack");
            return 0;
        case '(': /* MARK */
            if (u->nmarks >= UNPICKLE_MAX_MARKS)
                return io_err(u->err, u->errlen, "pickle: MARK nesting limit exceeded (%d)", UNPICKLE_MAX_MARKS);
            u->marks[u->nmarks++] = u->sp;
            break;
        case '}': /* EMPTY_DICT */
            if (push(u, new_obj(u, K_DICT)) != 0)
                return -1;
            break;
        case ')': /* EMPTY_TUPLE */
            if (push(u, new_obj(u, K_TUPLE)) != 0)
                return -1;
            break;
        case ']': /* EMPTY_LIST */
            if (push(u, new_obj(u, K_LIST)) != 0)
                return -1;
            break;
        case 't': /* TUPLE */
        case 'l': /* LIST */
            if (pop_mark(u, &k) != 0 || collapse(u, k, u->op == 't' ? K_TUPLE : K_LIST) != 0)
                return -1;
            break;
        case 'd': /* DICT */
            if (pop_mark(u, &k) != 0)
                return -1;
            if ((u->sp - k) % 2)
                return fail_at(u, "DICT with an odd number of items");
            if (collapse(u, k, K_DICT) != 0)
                return -1;
            break;
        case 0x85: /* TUPLE1 */
        case 0x86: /* TUPLE2 */
        case 0x87: /* TUPLE3 */
            k = (size_t)(u->op - 0x84);
            if (need_stack(u, k) != 0 || collapse(u, u->sp - k, K_TUPLE) != 0)
                return -1;
            break;
        case 'a': /* APPEND */
            if (need_stack(u, 2) != 0)
                return -1;
            if (u->stack[u->sp - 2]->kind != K_LIST)
                return fail_at(u, "APPEND to an object that is not a list");
            if (seq_add(u, u->stack[u->sp - 2], u->stack + u->sp - 1, 1) != 0)
                return -1;
            u->sp--;
            break;
        case 'e': /* APPENDS */
            if (pop_mark(u, &k) != 0)
                return -1;
            if (k == 0 || (u->nmarks && k - 1 < u->marks[u->nmarks - 1]))
                return fail_at(u, "APPENDS without a list below the MARK");
            if (u->stack[k - 1]->kind != K_LIST)
                return fail_at(u, "APPENDS to an object that is not a list");
            if (seq_add(u, u->stack[k - 1], u->stack + k, u->sp - k) != 0)
                return -1;
            u->sp = k;
            break;
        case 's': /* SETITEM */
            if (need_stack(u, 3) != 0)
                return -1;
            if (u->stack[u->sp - 3]->kind != K_DICT)
                return fail_at(u, "SETITEM on an object that is not a dict");
            if (seq_add(u, u->stack[u->sp - 3], u->stack + u->sp - 2, 2) != 0)
                return -1;
            u->sp -= 2;
            break;
        case 'u': /* SETITEMS */
            if (pop_mark(u, &k) != 0)
                return -1;
            if (k == 0 || (u->nmarks && k - 1 < u->marks[u->nmarks - 1]))
                return fail_at(u, "SETITEMS without a dict below the MARK");
            if (u->stack[k - 1]->kind != K_DICT)
                return fail_at(u, "SETITEMS on an object that is not a dict");
            if ((u->sp - k) % 2)
                return fail_at(u, "SETITEMS with an odd number of items");
            if (seq_add(u, u->stack[k - 1], u->stack + k, u->sp - k) != 0)
                return -1;
            u->sp = k;
            break;
        case 'J': /* BININT */
            if (rd(u, 4, &a) != 0 || push_int(u, (int64_t)(int32_t)io_rd32(a)) != 0)
                return -1;
            break;
        case 'K': /* BININT1 */
            if (rd(u, 1, &a) != 0 || push_int(u, a[0]) != 0)
                return -1;
            break;
        case 'M': /* BININT2 */
            if (rd(u, 2, &a) != 0 || push_int(u, io_rd16(a)) != 0)
                return -1;
            break;
        case 0x8a: { /* LONG1 */
            if (rd(u, 1, &a) != 0)
                return -1;
            size_t nb = a[0];
            if (nb > 8)
                return fail_at(u, "LONG1 integer wider than 64 bits");
            if (rd(u, nb, &a) != 0)
                return -1;
            uint64_t v = 0;
            for (size_t i = 0; i < nb; i++)
                v |= (uint64_t)a[i] << (8 * i);
            if (nb && nb < 8 && (a[nb - 1] & 0x80))
                v |= ~(uint64_t)0 << (8 * nb);   /* sign-extend */
            int64_t sv;
            memcpy(&sv, &v, sizeof sv);
            if (push_int(u, sv) != 0)
                return -1;
            break;
        }
        case 'N': /* NONE */
            if (push(u, new_obj(u, K_NONE)) != 0)
                return -1;
            break;
        case 0x88: /* NEWTRUE */
        case 0x89: { /* NEWFALSE */
            obj *o = new_obj(u, K_BOOL);
            if (!o)
                return -1;
            o->u.i = u->op == 0x88;
            if (push(u, o) != 0)
                return -1;
            break;
        }
        case 'X': /* BINUNICODE */
            if (rd(u, 4, &a) != 0 || push_str(u, io_rd32(a)) != 0)
                return -1;
            break;
        case 0x8c: /* SHORT_BINUNICODE */
            if (rd(u, 1, &a) != 0 || push_str(u, a[0]) != 0)
                return -1;
            break;
        case 0x8d: { /* BINUNICODE8 */
            if (rd(u, 8, &a) != 0)
                return -1;
            uint64_t len = io_rd64(a);
            if (len > u->n - u->pos)
                return fail_at(u, "string runs past the end of the data");
            if (push_str(u, (size_t)len) != 0)
                return -1;
            break;
        }
        case 'G': { /* BINFLOAT, big-endian */
            if (rd(u, 8, &a) != 0)
                return -1;
            uint64_t b = 0;
            for (int i = 0; i < 8; i++)
                b = (b << 8) | a[i];
            obj *o = new_obj(u, K_FLOAT);
            if (!o)
                return -1;
            memcpy(&o->u.f, &b, sizeof b);
            if (push(u, o) != 0)
                return -1;
            break;
        }
        case 'q': /* BINPUT */
            if (rd(u, 1, &a) != 0 || memo_put(u, a[0]) != 0)
                return -1;
            break;
        case 'r': /* LONG_BINPUT */
            if (rd(u, 4, &a) != 0 || memo_put(u, io_rd32(a)) != 0)
                return -1;
            break;
        case 0x94: /* MEMOIZE */
            if (memo_put(u, u->nmemo) != 0)
                return -1;
            break;
        case 'h': /* BINGET */
            if (rd(u, 1, &a) != 0 || memo_get(u, a[0]) != 0)
                return -1;
            break;
        case 'j': /* LONG_BINGET */
            if (rd(u, 4, &a) != 0 || memo_get(u, io_rd32(a)) != 0)
                return -1;
            break;
        case 'c': { /* GLOBAL "module\nname\n" */
            const uint8_t *s = u->p + u->pos;
            size_t rem = u->n - u->pos, lim = rem < 512 ? rem : 512;
            const uint8_t *nl1 = memchr(s, '\n', lim);
            if (!nl1)
                return fail_at(u, "GLOBAL module name is not terminated");
            size_t mlen = (size_t)(nl1 - s);
            lim = rem - mlen - 1 < 512 ? rem - mlen - 1 : 512;
            const uint8_t *nl2 = memchr(nl1 + 1, '\n', lim);
            if (!nl2)
                return fail_at(u, "GLOBAL name is not terminated");
            size_t nlen = (size_t)(nl2 - nl1 - 1);
            u->pos += mlen + nlen + 2;
            if (global(u, (const char *)s, mlen, (const char *)nl1 + 1, nlen) != 0)
                return -1;
            break;
        }
        case 0x93: { /* STACK_GLOBAL */
            if (need_stack(u, 2) != 0)
                return -1;
            obj *m = u->stack[u->sp - 2], *nm = u->stack[u->sp - 1];
            if (m->kind != K_STR || nm->kind != K_STR)
                return fail_at(u, "STACK_GLOBAL operands are not strings");
            u->sp -= 2;
            if (global(u, m->u.str.s, m->u.str.n, nm->u.str.s, nm->u.str.n) != 0)
                return -1;
            break;
        }
        case 'R': /* REDUCE */
            if (reduce(u) != 0)
                return -1;
            break;
        case 'b': /* BUILD */
            if (need_stack(u, 2) != 0)
                return -1;
            if (u->stack[u->sp - 2]->kind != K_DICT || !u->stack[u->sp - 2]->ordered)
                return fail_at(u, "BUILD is only supported on an OrderedDict");
            u->sp--;   /* the state (_metadata) is ignored */
            break;
        case 'Q': /* BINPERSID */
            if (persid(u) != 0)
                return -1;
            break;
        default:
            return fail_at(u, "unsupported opcode");
        }
    }
}

/* Validates one tensor record and fills a tt_tensor. */
static int make_tensor(up *u, const obj *key, const obj *val, tt_tensor *t)
{
    char q[96];
    io_quote(q, sizeof q, key->u.str.s, key->u.str.n);
    if (key->u.str.n >= TT_NAME_MAX || memchr(key->u.str.s, '\0', key->u.str.n))
        return io_err(u->err, u->errlen, "pickle: tensor name '%s' is longer than %d bytes or has a NUL byte", q,
                      TT_NAME_MAX - 1);
    if (val->kind != K_TENSOR)
        return io_err(u->err, u->errlen, "pickle: value of '%s' is not a tensor", q);
    const obj *st = val->u.t.storage;
    int nd = val->u.t.ndim;
    const int64_t *shape = val->u.t.shape, *stride = val->u.t.stride;
    int64_t numel = 1;
    for (int i = 0; i < nd; i++) {
        if (shape[i] < 0)
            return io_err(u->err, u->errlen, "pickle: tensor '%s' has a negative dimension", q);
        if (shape[i] && numel > INT64_MAX / 8 / shape[i])
            return io_err(u->err, u->errlen, "pickle: tensor '%s' element count overflows", q);
        numel *= shape[i];
    }
    if (numel > 0) {
        int64_t expect = 1;
        for (int i = nd - 1; i >= 0; i--) {
            if (shape[i] != 1 && stride[i] != expect) {
                char s1[96], s2[96];
                tt_format_shape(s1, sizeof s1, nd, shape);
                tt_format_shape(s2, sizeof s2, nd, stride);
                return io_err(u->err, u->errlen, "pickle: tensor '%s' is not contiguous (size %s, stride %s)", q, s1,
                              s2);
            }
            expect *= shape[i];
        }
    }
    int64_t off = val->u.t.offset;
    if (off < 0 || off > st->u.st.numel || numel > st->u.st.numel - off) {
        char k[64];
        return io_err(u->err, u->errlen, "pickle: tensor '%s' (storage offset %lld + %lld elements) runs past the "
                      "end of storage '%s' (%lld elements)", q, (long long)off, (long long)numel,
                      io_quote(k, sizeof k, st->u.st.key, strlen(st->u.st.key)), (long long)st->u.st.numel);
    }
    memset(t, 0, sizeof *t);
    memcpy(t->name, key->u.str.s, key->u.str.n);
    t->dtype = (tt_dtype)st->u.st.dtype;
    t->ndim = nd;
    for (int i = 0; i < nd; i++)
        t->shape[i] = shape[i];
    t->numel = numel;
    t->data = st->u.st.data + (size_t)off * io_dtype_size(st->u.st.dtype);
    return 0;
}

int unpickle_state_dict(const uint8_t *pkl, size_t len, unpickle_storage_fn storage, void *ctx, tt_tensor **out,
                        int *count, char *err, size_t errlen)
{
    *out = NULL;
    *count = 0;
    up u;
    memset(&u, 0, sizeof u);
    u.p = pkl;
    u.n = len;
    u.storage = storage;
    u.ctx = ctx;
    u.err = err;
    u.errlen = errlen;
    int rc = run(&u);
    tt_tensor *ts = NULL;
    if (rc == 0) {
        const obj *d = u.stack[u.sp - 1];
        if (d->kind != K_DICT) {
            rc = io_err(err, errlen, "pickle: the top-level object is not a dict");
        } else if (d->u.seq.n / 2 > IO_MAX_TENSORS) {
            rc = io_err(err, errlen, "pickle: more than %d tensors", IO_MAX_TENSORS);
        } else {
            size_t n = d->u.seq.n / 2;
            ts = n ? malloc(n * sizeof *ts) : NULL;
            if (n && !ts)
                rc = io_err(err, errlen, "pickle: out of memory");
            for (size_t i = 0; rc == 0 && i < n; i++) {
                const obj *key = d->u.seq.v[2 * i], *val = d->u.seq.v[2 * i + 1];
                if (key->kind != K_STR)
                    rc = io_err(err, errlen, "pickle: top-level key %zu is not a string", i);
                else
                    rc = make_tensor(&u, key, val, &ts[i]);
            }
            if (rc == 0) {
                *out = ts;
                *count = (int)n;
                ts = NULL;
            }
        }
    }
    free(ts);
    free_all(&u);
    return rc == 0 ? 0 : -1;
}
