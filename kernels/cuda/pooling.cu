/* Pooling (twins of kernels/cpu/avgpool.c and maxpool.c): adaptive average pooling with PyTorch's
 * bins, and max pooling where padding never wins. Every output is the CPU's, bit for bit: the same
 * sums in the same order (the backwards gather per input cell, in the order the CPU scatters). */
#include <float.h>

#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/ist_cuda.h"

#define POOL_THREADS 256
#define POOL_MAX_BLOCKS 4096

#define GRID_STRIDE(i, n) \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

/* PyTorch's adaptive bins: [floor(i·in/out), ceil((i+1)·in/out)). */
static __device__ __forceinline__ int bin_start(int i, int in, int out) { return (i * in) / out; }
static __device__ __forceinline__ int bin_end(int i, int in, int out) { return ((i + 1) * in + out - 1) / out; }
/* The first bin whose end lies past cell p: end(i) > p ⟺ (i+1)·in > p·out. */
static __device__ __forceinline__ int first_bin_after(int p, int in, int out) { return (p * out) / in; }

static __global__ void avgpool_forward_kernel(int64_t total, int h, int w, int oh, int ow, const float *x, float *y) {
  GRID_STRIDE(o, total) {
    const int64_t pc = o / ((int64_t)oh * ow);
    const int i = (int)(o / ow % oh), j = (int)(o % ow);
    const float *xp = x + pc * h * w;
    const int y0 = bin_start(i, h, oh), y1 = bin_end(i, h, oh), x0 = bin_start(j, w, ow), x1 = bin_end(j, w, ow);
    float s = 0;
    for (int yy = y0; yy < y1; yy++)
      for (int xx = x0; xx < x1; xx++) s += xp[yy * w + xx];
    y[o] = s / (float)((y1 - y0) * (x1 - x0));
  }
}

/* Per input cell: the bins holding it, in the CPU's (i, j) order, each adding dy / bin size. */
static __global__ void avgpool_backward_kernel(int64_t total, int h, int w, int oh, int ow, const float *dy, float *dx) {
  GRID_STRIDE(o, total) {
    const int64_t pc = o / ((int64_t)h * w);
    const int yy = (int)(o / w % h), xx = (int)(o % w);
    const float *gp = dy + pc * oh * ow;
    float acc = 0;
    for (int i = first_bin_after(yy, h, oh); i < oh && bin_start(i, h, oh) <= yy; i++) {
      const int y0 = bin_start(i, h, oh), y1 = bin_end(i, h, oh);
      for (int j = first_bin_after(xx, w, ow); j < ow && bin_start(j, w, ow) <= xx; j++) {
        const int x0 = bin_start(j, w, ow), x1 = bin_end(j, w, ow);
        acc += gp[i * ow + j] / (float)((y1 - y0) * (x1 - x0));
      }
    }
    dx[o] = acc;
  }
}

extern "C" void ist_cuda_avgpool_forward(int n, int c, int h, int w, int oh, int ow, const float *x, float *y) {
  const int64_t total = (int64_t)n * c * oh * ow;
  if (total <= 0) return;
  IST_LAUNCH(avgpool_forward_kernel, ist_cuda_blocks(total, POOL_THREADS, POOL_MAX_BLOCKS), POOL_THREADS, 0,
             ist_cuda_stream(), total, h, w, oh, ow, x, y);
  IST_CUDA_CHECK_LAUNCH("avgpool_forward n=%d c=%d %dx%d -> %dx%d", n, c, h, w, oh, ow);
}

extern "C" void ist_cuda_avgpool_backward(int n, int c, int h, int w, int oh, int ow, const float *dy, float *dx) {
  const int64_t total = (int64_t)n * c * h * w;
  if (total <= 0) return;
  IST_LAUNCH(avgpool_backward_kernel, ist_cuda_blocks(total, POOL_THREADS, POOL_MAX_BLOCKS), POOL_THREADS, 0,
             ist_cuda_stream(), total, h, w, oh, ow, dy, dx);
  IST_CUDA_CHECK_LAUNCH("avgpool_backward n=%d c=%d %dx%d <- %dx%d", n, c, h, w, oh, ow);
}

/* The CPU's scan: row-major over the window, the first cell wins, a later one only when greater. */
static __global__ void maxpool_forward_kernel(int64_t total, int h, int w, int k, int stride, int pad, int oh, int ow,
                                       const float *x, float *y, int32_t *idx) {
  GRID_STRIDE(o, total) {
    const int64_t pc = o / ((int64_t)oh * ow);
    const int i = (int)(o / ow % oh), j = (int)(o % ow);
    const float *xp = x + pc * h * w;
    float best = -FLT_MAX;
    int32_t at = -1;
    for (int ky = 0; ky < k; ky++) {
      const int iy = i * stride - pad + ky;
      if (iy < 0 || iy >= h) continue;
      for (int kx = 0; kx < k; kx++) {
        const int ix = j * stride - pad + kx;
        if (ix < 0 || ix >= w) continue;
        const float v = xp[iy * w + ix];
        if (at < 0 || v > best) best = v, at = iy * w + ix;
      }
    }
    y[o] = best;
    idx[o] = at;
  }
}

/* One thread per plane adds its outputs' gradients to their winners in output order, as the CPU:
 * deterministic, no atomics (the window geometry, which a gather per input cell would need, is not
 * an argument of the backward). dx was zeroed before. */
static __global__ void maxpool_backward_kernel(int64_t planes, int h, int w, int oh, int ow, const float *dy,
                                        const int32_t *idx, float *dx) {
  GRID_STRIDE(pc, planes) {
    float *dp = dx + pc * h * w;
    for (int64_t o = pc * oh * ow; o < (pc + 1) * oh * ow; o++) dp[idx[o]] += dy[o];
  }
}

extern "C" void ist_cuda_maxpool_forward(int n, int c, int h, int w, int k, int stride, int pad, const float *x,
                                         float *y, int32_t *idx) {
  const int oh = ist_pool_out(h, k, stride, pad), ow = ist_pool_out(w, k, stride, pad);
  const int64_t total = (int64_t)n * c * oh * ow;
  if (total <= 0) return;
  IST_LAUNCH(maxpool_forward_kernel, ist_cuda_blocks(total, POOL_THREADS, POOL_MAX_BLOCKS), POOL_THREADS, 0,
             ist_cuda_stream(), total, h, w, k, stride, pad, oh, ow, x, y, idx);
  IST_CUDA_CHECK_LAUNCH("maxpool_forward n=%d c=%d %dx%d k=%d stride=%d pad=%d", n, c, h, w, k, stride, pad);
}

extern "C" void ist_cuda_maxpool_backward(int n, int c, int h, int w, int oh, int ow, const float *dy,
                                          const int32_t *idx, float *dx) {
  const int64_t planes = (int64_t)n * c;
  if (planes <= 0 || (int64_t)h * w <= 0) return;
  IST_CUDA_CHECK(cudaMemsetAsync(dx, 0, sizeof(float) * (size_t)(planes * h * w), ist_cuda_stream()),
                 "maxpool_backward n=%d c=%d %dx%d <- %dx%d", n, c, h, w, oh, ow);
  IST_LAUNCH(maxpool_backward_kernel, ist_cuda_blocks(planes, POOL_THREADS, POOL_MAX_BLOCKS), POOL_THREADS, 0,
             ist_cuda_stream(), planes, h, w, oh, ow, dy, idx, dx);
  IST_CUDA_CHECK_LAUNCH("maxpool_backward n=%d c=%d %dx%d <- %dx%d", n, c, h, w, oh, ow);
}
