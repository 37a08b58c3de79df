/* unpickle.h — a restricted unpickler for PyTorch state dicts (data.pkl). Never executes or imports anything:
 * it knows only the opcodes a state dict uses and only the globals collections.OrderedDict,
 * torch._utils._rebuild_tensor_v2 and torch.{Half,Float,BFloat16}Storage. Pure C. */
#ifndef TAESD_IO_UNPICKLE_H
#define TAESD_IO_UNPICKLE_H

#include <stddef.h>
#include <stdint.h>

struct tt_tensor;

/* Resolves a storage key (the persistent id's key, e.g. "12") to its bytes. Returns 0, or -1 with err set. */
typedef int (*unpickle_storage_fn)(void *ctx, const char *key, size_t key_len, const uint8_t **data, size_t *size,
                                   char *err, size_t errlen);

/* Unpickles a dict of name -> tensor. On success *out (malloc'ed, NULL when *count is 0) holds the tensors in
 * insertion order, their data pointing into the storages' bytes. On failure returns -1 with one line in err. */
int unpickle_state_dict(const uint8_t *pkl, size_t len, unpickle_storage_fn storage, void *ctx,
                        struct tt_tensor **out, int *count, char *err, size_t errlen);

/* Limits against pickle bombs. */
#define UNPICKLE_MAX_STACK 100000
#define UNPICKLE_MAX_MARKS 64
#define UNPICKLE_MAX_DEPTH 64
#define UNPICKLE_MAX_MEMO (1u << 20)
#define UNPICKLE_MAX_OBJECTS ((size_t)1 << 20)
#define UNPICKLE_MAX_ITEMS ((size_t)1 << 22)

#endif
