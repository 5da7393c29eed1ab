/* The weight quantizer of SPEC §3 (twin of kernels/cpu/quantize.c), choosing the same clip as the
 * CPU bit for bit: the candidates, the grid and the order of every sum come from
 * kernels/quantize_grid.h, which both compile. A block per clip candidate computes max|x| (exact in
 * any order) and its candidate's squared error (a thread per chunk, chunk sums added in index order
 * by thread 0); one thread picks the first least error and writes the scale to the device; a last
 * kernel writes the grid values. The 81 errors pass between launches in a static device array
 * (the op has no scratch argument; every op runs on the one compute stream, so launches never
 * overlap). */
#include <math.h>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/quantize_grid.h"

#define QUANT_THREADS 128
#define QUANT_MAX_BLOCKS 4096
/* q ≥ 32 bits is the identity, with scale 1 (the CPU's return value); q = 1 is sign·mean|x|. */
#define QUANT_IDENTITY_BITS 32
#define QUANT_IDENTITY_SCALE 1.0f

static __device__ double quant_err[IST_QUANT_CANDIDATES];
static __device__ float quant_max;

/* Σ over the chunks of x, one thread per chunk and chunk sums added in index order: the order of
 * kernels/quantize_grid.h. The result is in thread 0. ABS: Σ|x|, else the squared grid errors. */
template <bool ABS>
static __device__ double chunked_sum(int64_t n, const float *x, float inv, float step, float levels,
                              ist_sptr<double> part) {
  const int64_t chunks = (n + IST_QUANT_CHUNK - 1) / IST_QUANT_CHUNK;
  double total = 0;
  for (int64_t base = 0; base < chunks; base += blockDim.x) {
    const int64_t c = base + threadIdx.x;
    if (c < chunks) {
      const float *xc = x + c * IST_QUANT_CHUNK;
      const int len = ist_quant_chunk_len(n, c);
      part[threadIdx.x] = ABS ? ist_quant_chunk_abs(xc, len) : ist_quant_chunk_error(xc, len, inv, step, levels);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      const int64_t len = chunks - base < blockDim.x ? chunks - base : blockDim.x;
      for (int64_t i = 0; i < len; i++) total += part[i];
    }
    __syncthreads();
  }
  return total;
}

/* Block k: max|x| (block 0 keeps it) and candidate k's error. */
static __global__ void quant_errors_kernel(int64_t n, const float *x, float levels) {
  IST_SHARED(float, red, IST_RED_SLOTS);
  IST_SHARED(double, part, QUANT_THREADS);
  float m = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) m = fmaxf(m, fabsf(x[i]));
  const float mx = ist_block_max(m, red);
  const int k = blockIdx.x;
  double e = 0;
  if (mx > 0) {
    const float s = ist_quant_candidate(mx, k);
    e = chunked_sum<false>(n, x, levels / s, s / levels, levels, part);
  }
  if (threadIdx.x == 0) {
    quant_err[k] = e;
    if (k == 0) quant_max = mx;
  }
}

/* The first least error (the CPU's serial scan) → the scale; 0 for an all-zero tensor. */
static __global__ void quant_choose_kernel(float *scale) {
  const float mx = quant_max;
  int best = 0;
  for (int k = 1; k < IST_QUANT_CANDIDATES && quant_err[0] > 0; k++)
    if (quant_err[k] < quant_err[best]) best = k;
  *scale = mx > 0 ? ist_quant_candidate(mx, best) : 0.0f;
}

static __global__ void quant_apply_kernel(int64_t n, const float *x, float *y, float levels, const float *scale) {
  const float s = *scale, step = s / levels, inv = levels / s;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    y[i] = s > 0 ? ist_quant_level(x[i], inv, levels) * step : 0.0f;
}

/* 1 bit: scale = mean|x| (the chunked order), y = ±scale. */
static __global__ void quant_sign_scale_kernel(int64_t n, const float *x, float *scale) {
  IST_SHARED(double, part, QUANT_THREADS);
  const double s = chunked_sum<true>(n, x, 0.0f, 0.0f, 0.0f, part);
  if (threadIdx.x == 0) *scale = n ? (float)(s / n) : 0.0f;
}

static __global__ void quant_sign_apply_kernel(int64_t n, const float *x, float *y, const float *scale) {
  const float a = *scale;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    y[i] = x[i] >= 0 ? a : -a;
}

static __global__ void quant_identity_scale_kernel(float *scale) { *scale = QUANT_IDENTITY_SCALE; }

extern "C" void ist_cuda_quantize_forward(int64_t n, int bits, const float *x, float *y, float *scale) {
  cudaStream_t st = ist_cuda_stream();
  const unsigned blocks = ist_cuda_blocks(n, QUANT_THREADS, QUANT_MAX_BLOCKS);
  if (bits >= QUANT_IDENTITY_BITS) {
    if (y != x && n > 0)
      IST_CUDA_CHECK(cudaMemcpyAsync(y, x, sizeof(float) * (size_t)n, cudaMemcpyDeviceToDevice, st),
                     "quantize_forward n=%lld bits=%d", (long long)n, bits);
    IST_LAUNCH(quant_identity_scale_kernel, 1, 1, 0, st, scale);
  } else if (bits == 1) {
    IST_LAUNCH(quant_sign_scale_kernel, 1, QUANT_THREADS, 0, st, n, x, scale);
    IST_CUDA_CHECK_LAUNCH("quantize_forward mean n=%lld bits=%d", (long long)n, bits);
    if (n > 0) IST_LAUNCH(quant_sign_apply_kernel, blocks, QUANT_THREADS, 0, st, n, x, y, (const float *)scale);
  } else {
    const float levels = ist_quant_levels(bits);
    IST_LAUNCH(quant_errors_kernel, IST_QUANT_CANDIDATES, QUANT_THREADS, 0, st, n, x, levels);
    IST_CUDA_CHECK_LAUNCH("quantize_forward errors n=%lld bits=%d", (long long)n, bits);
    IST_LAUNCH(quant_choose_kernel, 1, 1, 0, st, scale);
    IST_CUDA_CHECK_LAUNCH("quantize_forward choice n=%lld bits=%d", (long long)n, bits);
    if (n > 0) IST_LAUNCH(quant_apply_kernel, blocks, QUANT_THREADS, 0, st, n, x, y, levels, (const float *)scale);
  }
  IST_CUDA_CHECK_LAUNCH("quantize_forward n=%lld bits=%d", (long long)n, bits);
}

/* Straight through: dx += dy inside the clip (everything for 1 bit and the identity). */
static __global__ void quant_backward_kernel(int64_t n, int pass_all, const float *scale, const float *x, const float *dy,
                                      float *dx) {
  const float s = *scale;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    if (pass_all || fabsf(x[i]) <= s) dx[i] += dy[i];
}

extern "C" void ist_cuda_quantize_backward(int64_t n, int bits, const float *scale, const float *x, const float *dy,
                                           float *dx) {
  if (n <= 0) return;
  const int pass_all = bits == 1 || bits >= QUANT_IDENTITY_BITS;
  IST_LAUNCH(quant_backward_kernel, ist_cuda_blocks(n, QUANT_THREADS, QUANT_MAX_BLOCKS), QUANT_THREADS, 0,
             ist_cuda_stream(), n, pass_all, scale, x, dy, dx);
  IST_CUDA_CHECK_LAUNCH("quantize_backward n=%lld bits=%d", (long long)n, bits);
}
