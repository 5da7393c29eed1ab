/* RAdam (Liu et al. 2020) as PyTorch implements it, with L2 weight decay added to the gradient. */
#include <math.h>

#include "kernels/cpu/cpu.h"

void ist_cpu_radam_update(int64_t n, float *param, const float *grad, float *m, float *v, int step,
                          const ist_radam_hparams *h) {
  const double b1 = h->beta1, b2 = h->beta2;
  const double bc1 = 1.0 - pow(b1, step), bc2 = 1.0 - pow(b2, step);
  const double rho_inf = 2.0 / (1.0 - b2) - 1.0;
  const double rho_t = rho_inf - 2.0 * step * pow(b2, step) / bc2;
  /* The variance is tractable only once rho_t > 5; before that RAdam takes an un-adapted step. */
  const int rectify = rho_t > 5.0;
  const double r =
      rectify ? sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) : 0.0;
  const float lr_m = (float)(h->lr / bc1), sq_bc2 = (float)sqrt(bc2), rf = (float)r;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; i++) {
    float g = grad[i] + h->weight_decay * param[i];
    m[i] = (float)b1 * m[i] + (float)(1 - b1) * g;
    v[i] = (float)b2 * v[i] + (float)(1 - b2) * g * g;
    if (rectify)
      param[i] -= lr_m * m[i] * rf * sq_bc2 / (sqrtf(v[i]) + h->eps);
    else
      param[i] -= lr_m * m[i];
  }
}
