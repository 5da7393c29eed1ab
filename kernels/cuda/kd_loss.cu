/* The distillation loss of SPEC §4 (twin of kernels/cpu/kd_loss.c):
 * β·T²·KL(q_T ‖ p_T) + (1−β)·CE(y, p_1), mean over the batch, and its gradient. One block, a warp
 * per sample, per-sample terms added by thread 0 in sample order (deterministic device scalars). */
#include <math.h>

#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/softmax_row.cuh"

static __global__ void kd_loss_kernel(int n, int c, const float *student, const float *teacher, const int32_t *labels,
                               float beta, float t, float *dlogits, float *loss_sum, int32_t *correct) {
  IST_SHARED(double, sample_ce, IST_LOSS_CHUNK);
  IST_SHARED(double, sample_kl, IST_LOSS_CHUNK);
  IST_SHARED(int, sample_hit, IST_LOSS_CHUNK);
  const int lane = threadIdx.x % IST_WARP, warp = threadIdx.x / IST_WARP, warps = blockDim.x / IST_WARP;
  double ce = 0, kl = 0; /* thread 0's running sums */
  int hits = 0;
  for (int base = 0; base < n; base += IST_LOSS_CHUNK) {
    const int len = n - base < IST_LOSS_CHUNK ? n - base : IST_LOSS_CHUNK;
    for (int s = warp; s < len; s += warps) {
      const int i = base + s, y = labels[i];
      const float *zs = student + (int64_t)i * c, *zt = teacher + (int64_t)i * c;
      const float ms = ist_row_max(c, zs, lane), mt = ist_row_max(c, zt, lane);
      const double s1 = ist_row_expsum(c, zs, ms, 1.0f, lane);
      const double st = ist_row_expsum(c, zs, ms, t, lane), qt = ist_row_expsum(c, zt, mt, t, lane);
      const int am = ist_row_argmax(c, zs, lane);
      double part = 0;
      for (int j = lane; j < c; j += IST_WARP) {
        const float q = ist_row_prob(zt[j], mt, t, qt), p = ist_row_prob(zs[j], ms, t, st);
        if (q > 0) part += q * (log(q) - log(p > IST_PROB_FLOOR ? p : IST_PROB_FLOOR));
        if (dlogits) {
          /* ∂(T²·KL)/∂z_s = T·(p_T − q_T); the CE part as cross_entropy writes it */
          const float d = (ist_row_prob(zs[j], ms, 1.0f, s1) - (j == y)) / n;
          dlogits[(int64_t)i * c + j] = (1 - beta) * d + beta * t * (p - q) / n;
        }
      }
      part = ist_warp_sum(part);
      if (lane == 0) {
        const float py = ist_row_prob(zs[y], ms, 1.0f, s1);
        sample_ce[s] = -log(py > IST_PROB_FLOOR ? py : IST_PROB_FLOOR);
        sample_kl[s] = part;
        sample_hit[s] = am == y;
      }
    }
    __syncthreads();
    if (threadIdx.x == 0)
      for (int s = 0; s < len; s++) ce += sample_ce[s], kl += sample_kl[s], hits += sample_hit[s];
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const float ce_mean = (float)(ce / n); /* the CPU rounds the CE term to float first */
    *loss_sum += (float)(beta * t * t * kl / n + (1 - beta) * ce_mean);
    if (correct) *correct += hits;
  }
}

extern "C" void ist_cuda_kd_loss(int n, int c, const float *student, const float *teacher, const int32_t *labels,
                                 float beta, float temperature, float *dlogits, float *loss_sum, int32_t *correct) {
  if (n <= 0 || c <= 0) return;
  IST_LAUNCH(kd_loss_kernel, 1, IST_LOSS_THREADS, 0, ist_cuda_stream(), n, c, student, teacher, labels, beta,
             temperature, dlogits, loss_sum, correct);
  IST_CUDA_CHECK_LAUNCH("kd_loss n=%d c=%d T=%g beta=%g", n, c, (double)temperature, (double)beta);
}
