/* BatchNorm2d forward (train/eval) and backward, per channel over batch and pixels. */
#include <math.h>

#include "kernels/cpu/cpu.h"

void ist_cpu_batchnorm_forward(int n, int c, int hw, const float *x, const float *gamma, const float *beta,
                               float *y, float *save_mean, float *save_rstd, float *run_mean, float *run_var,
                               float momentum, float eps, int training) {
  const int64_t cnt = (int64_t)n * hw;
#pragma omp parallel for schedule(static)
  for (int ch = 0; ch < c; ch++) {
    float mean, rstd;
    if (training) {
      double s = 0, ss = 0;
      for (int b = 0; b < n; b++) {
        const float *xr = x + ((int64_t)b * c + ch) * hw;
        for (int p = 0; p < hw; p++) s += xr[p];
      }
      double m = s / cnt;
      for (int b = 0; b < n; b++) {
        const float *xr = x + ((int64_t)b * c + ch) * hw;
        for (int p = 0; p < hw; p++) {
          double d = xr[p] - m;
          ss += d * d;
        }
      }
      double var = ss / cnt;
      mean = (float)m;
      rstd = (float)(1.0 / sqrt(var + eps));
      save_mean[ch] = mean;
      save_rstd[ch] = rstd;
      double unbiased = cnt > 1 ? ss / (cnt - 1) : var;
      run_mean[ch] = (1 - momentum) * run_mean[ch] + momentum * (float)m;
      run_var[ch] = (1 - momentum) * run_var[ch] + momentum * (float)unbiased;
    } else {
      mean = run_mean[ch];
      rstd = 1.0f / sqrtf(run_var[ch] + eps);
      save_mean[ch] = mean; /* for an eval-mode backward */
      save_rstd[ch] = rstd;
    }
    float a = gamma[ch] * rstd, bsh = beta[ch] - mean * a;
    for (int b = 0; b < n; b++) {
      const float *xr = x + ((int64_t)b * c + ch) * hw;
      float *yr = y + ((int64_t)b * c + ch) * hw;
      for (int p = 0; p < hw; p++) yr[p] = xr[p] * a + bsh;
    }
  }
}

void ist_cpu_batchnorm_backward(int n, int c, int hw, const float *dy, const float *x, const float *gamma,
                                const float *save_mean, const float *save_rstd, float *dx, float *dgamma,
                                float *dbeta, int training) {
  const int64_t cnt = (int64_t)n * hw;
#pragma omp parallel for schedule(static)
  for (int ch = 0; ch < c; ch++) {
    const float mean = save_mean[ch], rstd = save_rstd[ch];
    double sdy = 0, sdyx = 0;
    for (int b = 0; b < n; b++) {
      const float *xr = x + ((int64_t)b * c + ch) * hw, *gr = dy + ((int64_t)b * c + ch) * hw;
      for (int p = 0; p < hw; p++) {
        sdy += gr[p];
        sdyx += gr[p] * (xr[p] - mean) * rstd;
      }
    }
    dgamma[ch] += (float)sdyx;
    dbeta[ch] += (float)sdy;
    /* Training: dx = γ·rstd·(dy − mean(dy) − x̂·mean(dy·x̂)); eval (fixed statistics): γ·rstd·dy. */
    const float k = gamma[ch] * rstd, mdy = training ? (float)(sdy / cnt) : 0.0f,
                mdyx = training ? (float)(sdyx / cnt) : 0.0f;
    for (int b = 0; b < n; b++) {
      const float *xr = x + ((int64_t)b * c + ch) * hw, *gr = dy + ((int64_t)b * c + ch) * hw;
      float *dr = dx + ((int64_t)b * c + ch) * hw;
      for (int p = 0; p < hw; p++) dr[p] = k * (gr[p] - mdy - (xr[p] - mean) * rstd * mdyx);
    }
  }
}
