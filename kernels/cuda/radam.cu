/* RAdam (twin of kernels/cpu/radam.c): one launch over the parameter arena. The step's scalars
 * (bias corrections, rectification) are computed on the host in the CPU's precision (double, then
 * rounded to float as the CPU rounds them); the per-element update is the CPU's float arithmetic. */
#include <math.h>

#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/ist_cuda.h"

#define RADAM_THREADS 256
#define RADAM_MAX_BLOCKS 4096
/* RAdam rectifies only once the variance estimate is tractable (rho_t > 5, Liu et al. 2020). */
#define RADAM_RHO_TRACTABLE 5.0

/* The step's constants, each rounded to float where the CPU rounds it. */
typedef struct {
  float b1, one_minus_b1, b2, one_minus_b2, lr_m, sq_bc2, r, eps, weight_decay;
  int rectify;
} radam_step;

static __global__ void radam_kernel(int64_t n, float *param, const float *grad, float *m, float *v, radam_step k) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const float g = grad[i] + k.weight_decay * param[i];
    const float mi = k.b1 * m[i] + k.one_minus_b1 * g;
    const float vi = k.b2 * v[i] + k.one_minus_b2 * g * g;
    m[i] = mi;
    v[i] = vi;
    if (k.rectify)
      param[i] -= k.lr_m * mi * k.r * k.sq_bc2 / (sqrtf(vi) + k.eps);
    else
      param[i] -= k.lr_m * mi;
  }
}

extern "C" void ist_cuda_radam_update(int64_t n, float *param, const float *grad, float *m, float *v, int step,
                                      const ist_radam_hparams *h) {
  if (n <= 0) return;
  const double b1 = h->beta1, b2 = h->beta2;
  const double bc1 = 1.0 - pow(b1, step), bc2 = 1.0 - pow(b2, step);
  const double rho_inf = 2.0 / (1.0 - b2) - 1.0;
  const double rho_t = rho_inf - 2.0 * step * pow(b2, step) / bc2;
  radam_step k;
  k.rectify = rho_t > RADAM_RHO_TRACTABLE;
  const double r =
      k.rectify ? sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) : 0.0;
  k.b1 = (float)b1;
  k.one_minus_b1 = (float)(1 - b1);
  k.b2 = (float)b2;
  k.one_minus_b2 = (float)(1 - b2);
  k.lr_m = (float)(h->lr / bc1);
  k.sq_bc2 = (float)sqrt(bc2);
  k.r = (float)r;
  k.eps = h->eps;
  k.weight_decay = h->weight_decay;
  IST_LAUNCH(radam_kernel, ist_cuda_blocks(n, RADAM_THREADS, RADAM_MAX_BLOCKS), RADAM_THREADS, 0, ist_cuda_stream(),
             n, param, grad, m, v, k);
  IST_CUDA_CHECK_LAUNCH("radam_update n=%lld step=%d", (long long)n, step);
}
