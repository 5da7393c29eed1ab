/* ℓ2 and SVD projection of dense teacher weights onto generated convs, and the student's
 * initialization from a teacher. The SVD and the level balancing run on the host (staged
 * copies); the ℓ2 projection's iterations run on the backend. */
#include "train/project.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu.h"

ist_status ist_init_method_parse(const char *text, ist_init_method *out) {
  if (!strcmp(text, "l2")) *out = IST_INIT_L2;
  else if (!strcmp(text, "svd")) *out = IST_INIT_SVD;
  else if (!strcmp(text, "random")) *out = IST_INIT_RANDOM;
  else return ist_fail(IST_ERR_ARG, "--init: '%s' is not one of l2, svd, random", text);
  return IST_OK;
}

static int64_t weight_numel(const ist_conv_layer *l) {
  return ist_conv_weight_numel(&l->shape);
}

/* ‖Ŵ − W‖/‖Ŵ‖ of the layer's materialized weight (backend memory, like w_teacher). */
static float relative_error(const ist_backend *be, const ist_conv_layer *l, const float *w_teacher) {
  ist_staged w, t;
  if (ist_stage(&w, be, l->w, weight_numel(l)) != IST_OK) return NAN;
  if (ist_stage(&t, be, w_teacher, weight_numel(l)) != IST_OK) {
    ist_unstage(&w, 0);
    return NAN;
  }
  double num = 0, den = 0;
  for (int64_t i = 0; i < weight_numel(l); i++) {
    double d = (double)w.host[i] - t.host[i];
    num += d * d;
    den += (double)t.host[i] * t.host[i];
  }
  ist_unstage(&w, 0);
  ist_unstage(&t, 0);
  return (float)sqrt(num / (den > 0 ? den : 1));
}

float ist_projection_error(const ist_backend *be, ist_conv_layer *l, const float *w_teacher) {
  const ist_gen_shape *g = &l->gen;
  if (!g->level1) be->copy(l->wc, l->wc_free, ist_gen_wc_numel(g));
  be->generate_forward(g, l->wb, l->u, l->v, l->wc, l->w);
  return relative_error(be, l, w_teacher);
}

float ist_quantized_projection_error(const ist_backend *be, ist_conv_layer *l, const float *w_teacher) {
  ist_conv_layer_generate(be, l);
  return relative_error(be, l, w_teacher);
}

/* The factors of a layer as (data, grad, numel) triples, for a small optimizer loop. */
static int layer_factors(ist_conv_layer *l, float **data, float **grad, int64_t *numel) {
  const ist_gen_shape *g = &l->gen;
  int n = 0;
  if (g->level1) {
    data[n] = l->wb, grad[n] = l->dwb, numel[n++] = ist_gen_wb_numel(g);
    data[n] = l->u, grad[n] = l->du, numel[n++] = ist_gen_u_numel(g);
  } else {
    data[n] = l->wc_free, grad[n] = l->dwc_free, numel[n++] = ist_gen_wc_numel(g);
  }
  if (g->level2) data[n] = l->v, grad[n] = l->dv, numel[n++] = ist_gen_v_numel(g);
  return n;
}

/* The factors are registered one after another: the span [first, last + its size) of the
 * parameter block holds them all (and the same span of the gradient block their gradients). */
static int64_t factor_span(ist_conv_layer *l, float **first) {
  float *data[3], *grad[3];
  int64_t numel[3];
  const int nf = layer_factors(l, data, grad, numel);
  float *lo = data[0], *hi = data[0] + numel[0];
  for (int f = 1; f < nf; f++) {
    if (data[f] < lo) lo = data[f];
    if (data[f] + numel[f] > hi) hi = data[f] + numel[f];
  }
  *first = lo;
  return hi - lo;
}

/* Moves scale between the levels without changing the generated weight: each basis row
 * Wb_j[i,:] to unit norm (U_j[:,i] takes the factor), then, with level 2 on, each U_j to unit
 * Frobenius norm (V[:,j] takes the factor). The orthogonality penalty then starts near its
 * intended regime (orthonormal Wb rows), and the per-factor-kind quantization scale of U fits
 * every U_j instead of rounding the small ones to zero. */
static void balance_levels(const ist_backend *be, ist_conv_layer *l) {
  const ist_gen_shape *g = &l->gen;
  if (!g->level1) return;
  float *first;
  const int64_t span = factor_span(l, &first);
  ist_staged F;
  if (ist_stage(&F, be, first, span) != IST_OK) return; /* the factors stay as they are */
  float *wb = ist_staged_at(&F, l->wb), *u = ist_staged_at(&F, l->u), *v = ist_staged_at(&F, l->v);
  for (int j = 0; j < g->nb; j++) {
    float *uj = u + (int64_t)j * g->ci * g->bi;
    for (int i = 0; i < g->bi; i++) {
      float *row = wb + ((int64_t)j * g->bi + i) * g->k2;
      double ss = 0;
      for (int t = 0; t < g->k2; t++) ss += (double)row[t] * row[t];
      float nrm = (float)sqrt(ss);
      if (nrm == 0) continue;
      for (int t = 0; t < g->k2; t++) row[t] /= nrm;
      for (int c = 0; c < g->ci; c++) uj[c * g->bi + i] *= nrm;
    }
    if (!g->level2) continue;
    double ss = 0;
    for (int c = 0; c < g->ci * g->bi; c++) ss += (double)uj[c] * uj[c];
    float nrm = (float)sqrt(ss);
    if (nrm == 0) continue;
    for (int c = 0; c < g->ci * g->bi; c++) uj[c] /= nrm;
    for (int o = 0; o < g->co; o++) v[o * g->bc + j] *= nrm;
  }
  ist_unstage(&F, 1);
}

float ist_project_l2(const ist_backend *be, ist_conv_layer *l, const float *w_teacher, int iters, float lr) {
  const int64_t wn = weight_numel(l);
  float *data[3], *grad[3];
  int64_t numel[3];
  const int nf = layer_factors(l, data, grad, numel);
  /* Start from the SVD projection (well-conditioned factors) and fit the weight the student
   * will actually use: the one generated from the quantized factors, with the quantizers'
   * straight-through gradient. Fitting the unquantized factors instead converges to terms that
   * cancel each other, and such factors lose most of their accuracy when quantized. */
  ist_project_svd(be, l, w_teacher);
  balance_levels(be, l);

  /* The iterations run where the factors live: RAdam over the factors' span of the parameter
   * block (their gradients lie at the same offsets of the gradient block), with moments laid
   * out as that span. */
  float *first;
  const int64_t span = factor_span(l, &first);
  float *dfirst = grad[0] - (data[0] - first);
  float *state = be->alloc(sizeof(float) * 2 * (size_t)span);
  ist_radam_hparams h = {lr, 0.9f, 0.999f, 1e-8f, 0.0f};
  for (int it = 1; state && it <= iters; it++) {
    ist_conv_layer_generate(be, l); /* fills l->w from the quantized factors */
    /* The gradient of the mean squared error: its small scale keeps RAdam's first, un-adapted
     * steps (plain momentum SGD) harmless, after which the step size is scale-free. */
    be->sq_diff(wn, l->w, w_teacher, l->dw, NULL);
    for (int f = 0; f < nf; f++) be->zero(grad[f], numel[f]);
    ist_conv_layer_generate_backward(be, l);
    be->radam_update(span, first, dfirst, state, state + span, it, &h);
  }
  be->free(state);
  for (int f = 0; f < nf; f++) be->zero(grad[f], numel[f]);
  return ist_projection_error(be, l, w_teacher);
}

float ist_project_svd(const ist_backend *be, ist_conv_layer *l, const float *w_teacher) {
  const ist_gen_shape *g = &l->gen;
  const int kk = g->ci * g->k2;
  const int r2 = g->co < kk ? g->co : kk, r1 = g->ci < g->k2 ? g->ci : g->k2;
  const size_t big = (size_t)(r2 > r1 ? r2 : r1);
  const size_t un = (size_t)g->co * r2 > (size_t)g->ci * r1 ? (size_t)g->co * r2 : (size_t)g->ci * r1;
  float *u = malloc(sizeof(float) * un), *s = malloc(sizeof(float) * big),
        *vt = malloc(sizeof(float) * (size_t)r2 * kk), *wc = malloc(sizeof(float) * (size_t)g->nb * kk);
  float *first;
  const int64_t span = factor_span(l, &first);
  ist_staged T, F;
  if (!u || !s || !vt || !wc || ist_stage(&T, be, w_teacher, (int64_t)g->co * kk) != IST_OK) {
    free(u);
    free(s);
    free(vt);
    free(wc);
    return NAN;
  }
  if (ist_stage(&F, be, first, span) != IST_OK) {
    ist_unstage(&T, 0);
    free(u);
    free(s);
    free(vt);
    free(wc);
    return NAN;
  }
  const float *wt = T.host; /* the teacher weight on the host */
  float *lv = ist_staged_at(&F, l->v), *lu = ist_staged_at(&F, l->u), *lwb = ist_staged_at(&F, l->wb),
        *lwc_free = ist_staged_at(&F, l->wc_free);
  if (g->level2) {
    /* Ŵ ≈ (U_r·S_r)·Vt_r: V takes the singular values, Wc the orthonormal rows. */
    ist_cpu_svd(g->co, kk, wt, u, s, vt);
    for (int o = 0; o < g->co; o++)
      for (int j = 0; j < g->bc; j++) lv[o * g->bc + j] = u[o * r2 + j] * s[j];
    memcpy(wc, vt, sizeof(float) * (size_t)g->bc * kk);
  } else {
    memcpy(wc, wt, sizeof(float) * (size_t)g->co * kk);
  }
  if (g->level1) {
    for (int j = 0; j < g->nb; j++) {
      /* Wc_j (ci × k2) ≈ (u·s)·vt: U_j = u_r·s_r, Wb_j = vt_r. */
      ist_cpu_svd(g->ci, g->k2, wc + (int64_t)j * kk, u, s, vt);
      for (int c = 0; c < g->ci; c++)
        for (int i = 0; i < g->bi; i++) lu[((int64_t)j * g->ci + c) * g->bi + i] = u[c * r1 + i] * s[i];
      memcpy(lwb + (int64_t)j * g->bi * g->k2, vt, sizeof(float) * (size_t)g->bi * g->k2);
    }
  } else {
    memcpy(lwc_free, wc, sizeof(float) * (size_t)g->nb * kk);
  }
  ist_unstage(&F, 1);
  ist_unstage(&T, 0);
  free(u);
  free(s);
  free(vt);
  free(wc);
  return ist_projection_error(be, l, w_teacher);
}

ist_status ist_init_student(ist_model *student, ist_model *teacher, ist_init_method method, int l2_iters,
                            float l2_lr, uint64_t seed, int verbose) {
  if (strcmp(student->arch, teacher->arch))
    return ist_fail(IST_ERR_STATE, "teacher is a %s, student a %s", teacher->arch, student->arch);
  for (int i = 0; i < teacher->nconvs; i++)
    if (teacher->convs[i]->set.generated)
      return ist_fail(IST_ERR_STATE, "teacher layer %s is generated: the teacher must be dense", teacher->convs[i]->name);
  IST_TRY(ist_model_init_params(student, seed));
  /* BatchNorm, classifier and running statistics come from the teacher. */
  for (int i = 0; i < student->nparams; i++) {
    ist_param *p = &student->params[i];
    if (p->kind != IST_PARAM_BN && p->kind != IST_PARAM_FC && p->kind != IST_PARAM_BUFFER) continue;
    ist_param *t = ist_model_find(teacher, p->name);
    if (!t && strstr(p->name, ".act_range")) continue; /* an unquantized teacher: the first batch sets it */
    if (!t || t->numel != p->numel) return ist_fail(IST_ERR_STATE, "teacher has no tensor %s of %lld values", p->name, (long long)p->numel);
    student->be->copy(p->data, t->data, p->numel);
  }
  static const char *names[] = {"random", "svd", "l2"};
  for (int i = 0; i < student->nconvs; i++) {
    ist_conv_layer *l = student->convs[i], *tl = teacher->convs[i];
    if (l->set.baseline) {
      if (verbose) printf("[init] %s: baseline conv type, random init (no projection)\n", l->name);
      continue;
    }
    if (!l->set.generated) {
      student->be->copy(l->w, tl->w, weight_numel(l));
      continue;
    }
    if (method == IST_INIT_L2) ist_project_l2(student->be, l, tl->w, l2_iters, l2_lr);
    else if (method == IST_INIT_SVD) ist_project_svd(student->be, l, tl->w);
    if (method != IST_INIT_L2) balance_levels(student->be, l); /* ℓ2 balanced before fitting the quantized form */
    float err = ist_projection_error(student->be, l, tl->w);
    if (verbose)
      printf("[init] %s: %s projection, relative error %.4f (%.4f after quantization)\n", l->name, names[method], err,
             ist_quantized_projection_error(student->be, l, tl->w));
  }
  return IST_OK;
}
