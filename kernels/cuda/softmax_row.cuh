/* One row's softmax pieces for a warp (lanes stride over the c logits), as kernels/cpu/softmax_xent.c
 * computes them: the max, Σ exp((x − max)/t) in double, p_j = (float)(exp_j / Σ), the first argmax.
 * Shared by softmax_xent.cu and kd_loss.cu. */
#ifndef IST_SOFTMAX_ROW_CUH
#define IST_SOFTMAX_ROW_CUH
#include "kernels/cuda/block_reduce.cuh"

/* The CPU clamps probabilities at this before a log. */
#define IST_PROB_FLOOR 1e-30f
/* Samples whose results one pass keeps in shared memory before thread 0 adds them in order. */
#define IST_LOSS_CHUNK 256
#define IST_LOSS_THREADS 256

static __device__ __forceinline__ float ist_row_max(int c, const float *x, int lane) {
  float m = x[0];
  for (int j = lane; j < c; j += IST_WARP) m = x[j] > m ? x[j] : m;
  return ist_warp_max(m);
}

static __device__ __forceinline__ float ist_row_exp(float x, float mx, float t) { return expf((x - mx) / t); }

static __device__ __forceinline__ double ist_row_expsum(int c, const float *x, float mx, float t, int lane) {
  double z = 0;
  for (int j = lane; j < c; j += IST_WARP) z += ist_row_exp(x[j], mx, t);
  return ist_warp_sum(z);
}

static __device__ __forceinline__ float ist_row_prob(float x, float mx, float t, double z) {
  return (float)(ist_row_exp(x, mx, t) / z);
}

/* The first index of the largest logit (the CPU's strict > scan). */
static __device__ __forceinline__ int ist_row_argmax(int c, const float *x, int lane) {
  int best = lane < c ? lane : 0;
  for (int j = lane + IST_WARP; j < c; j += IST_WARP)
    if (x[j] > x[best]) best = j;
  for (int o = IST_WARP / 2; o > 0; o >>= 1) {
    const int other = __shfl_xor_sync(IST_FULL_MASK, best, o);
    if (x[other] > x[best] || (x[other] == x[best] && other < best)) best = other;
  }
  return best;
}
#endif
