/* Figure 2's analysis: the share of the top 30% singular values, per kernel and across kernels. */
#include "train/analyze.h"

#include "host/gnuplot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu.h"

double ist_top_share(int m, int n, const float *a, double fraction) {
  const int r = m < n ? m : n;
  float *u = malloc(sizeof(float) * ((size_t)m * r + (size_t)r * n + r));
  if (!u) return NAN;
  float *vt = u + (size_t)m * r, *s = vt + (size_t)r * n;
  double share = NAN;
  if (ist_cpu_svd(m, n, a, u, s, vt)) {
    const int top = (int)ceil(fraction * r);
    double all = 0, head = 0;
    for (int i = 0; i < r; i++) {
      all += s[i];
      if (i < top) head += s[i];
    }
    share = all > 0 ? head / all : 1.0;
  }
  free(u);
  return share;
}

ist_status ist_analyze_weight(int co, int ci, int k2, const float *w, ist_spectrum *out) {
  double sum = 0, sq = 0;
  for (int o = 0; o < co; o++) {
    const double v = ist_top_share(ci, k2, w + (int64_t)o * ci * k2, IST_ANALYZE_TOP_FRACTION);
    if (isnan(v)) return ist_fail(IST_ERR_MEMORY, "analyze: SVD of a %dx%d kernel failed", ci, k2);
    sum += v;
    sq += v * v;
  }
  out->intra_mean = sum / co;
  out->intra_std = sqrt(fmax(sq / co - out->intra_mean * out->intra_mean, 0.0));
  out->cross = ist_top_share(co, ci * k2, w, IST_ANALYZE_TOP_FRACTION);
  if (isnan(out->cross)) return ist_fail(IST_ERR_MEMORY, "analyze: SVD of the %dx%d cross-kernel matrix failed", co, ci * k2);
  return IST_OK;
}

/* Writes the data and a gnuplot script next to png, and runs gnuplot. */
static ist_status plot(const ist_model *m, const ist_spectrum *sp, const char *png) {
  IST_TRY(ist_gnuplot_check_path("--png", png));
  char dat[4096], gp[4096];
  snprintf(dat, sizeof dat, "%s.dat", png);
  snprintf(gp, sizeof gp, "%s.gp", png);
  FILE *f = fopen(dat, "w");
  if (!f) return ist_fail(IST_ERR_IO, "--png: cannot write %s", dat);
  for (int i = 0; i < m->nconvs; i++)
    fprintf(f, "%d \"%s\" %.6f %.6f %.6f\n", i, m->convs[i]->name, sp[i].intra_mean, sp[i].intra_std, sp[i].cross);
  fclose(f);
  if (!(f = fopen(gp, "w"))) return ist_fail(IST_ERR_IO, "--png: cannot write %s", gp);
  fputs("set terminal pngcairo size 1200,600\nset output ", f);
  ist_gnuplot_quote(f, png);
  fputs("\nset style data histograms\n"
        "set style histogram errorbars gap 1 lw 1\nset style fill solid 0.6\nset yrange [0:1.05]\n"
        "set ylabel 'share of the top 30% singular values'\nset xtics rotate by -60 font ',8'\nplot ",
        f);
  ist_gnuplot_quote(f, dat);
  fputs(" using 3:4:xtic(2) title 'intra-kernel (Ci x k^2, mean and spread)', '' using 5:(0) title "
        "'cross-kernel (Co x Ci k^2)'\n",
        f);
  fclose(f);
  return ist_gnuplot_run("--png", gp);
}

ist_status ist_analyze_print(FILE *out, ist_model *m, const char *png) {
  ist_spectrum *sp = calloc((size_t)(m->nconvs ? m->nconvs : 1), sizeof *sp);
  if (!sp) return ist_fail(IST_ERR_MEMORY, "analyze: out of memory");
  ist_status st = IST_OK;
  fprintf(out, "%-28s %-14s %18s %14s\n", "layer", "shape", "intra (mean±std)", "cross");
  for (int i = 0; i < m->nconvs && st == IST_OK; i++) {
    ist_conv_layer *l = m->convs[i];
    const ist_conv_shape *s = &l->shape;
    if (l->set.generated) ist_conv_layer_generate(m->be, l);
    else if (l->set.baseline) m->be->baseline_forward(&l->base, l->p1, l->p2, l->w);
    float *w = malloc(sizeof(float) * (size_t)ist_conv_weight_numel(s));
    if (!w) {
      st = ist_fail(IST_ERR_MEMORY, "analyze: out of memory");
      break;
    }
    m->be->download(w, l->w, sizeof(float) * (size_t)ist_conv_weight_numel(s));
    st = ist_analyze_weight(s->co, s->ci / s->groups, s->k * s->k, w, &sp[i]);
    free(w);
    if (st != IST_OK) break;
    char shape[32];
    snprintf(shape, sizeof shape, "%dx%dx%dx%d", s->co, s->ci / s->groups, s->k, s->k);
    fprintf(out, "%-28s %-14s %11.3f±%.3f %14.3f\n", l->name, shape, sp[i].intra_mean, sp[i].intra_std, sp[i].cross);
  }
  if (st == IST_OK && png) st = plot(m, sp, png);
  free(sp);
  return st;
}
