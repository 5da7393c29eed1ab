/* Tensors (shape, strides, dtype, device) as views into arenas, and the arenas that own memory. */
#ifndef IST_TENSOR_H
#define IST_TENSOR_H
#include <stddef.h>
#include <stdint.h>

#include "host/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define IST_MAX_DIMS 4

typedef enum { IST_F32 = 0, IST_I32 = 1, IST_U8 = 2, IST_I64 = 3 } ist_dtype; /* I64: read only (PyTorch's num_batches_tracked) */
typedef enum { IST_CPU = 0, IST_CUDA = 1 } ist_device;

typedef struct {
  void *data;
  int ndim;
  int64_t shape[IST_MAX_DIMS];
  int64_t stride[IST_MAX_DIMS]; /* in elements */
  ist_dtype dtype;
  ist_device device;
} ist_tensor;

struct ist_backend;

/* One block of a backend's memory (one allocation: whole-arena ops such as zero_grad, the
 * gradient all-reduce and the optimizer step rely on it) handed out in aligned pieces. An arena
 * created with ist_arena_measure() hands out no memory: it only adds up the sizes asked for, so
 * the same layout code can size the real arena before anything is allocated. */
typedef struct {
  uint8_t *base;
  size_t cap;
  size_t used;
  int measuring;
  ist_device device;
  const struct ist_backend *be; /* the owner of base (NULL: measuring, or a view into another arena) */
} ist_arena;

void ist_arena_measure(ist_arena *a);
/* bytes of be's memory, zeroed. */
ist_status ist_arena_create(ist_arena *a, size_t bytes, const struct ist_backend *be);
/* An arena over [base, base + bytes) of memory another arena owns (destroying it frees nothing). */
void ist_arena_view(ist_arena *a, void *base, size_t bytes, ist_device device);
void ist_arena_destroy(ist_arena *a);
/* Returns 64-byte-aligned zeroed memory, or NULL when measuring; fails when the arena is full. */
ist_status ist_arena_alloc(ist_arena *a, size_t bytes, void **out);

size_t ist_dtype_size(ist_dtype t);
int64_t ist_numel(const ist_tensor *t);
/* A contiguous view of shape dims[0..ndim) over data. */
ist_tensor ist_tensor_view(void *data, ist_dtype dtype, int ndim, const int64_t *dims);
ist_status ist_tensor_alloc(ist_arena *a, ist_dtype dtype, int ndim, const int64_t *dims, ist_tensor *out);
static inline float *ist_f32(const ist_tensor *t) { return (float *)t->data; }

#ifdef __cplusplus
}
#endif
#endif
