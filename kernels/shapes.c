/* Shape arithmetic shared by every backend: conv output sizes and generator factor sizes. */
#include "kernels/backend.h"

int ist_conv_shape_init(ist_conv_shape *s) {
  if (s->n <= 0 || s->ci <= 0 || s->h <= 0 || s->w <= 0 || s->co <= 0 || s->k <= 0 || s->stride <= 0 ||
      s->pad < 0)
    return 0;
  int eh = s->h + 2 * s->pad - s->k, ew = s->w + 2 * s->pad - s->k;
  if (eh < 0 || ew < 0) return 0;
  s->ho = eh / s->stride + 1;
  s->wo = ew / s->stride + 1;
  return 1;
}

int64_t ist_gen_wb_numel(const ist_gen_shape *g) { return g->level1 ? (int64_t)g->nb * g->bi * g->k2 : 0; }
int64_t ist_gen_u_numel(const ist_gen_shape *g) { return g->level1 ? (int64_t)g->nb * g->ci * g->bi : 0; }
int64_t ist_gen_wc_numel(const ist_gen_shape *g) { return (int64_t)g->nb * g->ci * g->k2; }
int64_t ist_gen_v_numel(const ist_gen_shape *g) { return g->level2 ? (int64_t)g->co * g->bc : 0; }
