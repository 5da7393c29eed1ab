/* Checkpoints in the safetensors format: read, and written atomically (temp file + rename). */
#ifndef IST_SAFETENSORS_H
#define IST_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>

#include "host/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  char name[128];
  ist_dtype dtype;
  int ndim;
  int64_t shape[IST_MAX_DIMS];
  const void *data;
  size_t nbytes;
} ist_st_tensor;

/* A header holds at most this many metadata entries (insitu writes fewer than 10). */
#define IST_ST_MAX_META 256

typedef struct {
  char key[64];
  char value[4096];
} ist_st_meta;

typedef struct {
  ist_st_tensor *tensors;
  int ntensors;
  ist_st_meta *meta;
  int nmeta;
  uint8_t *blob; /* the whole file; tensors[i].data points into it */
  size_t size;
} ist_safetensors;

ist_status ist_st_write(const char *path, const ist_st_tensor *tensors, int ntensors, const ist_st_meta *meta,
                        int nmeta);
ist_status ist_st_read(const char *path, ist_safetensors *out);
void ist_st_free(ist_safetensors *f);
const ist_st_tensor *ist_st_find(const ist_safetensors *f, const char *name);
const char *ist_st_meta_get(const ist_safetensors *f, const char *key);

#ifdef __cplusplus
}
#endif
#endif
