/* Shape arithmetic shared by every backend: conv output sizes and generator factor sizes. */
#include "kernels/backend.h"

int ist_conv_shape_init(ist_conv_shape *s) {
  if (s->n <= 0 || s->ci <= 0 || s->h <= 0 || s->w <= 0 || s->co <= 0 || s->k <= 0 || s->stride <= 0 ||
      s->pad < 0)
    return 0;
  int eh = s->h + 2 * s->pad - s->k, ew = s->w + 2 * s->pad - s->k;
  if (eh < 0 || ew < 0) return 0;
  if (s->groups <= 0) s->groups = 1;
  if (s->ci % s->groups || s->co % s->groups) return 0;
  s->ho = eh / s->stride + 1;
  s->wo = ew / s->stride + 1;
  return 1;
}

int ist_conv_fan_in(const ist_conv_shape *s) { return s->ci / (s->groups > 1 ? s->groups : 1) * s->k * s->k; }
int64_t ist_conv_weight_numel(const ist_conv_shape *s) { return (int64_t)s->co * ist_conv_fan_in(s); }

int ist_pool_out(int in, int k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }

ist_gen_shape ist_gen_shape_make(int co, int ci, int k, int bi, int bc) {
  const int k2 = k * k, kk = ci * k2;
  ist_gen_shape g = {.co = co, .ci = ci, .k2 = k2, .bi = bi, .bc = bc};
  g.level1 = k > 1 && bi > 0 && bi < (ci < k2 ? ci : k2);
  g.level2 = bc > 0 && bc < (co < kk ? co : kk);
  g.nb = g.level2 ? bc : co;
  return g;
}

int64_t ist_gen_wb_numel(const ist_gen_shape *g) { return g->level1 ? (int64_t)g->nb * g->bi * g->k2 : 0; }
int64_t ist_gen_u_numel(const ist_gen_shape *g) { return g->level1 ? (int64_t)g->nb * g->ci * g->bi : 0; }
int64_t ist_gen_wc_numel(const ist_gen_shape *g) { return (int64_t)g->nb * g->ci * g->k2; }
int64_t ist_gen_v_numel(const ist_gen_shape *g) { return g->level2 ? (int64_t)g->co * g->bc : 0; }

int64_t ist_gconv_t1_numel(const ist_conv_shape *s, const ist_gen_shape *g) {
  return g->level1 ? (int64_t)s->n * g->nb * g->bi * s->h * s->w : 0;
}
int64_t ist_gconv_t2_numel(const ist_conv_shape *s, const ist_gen_shape *g) {
  return g->level2 ? (int64_t)s->n * g->nb * s->ho * s->wo : 0;
}

double ist_gconv_macs_materialized(const ist_conv_shape *s, const ist_gen_shape *g) {
  (void)g;
  return (double)s->co * s->ci * s->k * s->k;
}

double ist_gconv_macs_factored(const ist_conv_shape *s, const ist_gen_shape *g) {
  const double in_per_out = (double)s->h * s->w / ((double)s->ho * s->wo);
  double macs = g->level1 ? (double)g->nb * g->bi * (s->ci * in_per_out + g->k2) : (double)g->nb * s->ci * g->k2;
  if (g->level2) macs += (double)s->co * g->nb;
  return macs;
}

int ist_gconv_factored_within(const ist_conv_shape *s, const ist_gen_shape *g, double share) {
  return ist_gconv_macs_factored(s, g) <= share * ist_gconv_macs_materialized(s, g);
}

int64_t ist_base_p1_numel(const ist_base_shape *b) {
  switch (b->type) {
    case IST_BASE_DSCONV: return (int64_t)b->ci * b->k2;
    case IST_BASE_BSCONV: return (int64_t)b->co * b->k2;
    case IST_BASE_PENNI: return (int64_t)IST_PENNI_D * b->k2;
    case IST_BASE_CIRCNN: return (int64_t)b->co * b->ci * b->k2 / IST_CIRCNN_BLOCK;
    default: return 0;
  }
}

int64_t ist_base_p2_numel(const ist_base_shape *b) {
  switch (b->type) {
    case IST_BASE_DSCONV:
    case IST_BASE_BSCONV: return (int64_t)b->co * b->ci;
    case IST_BASE_PENNI: return (int64_t)b->co * b->ci * IST_PENNI_D;
    default: return 0;
  }
}
