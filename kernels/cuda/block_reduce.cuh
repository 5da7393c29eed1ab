/* Deterministic block reductions (a fixed tree for a given block size: warp shuffles, then warp
 * totals summed in warp order by thread 0), shared by batchnorm.cu, softmax_xent.cu, kd_loss.cu,
 * quantize.cu and ortho.cu. The kernel declares the scratch: IST_SHARED(double, red, IST_RED_SLOTS). */
#ifndef IST_BLOCK_REDUCE_CUH
#define IST_BLOCK_REDUCE_CUH
#include "kernels/cuda/ist_cuda.h"

#define IST_WARP 32
#define IST_FULL_MASK 0xffffffffu
/* Slots a block reduction needs: one per warp of the largest block (1024 threads), plus the result. */
#define IST_RED_SLOTS (1024 / IST_WARP + 1)

/* Σ v over the warp, in a fixed butterfly order; every lane gets the total. */
template <class T>
static __device__ __forceinline__ T ist_warp_sum(T v) {
  for (int o = IST_WARP / 2; o > 0; o >>= 1) v += __shfl_xor_sync(IST_FULL_MASK, v, o);
  return v;
}
template <class T>
static __device__ __forceinline__ T ist_warp_max(T v) {
  for (int o = IST_WARP / 2; o > 0; o >>= 1) {
    T u = __shfl_xor_sync(IST_FULL_MASK, v, o);
    v = u > v ? u : v;
  }
  return v;
}

/* Σ v over the block (blockDim.x a multiple of 32); every thread gets the total. Contains barriers:
 * every thread of the block must call it. red: IST_RED_SLOTS doubles of shared memory. */
static __device__ __forceinline__ double ist_block_sum(double v, ist_sptr<double> red) {
  const int lane = threadIdx.x % IST_WARP, warp = threadIdx.x / IST_WARP, warps = blockDim.x / IST_WARP;
  v = ist_warp_sum(v);
  if (lane == 0) red[warp] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    double t = 0;
    for (int i = 0; i < warps; i++) t += red[i];
    red[IST_RED_SLOTS - 1] = t;
  }
  __syncthreads();
  const double t = red[IST_RED_SLOTS - 1];
  __syncthreads(); /* red may be reused right after */
  return t;
}

/* max v over the block, as ist_block_sum. red: IST_RED_SLOTS floats of shared memory. */
static __device__ __forceinline__ float ist_block_max(float v, ist_sptr<float> red) {
  const int lane = threadIdx.x % IST_WARP, warp = threadIdx.x / IST_WARP, warps = blockDim.x / IST_WARP;
  v = ist_warp_max(v);
  if (lane == 0) red[warp] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    float t = red[0];
    for (int i = 1; i < warps; i++) {
      const float r = red[i];
      t = r > t ? r : t;
    }
    red[IST_RED_SLOTS - 1] = t;
  }
  __syncthreads();
  const float t = red[IST_RED_SLOTS - 1];
  __syncthreads();
  return t;
}
#endif
