/* Staging: the few host algorithms that work on backend memory (random init, SVD projection,
 * level balancing, relative errors) download a block, compute on the host and upload it back,
 * all through this one helper. */
#include <stdlib.h>

#include "models/model.h"

ist_status ist_stage(ist_staged *s, const ist_backend *be, const float *dev, int64_t n) {
  *s = (ist_staged){.be = be, .dev = (float *)dev, .n = n};
  if (be->device == IST_CPU) {
    s->host = (float *)dev;
    return IST_OK;
  }
  s->host = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
  if (!s->host) return ist_fail(IST_ERR_MEMORY, "staging %lld floats of %s memory: out of host memory", (long long)n, be->name);
  s->owned = 1;
  if (n > 0) be->download(s->host, dev, sizeof(float) * (size_t)n);
  return IST_OK;
}

void ist_unstage(ist_staged *s, int write_back) {
  if (s->owned) {
    if (write_back && s->n > 0) s->be->upload(s->dev, s->host, sizeof(float) * (size_t)s->n);
    free(s->host);
  }
  *s = (ist_staged){0};
}
