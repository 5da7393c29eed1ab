/* Tensor views and arena allocation. */
#include "host/tensor.h"

#include "kernels/backend.h"

#include <string.h>

#define IST_ALIGN 64

void ist_arena_measure(ist_arena *a) {
  memset(a, 0, sizeof *a);
  a->measuring = 1;
}

ist_status ist_arena_create(ist_arena *a, size_t bytes, const ist_backend *be) {
  memset(a, 0, sizeof *a);
  size_t rounded = (bytes + IST_ALIGN - 1) / IST_ALIGN * IST_ALIGN;
  if (rounded == 0) rounded = IST_ALIGN;
  a->base = be->alloc(rounded);
  if (!a->base) return ist_fail(IST_ERR_MEMORY, "arena: cannot allocate %zu bytes of %s memory", rounded, be->name);
  a->cap = rounded;
  a->device = (ist_device)be->device;
  a->be = be;
  return IST_OK;
}

void ist_arena_view(ist_arena *a, void *base, size_t bytes, ist_device device) {
  memset(a, 0, sizeof *a);
  a->base = base;
  a->cap = bytes;
  a->device = device;
}

void ist_arena_destroy(ist_arena *a) {
  if (a->be) a->be->free(a->base);
  memset(a, 0, sizeof *a);
}

ist_status ist_arena_alloc(ist_arena *a, size_t bytes, void **out) {
  size_t need = (bytes + IST_ALIGN - 1) / IST_ALIGN * IST_ALIGN;
  if (a->measuring) {
    a->used += need;
    *out = NULL;
    return IST_OK;
  }
  if (a->used + need > a->cap)
    return ist_fail(IST_ERR_MEMORY, "arena: %zu bytes requested, %zu of %zu left", bytes,
                    a->cap - a->used, a->cap);
  *out = a->base + a->used;
  a->used += need;
  return IST_OK;
}

size_t ist_dtype_size(ist_dtype t) { return t == IST_U8 ? 1 : t == IST_I64 ? 8 : 4; }

int64_t ist_numel(const ist_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
  return n;
}

ist_tensor ist_tensor_view(void *data, ist_dtype dtype, int ndim, const int64_t *dims) {
  ist_tensor t;
  memset(&t, 0, sizeof t);
  t.data = data;
  t.dtype = dtype;
  t.ndim = ndim;
  int64_t s = 1;
  for (int i = ndim - 1; i >= 0; i--) {
    t.shape[i] = dims[i];
    t.stride[i] = s;
    s *= dims[i];
  }
  return t;
}

ist_status ist_tensor_alloc(ist_arena *a, ist_dtype dtype, int ndim, const int64_t *dims, ist_tensor *out) {
  if (ndim < 1 || ndim > IST_MAX_DIMS) return ist_fail(IST_ERR_ARG, "tensor: %d dimensions (1..4 allowed)", ndim);
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (dims[i] <= 0) return ist_fail(IST_ERR_ARG, "tensor: dimension %d is %lld", i, (long long)dims[i]);
    n *= dims[i];
  }
  void *p = NULL;
  IST_TRY(ist_arena_alloc(a, (size_t)n * ist_dtype_size(dtype), &p));
  *out = ist_tensor_view(p, dtype, ndim, dims);
  out->device = a->device;
  return IST_OK;
}
