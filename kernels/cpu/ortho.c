/* The orthogonality penalty of SPEC §4 for one generated layer:
 *   Σ_j ‖Wb_j·Wb_jᵀ − I‖²_F + ‖Ũ_jᵀ·Ũ_j − I‖²_F, plus ‖ṼᵀṼ − I‖²_F,
 * where Ũ, Ṽ have unit-norm columns. Terms of a level that is off are absent. */
#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu.h"

/* Penalty of the rows of a (r × c, row stride ld): ‖A·Aᵀ − I‖²; adds scale·4·E·A to da. */
static double rows_penalty(int r, int c, const float *a, float scale, float *da) {
  double loss = 0;
  float e[r * r];
  for (int i = 0; i < r; i++)
    for (int j = 0; j < r; j++) {
      double d = 0;
      for (int t = 0; t < c; t++) d += (double)a[i * c + t] * a[j * c + t];
      e[i * r + j] = (float)(d - (i == j));
      loss += (double)e[i * r + j] * e[i * r + j];
    }
  if (da)
    for (int i = 0; i < r; i++)
      for (int t = 0; t < c; t++) {
        double s = 0;
        for (int j = 0; j < r; j++) s += (double)e[i * r + j] * a[j * c + t];
        da[i * c + t] += scale * 4.0f * (float)s;
      }
  return loss;
}

/* Penalty of the normalized columns of a (r × c): ‖ÃᵀÃ − I‖²; adds the gradient through the
 * normalization, scale·(G − ã·(ã·G))/‖a‖ per column with G = 4·Ã·E, to da. */
static double cols_penalty(int r, int c, const float *a, float scale, float *da) {
  float nrm[c], at[c * r], e[c * c];
  for (int j = 0; j < c; j++) {
    double s = 0;
    for (int i = 0; i < r; i++) s += (double)a[i * c + j] * a[i * c + j];
    nrm[j] = (float)sqrt(s) + 1e-12f;
    for (int i = 0; i < r; i++) at[j * r + i] = a[i * c + j] / nrm[j]; /* Ãᵀ rows = normalized columns */
  }
  double loss = 0;
  for (int i = 0; i < c; i++)
    for (int j = 0; j < c; j++) {
      double d = 0;
      for (int t = 0; t < r; t++) d += (double)at[i * r + t] * at[j * r + t];
      e[i * c + j] = (float)(d - (i == j));
      loss += (double)e[i * c + j] * e[i * c + j];
    }
  if (da)
    for (int j = 0; j < c; j++) {
      float gcol[r];
      double dot = 0;
      for (int t = 0; t < r; t++) {
        double s = 0;
        for (int i = 0; i < c; i++) s += (double)e[j * c + i] * at[i * r + t];
        gcol[t] = 4.0f * (float)s;
        dot += (double)gcol[t] * at[j * r + t];
      }
      for (int t = 0; t < r; t++) da[t * c + j] += scale * (gcol[t] - (float)dot * at[j * r + t]) / nrm[j];
    }
  return loss;
}

static double ortho(const ist_gen_shape *g, const float *wb, const float *u, const float *v, float scale,
                    float *dwb, float *du, float *dv) {
  double loss = 0;
  if (g->level1)
    for (int j = 0; j < g->nb; j++) {
      int64_t ob = (int64_t)j * g->bi * g->k2, ou = (int64_t)j * g->ci * g->bi;
      loss += rows_penalty(g->bi, g->k2, wb + ob, scale, dwb ? dwb + ob : NULL);
      loss += cols_penalty(g->ci, g->bi, u + ou, scale, du ? du + ou : NULL);
    }
  if (g->level2) loss += cols_penalty(g->co, g->bc, v, scale, dv);
  return loss;
}

float ist_cpu_ortho_forward(const ist_gen_shape *g, const float *wb, const float *u, const float *v) {
  return (float)ortho(g, wb, u, v, 0.0f, NULL, NULL, NULL);
}

void ist_cpu_ortho_backward(float scale, const ist_gen_shape *g, const float *wb, const float *u, const float *v,
                            float *dwb, float *du, float *dv) {
  ortho(g, wb, u, v, scale, dwb, du, dv);
}
