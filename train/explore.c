/* Design-space exploration (see explore.h). */
#include "train/explore.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/project.h"
#include "train/report.h"

ist_status ist_explore_measure(const ist_model *teacher, ist_model *student, const char *setting,
                               ist_explore_point *out) {
  memset(out, 0, sizeof *out);
  snprintf(out->setting, sizeof out->setting, "%s", setting);
  out->accuracy = -1;
  ist_status st = IST_OK;
  double norm = 0;
  for (int i = 0; st == IST_OK && i < student->nconvs; i++) {
    ist_conv_layer *l = student->convs[i], *t = teacher->convs[i];
    const int64_t numel = ist_conv_weight_numel(&t->shape);
    float *w = malloc(sizeof(float) * (size_t)numel);
    if (!w) {
      st = ist_fail(IST_ERR_MEMORY, "explore: out of memory");
      break;
    }
    teacher->be->download(w, t->w, sizeof(float) * (size_t)numel);
    double sq = 0;
    for (int64_t k = 0; k < numel; k++) sq += (double)w[k] * w[k];
    const double rel = l->set.generated ? ist_quantized_projection_error(student->be, l, t->w)
                       : l->set.baseline ? 1.0 /* not a projection of the teacher */
                                         : 0.0;
    out->err[i] = rel * rel * sq;
    out->bits[i] = ist_conv_ratio(l).bits;
    out->total_err += out->err[i];
    norm += sq;
    free(w);
  }
  out->nlayers = student->nconvs;
  if (st == IST_OK) {
    ist_ratio r = ist_model_ratio(student);
    out->param_ratio = r.param_ratio;
    out->memory_ratio = r.memory_ratio;
    out->rel_err = norm > 0 ? sqrt(out->total_err / norm) : 0;
  }
  return st;
}

ist_status ist_explore_search(const ist_explore_point *pts, int n, double fixed_bits, double dense_bits, double target,
                              int resolution, int *choice) {
  if (n < 1) return ist_fail(IST_ERR_ARG, "explore: no grid points");
  const int L = pts[0].nlayers, B = resolution;
  const double budget = target * dense_bits - fixed_bits, unit = budget / B;
  if (budget <= 0) return ist_fail(IST_ERR_ARG, "--target-ratio %g: below what the BatchNorm and classifier alone store", target);
  /* best[l][b]: least error of layers 0..l within b budget units; from[l][b]: the point chosen for l. */
  double *best = calloc((size_t)L * (B + 1), sizeof(double));
  int *from = malloc(sizeof(int) * (size_t)L * (B + 1));
  if (!best || !from) {
    free(best);
    free(from);
    return ist_fail(IST_ERR_MEMORY, "explore: out of memory");
  }
  for (int l = 0; l < L; l++)
    for (int b = 0; b <= B; b++) {
      double *cell = &best[(size_t)l * (B + 1) + b];
      *cell = INFINITY;
      from[(size_t)l * (B + 1) + b] = -1;
      for (int p = 0; p < n; p++) {
        const int cost = (int)ceil(pts[p].bits[l] / unit - 1e-9); /* rounded up: a choice never overspends */
        if (cost > b) continue;
        const double before = l ? best[(size_t)(l - 1) * (B + 1) + b - cost] : 0;
        if (before + pts[p].err[l] < *cell) *cell = before + pts[p].err[l], from[(size_t)l * (B + 1) + b] = p;
      }
    }
  ist_status st = IST_OK;
  if (!isfinite(best[(size_t)(L - 1) * (B + 1) + B])) {
    st = ist_fail(IST_ERR_ARG, "--target-ratio %g: no per-layer choice of the grid fits", target);
  } else {
    for (int l = L - 1, b = B; l >= 0; l--) {
      const int p = from[(size_t)l * (B + 1) + b];
      choice[l] = p;
      b -= (int)ceil(pts[p].bits[l] / unit - 1e-9);
    }
  }
  free(best);
  free(from);
  return st;
}

int ist_explore_best_global(const ist_explore_point *pts, int n, double target) {
  int best = -1;
  for (int p = 0; p < n; p++)
    if (pts[p].memory_ratio <= target && (best < 0 || pts[p].total_err < pts[best].total_err)) best = p;
  return best;
}

/* Higher is better: accuracy when trained, else −error. */
static double merit(const ist_explore_point *p) { return p->accuracy >= 0 ? p->accuracy : -p->total_err; }

void ist_explore_pareto(const ist_explore_point *pts, int n, int *on_front) {
  for (int p = 0; p < n; p++) {
    on_front[p] = 1;
    for (int q = 0; q < n && on_front[p]; q++)
      if (q != p && pts[q].memory_ratio <= pts[p].memory_ratio && merit(&pts[q]) >= merit(&pts[p]) &&
          (pts[q].memory_ratio < pts[p].memory_ratio || merit(&pts[q]) > merit(&pts[p])))
        on_front[p] = 0;
  }
}

void ist_explore_csv(FILE *out, const ist_explore_point *pts, int n, const ist_model *m, const int *on_front) {
  fprintf(out, "setting,param_ratio,memory_ratio,total_err,rel_err,accuracy,pareto");
  for (int l = 0; l < m->nconvs; l++) fprintf(out, ",err_%s,bits_%s", m->convs[l]->name, m->convs[l]->name);
  fputc('\n', out);
  for (int p = 0; p < n; p++) {
    fprintf(out, "\"%s\",%.6f,%.6f,%.6g,%.6f,", pts[p].setting, pts[p].param_ratio, pts[p].memory_ratio,
            pts[p].total_err, pts[p].rel_err);
    if (pts[p].accuracy >= 0) fprintf(out, "%.4f", pts[p].accuracy);
    fprintf(out, ",%d", on_front ? on_front[p] : 0);
    for (int l = 0; l < pts[p].nlayers; l++) fprintf(out, ",%.6g,%.0f", pts[p].err[l], pts[p].bits[l]);
    fputc('\n', out);
  }
}
