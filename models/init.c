/* Random initialization of a model's parameters (seeded): Kaiming-normal conv weights, and
 * generated convs whose factors are drawn at random then scaled so the generated W has the
 * Kaiming standard deviation; BN γ = 1, β = 0; the classifier as PyTorch's default. Computed on
 * the host (the random stream is the host's), on a staged copy of the parameter block. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host/rng.h"
#include "kernels/cpu/cpu.h"
#include "models/model.h"

static void fill_normal(ist_rng *r, float *p, int64_t n, float std) {
  for (int64_t i = 0; i < n; i++) p[i] = std * ist_rng_normal(r);
}

static double sum_squares(const float *w, int64_t n) {
  double ss = 0;
  for (int64_t i = 0; i < n; i++) ss += (double)w[i] * w[i];
  return ss;
}

/* P: the host view of the parameter block; wc, w: host scratch for the generated weight. */
static void init_generated(const ist_staged *P, ist_conv_layer *l, ist_rng *r, float target_std, float *wc, float *w) {
  const ist_gen_shape *g = &l->gen;
  float *wb = ist_staged_at(P, l->wb), *u = ist_staged_at(P, l->u), *v = ist_staged_at(P, l->v),
        *wc_free = ist_staged_at(P, l->wc_free);
  if (g->level1) {
    fill_normal(r, wb, ist_gen_wb_numel(g), 1.0f);
    fill_normal(r, u, ist_gen_u_numel(g), 1.0f);
  } else {
    fill_normal(r, wc_free, ist_gen_wc_numel(g), 1.0f);
  }
  if (g->level2) fill_normal(r, v, ist_gen_v_numel(g), 1.0f);
  /* Measure the generated weight's spread (unquantized) and rescale the outermost factor. */
  ist_cpu_generate_forward(g, wb, u, v, g->level1 ? wc : wc_free, w);
  const int64_t wn = (int64_t)g->co * g->ci * g->k2;
  float scale = target_std / (float)sqrt(sum_squares(w, wn) / wn + 1e-30);
  float *outer = g->level2 ? v : g->level1 ? u : wc_free;
  int64_t on = g->level2 ? ist_gen_v_numel(g) : g->level1 ? ist_gen_u_numel(g) : ist_gen_wc_numel(g);
  for (int64_t i = 0; i < on; i++) outer[i] *= scale;
}

/* Baselines: normal parameters, the last one rescaled so the built W has the Kaiming spread. */
static void init_baseline(const ist_staged *P, ist_conv_layer *l, ist_rng *r, float target_std, float *w) {
  const int64_t n1 = ist_base_p1_numel(&l->base), n2 = ist_base_p2_numel(&l->base), wn = ist_conv_weight_numel(&l->shape);
  float *p1 = ist_staged_at(P, l->p1), *p2 = ist_staged_at(P, l->p2);
  fill_normal(r, p1, n1, 1.0f);
  if (n2) fill_normal(r, p2, n2, 1.0f);
  ist_cpu_baseline_forward(&l->base, p1, p2, w);
  const float scale = target_std / (float)sqrt(sum_squares(w, wn) / wn + 1e-30);
  float *outer = n2 ? p2 : p1;
  for (int64_t i = 0, n = n2 ? n2 : n1; i < n; i++) outer[i] *= scale;
}

ist_status ist_model_init_params(ist_model *m, uint64_t seed) {
  /* Host scratch for the largest generated (or built) weight. */
  int64_t wmax = 1, wcmax = 1;
  for (int i = 0; i < m->nconvs; i++) {
    const ist_conv_layer *l = m->convs[i];
    if (ist_conv_weight_numel(&l->shape) > wmax) wmax = ist_conv_weight_numel(&l->shape);
    if (l->set.generated && ist_gen_wc_numel(&l->gen) > wcmax) wcmax = ist_gen_wc_numel(&l->gen);
  }
  float *w = malloc(sizeof(float) * (size_t)wmax), *wc = malloc(sizeof(float) * (size_t)wcmax);
  ist_staged P;
  ist_status st = w && wc ? ist_stage(&P, m->be, (const float *)m->params_arena.base,
                                      (int64_t)(m->params_arena.used / sizeof(float)))
                          : ist_fail(IST_ERR_MEMORY, "%s: out of memory for the initialization", m->arch);
  if (st != IST_OK) {
    free(w);
    free(wc);
    return st;
  }
  ist_rng r;
  ist_rng_seed(&r, seed, 1);
  for (int i = 0; i < m->nconvs; i++) {
    ist_conv_layer *l = m->convs[i];
    const ist_conv_shape *s = &l->shape;
    float std = sqrtf(2.0f / (float)ist_conv_fan_in(s));
    if (l->set.generated) init_generated(&P, l, &r, std, wc, w);
    else if (l->set.baseline) init_baseline(&P, l, &r, std, w);
    else fill_normal(&r, ist_staged_at(&P, l->w), ist_conv_weight_numel(s), std);
  }
  for (int i = 0; i < m->nparams; i++) {
    ist_param *p = &m->params[i];
    float *data = ist_staged_at(&P, p->data);
    if (p->kind == IST_PARAM_BN) {
      for (int64_t j = 0; j < p->numel; j++) data[j] = strstr(p->name, ".weight") ? 1.0f : 0.0f;
    } else if (p->kind == IST_PARAM_BUFFER) {
      for (int64_t j = 0; j < p->numel; j++) data[j] = strstr(p->name, "running_var") ? 1.0f : 0.0f;
    } else if (p->kind == IST_PARAM_FC) {
      /* U(−1/√in, 1/√in) for weight and bias; "in" is the weight's second dimension. */
      const ist_param *wp = p->ndim == 2 ? p : p - 1; /* a bias follows its weight */
      float bound = 1.0f / sqrtf((float)wp->shape[1]);
      for (int64_t j = 0; j < p->numel; j++) data[j] = bound * (2.0f * ist_rng_uniform(&r) - 1.0f);
    }
  }
  ist_unstage(&P, 1);
  free(w);
  free(wc);
  return IST_OK;
}
