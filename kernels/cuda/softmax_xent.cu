/* Mean softmax cross-entropy over a batch (twin of kernels/cpu/softmax_xent.c). One block: each
 * warp takes a sample (max-subtracted softmax), per-sample losses and hits go to shared memory and
 * thread 0 adds them in sample order, so the device scalars are deterministic (batches are at most
 * a few hundred samples: one block is enough). *loss_sum += the mean loss, *correct += the hits. */
#include <math.h>

#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/softmax_row.cuh"

static __global__ void cross_entropy_kernel(int n, int c, const float *logits, const int32_t *labels, float *dlogits,
                                     float *loss_sum, int32_t *correct) {
  IST_SHARED(double, sample_loss, IST_LOSS_CHUNK);
  IST_SHARED(int, sample_hit, IST_LOSS_CHUNK);
  const int lane = threadIdx.x % IST_WARP, warp = threadIdx.x / IST_WARP, warps = blockDim.x / IST_WARP;
  double loss = 0; /* thread 0's running sums */
  int hits = 0;
  for (int base = 0; base < n; base += IST_LOSS_CHUNK) {
    const int len = n - base < IST_LOSS_CHUNK ? n - base : IST_LOSS_CHUNK;
    for (int s = warp; s < len; s += warps) {
      const int i = base + s, y = labels[i];
      const float *z = logits + (int64_t)i * c;
      const float mx = ist_row_max(c, z, lane);
      const double sum = ist_row_expsum(c, z, mx, 1.0f, lane);
      const int am = ist_row_argmax(c, z, lane);
      if (lane == 0) {
        const float py = ist_row_prob(z[y], mx, 1.0f, sum);
        sample_loss[s] = -log(py > IST_PROB_FLOOR ? py : IST_PROB_FLOOR);
        sample_hit[s] = am == y;
      }
      if (dlogits)
        for (int j = lane; j < c; j += IST_WARP)
          dlogits[(int64_t)i * c + j] = (ist_row_prob(z[j], mx, 1.0f, sum) - (j == y)) / n;
    }
    __syncthreads();
    if (threadIdx.x == 0)
      for (int s = 0; s < len; s++) loss += sample_loss[s], hits += sample_hit[s];
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    *loss_sum += (float)(loss / n);
    if (correct) *correct += hits;
  }
}

extern "C" void ist_cuda_cross_entropy(int n, int c, const float *logits, const int32_t *labels, float *dlogits,
                                       float *loss_sum, int32_t *correct) {
  if (n <= 0 || c <= 0) return;
  IST_LAUNCH(cross_entropy_kernel, 1, IST_LOSS_THREADS, 0, ist_cuda_stream(), n, c, logits, labels, dlogits,
             loss_sum, correct);
  IST_CUDA_CHECK_LAUNCH("cross_entropy n=%d c=%d", n, c);
}
