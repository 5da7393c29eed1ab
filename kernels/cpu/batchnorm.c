/* BatchNorm2d forward (train/eval) and backward, per channel over batch and pixels; optionally
 * synchronized over data-parallel ranks (statistics and backward sums over every rank's batch). */
#include <math.h>
#include <stdlib.h>

#include "kernels/cpu/cpu.h"

/* Σ over (n, hw) of channel ch of f(x) for each channel into out[c]. */
#define CHANNEL_SUMS(out, EXPR)                                        \
  _Pragma("omp parallel for schedule(static)") for (int ch = 0; ch < c; ch++) { \
    double acc = 0;                                                    \
    for (int b = 0; b < n; b++) {                                      \
      const int64_t o = ((int64_t)b * c + ch) * hw;                    \
      for (int p = 0; p < hw; p++) acc += (EXPR);                      \
    }                                                                  \
    out[ch] = acc;                                                     \
  }

void ist_cpu_batchnorm_forward(int n, int c, int hw, const float *x, const float *gamma, const float *beta,
                               float *y, float *save_mean, float *save_rstd, float *run_mean, float *run_var,
                               float momentum, float eps, int training, const ist_reducer *sync) {
  if (training) {
    /* Two passes (mean, then squared deviations), each summed over the ranks when synchronized. */
    const double cnt = (double)n * hw * (sync ? sync->ranks : 1);
    double *s = malloc(sizeof(double) * 2 * (size_t)c), *ss = s + c;
    CHANNEL_SUMS(s, x[o + p])
    if (sync) sync->sum(sync->ctx, s, c);
    for (int ch = 0; ch < c; ch++) s[ch] /= cnt;
    CHANNEL_SUMS(ss, ((double)x[o + p] - s[ch]) * ((double)x[o + p] - s[ch]))
    if (sync) sync->sum(sync->ctx, ss, c);
    for (int ch = 0; ch < c; ch++) {
      const double var = ss[ch] / cnt, unbiased = cnt > 1 ? ss[ch] / (cnt - 1) : var;
      save_mean[ch] = (float)s[ch];
      save_rstd[ch] = (float)(1.0 / sqrt(var + eps));
      run_mean[ch] = (1 - momentum) * run_mean[ch] + momentum * (float)s[ch];
      run_var[ch] = (1 - momentum) * run_var[ch] + momentum * (float)unbiased;
    }
    free(s);
  } else {
    for (int ch = 0; ch < c; ch++) { /* saved too, for an eval-mode backward */
      save_mean[ch] = run_mean[ch];
      save_rstd[ch] = 1.0f / sqrtf(run_var[ch] + eps);
    }
  }
#pragma omp parallel for schedule(static)
  for (int ch = 0; ch < c; ch++) {
    const float a = gamma[ch] * save_rstd[ch], bsh = beta[ch] - save_mean[ch] * a;
    for (int b = 0; b < n; b++) {
      const float *xr = x + ((int64_t)b * c + ch) * hw;
      float *yr = y + ((int64_t)b * c + ch) * hw;
      for (int p = 0; p < hw; p++) yr[p] = xr[p] * a + bsh;
    }
  }
}

void ist_cpu_batchnorm_backward(int n, int c, int hw, const float *dy, const float *x, const float *gamma,
                                const float *save_mean, const float *save_rstd, float *dx, float *dgamma,
                                float *dbeta, int training, const ist_reducer *sync) {
  double *sums = malloc(sizeof(double) * 2 * (size_t)c), *sdy = sums, *sdyx = sums + c;
  CHANNEL_SUMS(sdy, dy[o + p])
  CHANNEL_SUMS(sdyx, dy[o + p] * ((double)x[o + p] - save_mean[ch]) * save_rstd[ch])
  for (int ch = 0; ch < c; ch++) {
    dgamma[ch] += (float)sdyx[ch];
    dbeta[ch] += (float)sdy[ch];
  }
  if (training && sync) sync->sum(sync->ctx, sums, 2 * c);
  const double cnt = (double)n * hw * (training && sync ? sync->ranks : 1);
  /* Training: dx = γ·rstd·(dy − mean(dy) − x̂·mean(dy·x̂)); eval (fixed statistics): γ·rstd·dy. */
#pragma omp parallel for schedule(static)
  for (int ch = 0; ch < c; ch++) {
    const float mean = save_mean[ch], rstd = save_rstd[ch], k = gamma[ch] * rstd;
    const float mdy = training ? (float)(sdy[ch] / cnt) : 0.0f, mdyx = training ? (float)(sdyx[ch] / cnt) : 0.0f;
    for (int b = 0; b < n; b++) {
      const float *xr = x + ((int64_t)b * c + ch) * hw, *gr = dy + ((int64_t)b * c + ch) * hw;
      float *dr = dx + ((int64_t)b * c + ch) * hw;
      for (int p = 0; p < hw; p++) dr[p] = k * (gr[p] - mdy - (xr[p] - mean) * rstd * mdyx);
    }
  }
  free(sums);
}
