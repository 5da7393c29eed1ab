/* Random initialization of a model's parameters (seeded): Kaiming-normal conv weights, and
 * generated convs whose factors are drawn at random then scaled so the generated W has the
 * Kaiming standard deviation; BN γ = 1, β = 0; the classifier as PyTorch's default. */
#include <math.h>
#include <string.h>

#include "host/rng.h"
#include "models/model.h"

static void fill_normal(ist_rng *r, float *p, int64_t n, float std) {
  for (int64_t i = 0; i < n; i++) p[i] = std * ist_rng_normal(r);
}

static void init_generated(const ist_backend *be, ist_conv_layer *l, ist_rng *r, float target_std) {
  const ist_gen_shape *g = &l->gen;
  if (g->level1) {
    fill_normal(r, l->wb, ist_gen_wb_numel(g), 1.0f);
    fill_normal(r, l->u, ist_gen_u_numel(g), 1.0f);
  } else {
    fill_normal(r, l->wc_free, ist_gen_wc_numel(g), 1.0f);
  }
  if (g->level2) fill_normal(r, l->v, ist_gen_v_numel(g), 1.0f);
  /* Measure the generated weight's spread (unquantized) and rescale the outermost factor. */
  be->generate_forward(g, l->wb, l->u, l->v, g->level1 ? l->wc : l->wc_free, l->w);
  const int64_t wn = (int64_t)g->co * g->ci * g->k2;
  double ss = 0;
  for (int64_t i = 0; i < wn; i++) ss += (double)l->w[i] * l->w[i];
  float scale = target_std / (float)sqrt(ss / wn + 1e-30);
  float *outer = g->level2 ? l->v : g->level1 ? l->u : l->wc_free;
  int64_t on = g->level2 ? ist_gen_v_numel(g) : g->level1 ? ist_gen_u_numel(g) : ist_gen_wc_numel(g);
  for (int64_t i = 0; i < on; i++) outer[i] *= scale;
}

/* Baselines: normal parameters, the last one rescaled so the built W has the Kaiming spread. */
static void init_baseline(const ist_backend *be, ist_conv_layer *l, ist_rng *r, float target_std) {
  const int64_t n1 = ist_base_p1_numel(&l->base), n2 = ist_base_p2_numel(&l->base), wn = ist_conv_weight_numel(&l->shape);
  fill_normal(r, l->p1, n1, 1.0f);
  if (n2) fill_normal(r, l->p2, n2, 1.0f);
  be->baseline_forward(&l->base, l->p1, l->p2, l->w);
  double ss = 0;
  for (int64_t i = 0; i < wn; i++) ss += (double)l->w[i] * l->w[i];
  const float scale = target_std / (float)sqrt(ss / wn + 1e-30);
  float *outer = n2 ? l->p2 : l->p1;
  for (int64_t i = 0, n = n2 ? n2 : n1; i < n; i++) outer[i] *= scale;
}

void ist_model_init_params(ist_model *m, uint64_t seed) {
  ist_rng r;
  ist_rng_seed(&r, seed, 1);
  for (int i = 0; i < m->nconvs; i++) {
    ist_conv_layer *l = m->convs[i];
    const ist_conv_shape *s = &l->shape;
    float std = sqrtf(2.0f / (float)ist_conv_fan_in(s));
    if (l->set.generated) init_generated(m->be, l, &r, std);
    else if (l->set.baseline) init_baseline(m->be, l, &r, std);
    else fill_normal(&r, l->w, ist_conv_weight_numel(s), std);
  }
  for (int i = 0; i < m->nparams; i++) {
    ist_param *p = &m->params[i];
    if (p->kind == IST_PARAM_BN) {
      for (int64_t j = 0; j < p->numel; j++) p->data[j] = strstr(p->name, ".weight") ? 1.0f : 0.0f;
    } else if (p->kind == IST_PARAM_BUFFER) {
      for (int64_t j = 0; j < p->numel; j++) p->data[j] = strstr(p->name, "running_var") ? 1.0f : 0.0f;
    } else if (p->kind == IST_PARAM_FC) {
      /* U(−1/√in, 1/√in) for weight and bias; "in" is the weight's second dimension. */
      const ist_param *w = p->ndim == 2 ? p : p - 1; /* a bias follows its weight */
      float bound = 1.0f / sqrtf((float)w->shape[1]);
      for (int64_t j = 0; j < p->numel; j++) p->data[j] = bound * (2.0f * ist_rng_uniform(&r) - 1.0f);
    }
  }
}
