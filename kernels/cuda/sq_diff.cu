/* The squared error between two tensors and its gradient (kernels/cpu/sq_diff.c): the ℓ2
 * projection's objective (SPEC §4 step 1), so its iterations run on the GPU. The sum is one
 * block's fixed-order reduction: the same bits on every run. */
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/ist_cuda.h"

#define SQ_THREADS 256
#define SQ_MAX_BLOCKS 1024
#define SQ_SUM_THREADS 256

__global__ void sq_diff_grad_kernel(long long n, const float *a, const float *b, float *grad) {
  const float two_over_n = 2.0f / (float)n;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    grad[i] = (a[i] - b[i]) * two_over_n;
}

/* One block: thread t sums elements t, t + T, … in order; then a tree over the threads. */
__global__ void sq_diff_sum_kernel(long long n, const float *a, const float *b, float *loss_sum) {
  IST_SHARED(double, part, SQ_SUM_THREADS);
  double s = 0;
  for (long long i = threadIdx.x; i < n; i += SQ_SUM_THREADS) {
    const double d = (double)a[i] - (double)b[i];
    s += d * d;
  }
  part[threadIdx.x] = s;
  __syncthreads();
  for (int half = SQ_SUM_THREADS / 2; half > 0; half /= 2) {
    if ((int)threadIdx.x < half) part[threadIdx.x] = part[threadIdx.x] + part[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) *loss_sum += (float)(part[0] / (double)n);
}

extern "C" void ist_cuda_sq_diff(int64_t n, const float *a, const float *b, float *grad, float *loss_sum) {
  if (n <= 0) return;
  const cudaStream_t st = ist_cuda_stream();
  IST_LAUNCH(sq_diff_grad_kernel, ist_cuda_blocks(n, SQ_THREADS, SQ_MAX_BLOCKS), SQ_THREADS, 0, st, (long long)n, a, b,
             grad);
  IST_CUDA_CHECK_LAUNCH("sq_diff n=%lld", (long long)n);
  if (!loss_sum) return;
  IST_LAUNCH(sq_diff_sum_kernel, 1, SQ_SUM_THREADS, 0, st, (long long)n, a, b, loss_sum);
  IST_CUDA_CHECK_LAUNCH("sq_diff sum n=%lld", (long long)n);
}
