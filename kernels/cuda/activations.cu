/* Twins of kernels/cpu/activations.c: hardswish, hardsigmoid, SiLU, sigmoid, the SE channel
 * scale, dropout / stochastic depth and activation quantization. The scalar formulas are the
 * CPU's own (kernels/cpu/activations_math.h); grid-stride loops, one element per step. */
#include "kernels/cuda/ist_cuda.h"
/* after ist_cuda.h: the shared formulas need its __host__ __device__ */
#include "kernels/cpu/activations_math.h"
#include "kernels/cuda/activations.h"
#include "kernels/cuda/cuda_common.h"

#define ACT_THREADS 256
#define ACT_MAX_BLOCKS 4096

static unsigned act_blocks(int64_t n) { return ist_cuda_blocks(n, ACT_THREADS, ACT_MAX_BLOCKS); }

#define GRID_STRIDE(i, n) \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

/* An element-wise forward y = f(x) and backward dx = dy·f'(v) (v: x, or y for sigmoid). */
#define UNARY_OP(name, fwd_expr, grad_expr)                                                            \
  __global__ void name##_forward_kernel(int64_t n, const float *x, float *y) {                        \
    GRID_STRIDE(i, n) { const float v = x[i]; y[i] = (fwd_expr); }                                    \
  }                                                                                                    \
  __global__ void name##_backward_kernel(int64_t n, const float *dy, const float *in, float *dx) {    \
    GRID_STRIDE(i, n) { const float v = in[i]; dx[i] = dy[i] * (grad_expr); }                         \
  }                                                                                                    \
  extern "C" void ist_cuda_##name##_forward(int64_t n, const float *x, float *y) {                    \
    if (n <= 0) return;                                                                                \
    IST_LAUNCH(name##_forward_kernel, act_blocks(n), ACT_THREADS, 0, ist_cuda_stream(), n, x, y);     \
    IST_CUDA_CHECK_LAUNCH(#name "_forward n=%lld", (long long)n);                                     \
  }                                                                                                    \
  extern "C" void ist_cuda_##name##_backward(int64_t n, const float *dy, const float *in, float *dx) { \
    if (n <= 0) return;                                                                                \
    IST_LAUNCH(name##_backward_kernel, act_blocks(n), ACT_THREADS, 0, ist_cuda_stream(), n, dy, in, dx); \
    IST_CUDA_CHECK_LAUNCH(#name "_backward n=%lld", (long long)n);                                    \
  }

UNARY_OP(hardswish, ist_hardswish(v), ist_hardswish_grad(v))
UNARY_OP(hardsigmoid, ist_hardsigmoid(v), ist_hardsigmoid_grad(v))
UNARY_OP(silu, v *ist_sigmoid(v), ist_silu_grad(v))
UNARY_OP(sigmoid, ist_sigmoid(v), v *(1.0f - v))

__global__ void channel_scale_forward_kernel(int64_t total, int hw, const float *x, const float *s, float *y) {
  GRID_STRIDE(i, total) y[i] = x[i] * s[i / hw];
}

extern "C" void ist_cuda_channel_scale_forward(int n, int c, int hw, const float *x, const float *s, float *y) {
  const int64_t total = (int64_t)n * c * hw;
  if (total <= 0) return;
  IST_LAUNCH(channel_scale_forward_kernel, act_blocks(total), ACT_THREADS, 0, ist_cuda_stream(), total, hw, x, s, y);
  IST_CUDA_CHECK_LAUNCH("channel_scale_forward n=%d c=%d hw=%d", n, c, hw);
}

/* One block per (image, channel) plane: ds is a block sum in a fixed order (deterministic). */
__global__ void channel_scale_backward_kernel(int hw, const float *dy, const float *x, const float *s, float *dx,
                                              float *ds) {
  IST_SHARED(float, part, ACT_THREADS);
  const int64_t p = blockIdx.x;
  const float *dyp = dy + p * hw, *xp = x + p * hw;
  float acc = 0.0f;
  for (int i = threadIdx.x; i < hw; i += blockDim.x) {
    acc += dyp[i] * xp[i];
    if (dx) dx[p * hw + i] = dyp[i] * s[p];
  }
  part[threadIdx.x] = acc;
  __syncthreads();
  for (int w = ACT_THREADS / 2; w > 0; w >>= 1) {
    if ((int)threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) ds[p] = part[0];
}

extern "C" void ist_cuda_channel_scale_backward(int n, int c, int hw, const float *dy, const float *x, const float *s,
                                                float *dx, float *ds) {
  const int64_t planes = (int64_t)n * c;
  if (planes <= 0) return;
  IST_LAUNCH(channel_scale_backward_kernel, (unsigned)planes, ACT_THREADS, 0, ist_cuda_stream(), hw, dy, x, s, dx, ds);
  IST_CUDA_CHECK_LAUNCH("channel_scale_backward n=%d c=%d hw=%d", n, c, hw);
}

__global__ void channel_bias_forward_kernel(int64_t total, int c, int hw, float *y, const float *b) {
  GRID_STRIDE(i, total) y[i] += b[(i / hw) % c];
}

extern "C" void ist_cuda_channel_bias_forward(int n, int c, int hw, float *y, const float *b) {
  const int64_t total = (int64_t)n * c * hw;
  if (total <= 0) return;
  IST_LAUNCH(channel_bias_forward_kernel, act_blocks(total), ACT_THREADS, 0, ist_cuda_stream(), total, c, hw, y, b);
  IST_CUDA_CHECK_LAUNCH("channel_bias_forward n=%d c=%d hw=%d", n, c, hw);
}

/* One block per channel, a fixed-order block sum over its n·hw values. */
__global__ void channel_bias_backward_kernel(int n, int c, int hw, const float *dy, float *db) {
  IST_SHARED(float, part, ACT_THREADS);
  const int ch = blockIdx.x;
  float acc = 0.0f;
  for (int64_t j = threadIdx.x; j < (int64_t)n * hw; j += blockDim.x)
    acc += dy[((j / hw) * c + ch) * hw + j % hw];
  part[threadIdx.x] = acc;
  __syncthreads();
  for (int w = ACT_THREADS / 2; w > 0; w >>= 1) {
    if ((int)threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) db[ch] += part[0];
}

extern "C" void ist_cuda_channel_bias_backward(int n, int c, int hw, const float *dy, float *db) {
  if (n <= 0 || c <= 0) return;
  IST_LAUNCH(channel_bias_backward_kernel, (unsigned)c, ACT_THREADS, 0, ist_cuda_stream(), n, c, hw, dy, db);
  IST_CUDA_CHECK_LAUNCH("channel_bias_backward n=%d c=%d hw=%d", n, c, hw);
}

__global__ void dropout_kernel(int64_t n, int64_t group, float p, uint64_t seed, const float *x, float *y) {
  const float keep = 1.0f / (1.0f - p);
  GRID_STRIDE(i, n) y[i] = ist_dropout_kept(seed, i / group, p) ? x[i] * keep : 0.0f;
}

extern "C" void ist_cuda_dropout_forward(int64_t n, int64_t group, float p, uint64_t seed, const float *x, float *y) {
  if (n <= 0) return;
  IST_LAUNCH(dropout_kernel, act_blocks(n), ACT_THREADS, 0, ist_cuda_stream(), n, group, p, seed, x, y);
  IST_CUDA_CHECK_LAUNCH("dropout_forward n=%lld group=%lld p=%g", (long long)n, (long long)group, (double)p);
}

/* The same mask applied to dy. */
extern "C" void ist_cuda_dropout_backward(int64_t n, int64_t group, float p, uint64_t seed, const float *dy,
                                          float *dx) {
  if (n <= 0) return;
  IST_LAUNCH(dropout_kernel, act_blocks(n), ACT_THREADS, 0, ist_cuda_stream(), n, group, p, seed, dy, dx);
  IST_CUDA_CHECK_LAUNCH("dropout_backward n=%lld group=%lld p=%g", (long long)n, (long long)group, (double)p);
}

/* One block finds the batch's [min(0, x), max(0, x)] (min and max are exact in any order), writes
 * it to used_range and folds it into run_range; training only. */
__global__ void act_range_kernel(int64_t n, const float *x, float *run_range, float *used_range, float momentum) {
  IST_SHARED(float, lo, ACT_THREADS);
  IST_SHARED(float, hi, ACT_THREADS);
  float l = 0.0f, h = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    l = fminf(l, x[i]);
    h = fmaxf(h, x[i]);
  }
  lo[threadIdx.x] = l;
  hi[threadIdx.x] = h;
  __syncthreads();
  for (int w = ACT_THREADS / 2; w > 0; w >>= 1) {
    if ((int)threadIdx.x < w) {
      lo[threadIdx.x] = fminf(lo[threadIdx.x], lo[threadIdx.x + w]);
      hi[threadIdx.x] = fmaxf(hi[threadIdx.x], hi[threadIdx.x + w]);
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    used_range[0] = lo[0];
    used_range[1] = hi[0];
    ist_act_range_update(run_range, lo[0], hi[0], momentum);
  }
}

__global__ void act_range_copy_kernel(const float *run_range, float *used_range) {
  if (threadIdx.x == 0) {
    used_range[0] = run_range[0];
    used_range[1] = run_range[1];
  }
}

__global__ void act_quantize_kernel(int64_t n, int bits, const float *x, float *y, const float *used_range) {
  const float l = used_range[0], h = used_range[1];
  GRID_STRIDE(i, n) y[i] = ist_act_quantize(x[i], l, h, bits);
}

__global__ void act_copy_kernel(int64_t n, const float *x, float *y) {
  GRID_STRIDE(i, n) y[i] = x[i];
}

extern "C" void ist_cuda_act_quantize_forward(int64_t n, int bits, const float *x, float *y, float *run_range,
                                              float *used_range, float momentum, int training) {
  if (n <= 0) return;
  cudaStream_t st = ist_cuda_stream();
  if (bits >= 32) {
    if (y != x) IST_LAUNCH(act_copy_kernel, act_blocks(n), ACT_THREADS, 0, st, n, x, y);
  } else {
    if (training) IST_LAUNCH(act_range_kernel, 1, ACT_THREADS, 0, st, n, x, run_range, used_range, momentum);
    else IST_LAUNCH(act_range_copy_kernel, 1, 32, 0, st, run_range, used_range);
    IST_LAUNCH(act_quantize_kernel, act_blocks(n), ACT_THREADS, 0, st, n, bits, x, y, used_range);
  }
  IST_CUDA_CHECK_LAUNCH("act_quantize_forward n=%lld bits=%d training=%d", (long long)n, bits, training);
}

__global__ void act_quantize_backward_kernel(int64_t n, int bits, const float *used_range, const float *x,
                                             const float *dy, float *dx) {
  const float l = used_range[0], h = used_range[1];
  GRID_STRIDE(i, n) dx[i] = bits >= 32 || (x[i] >= l && x[i] <= h) ? dy[i] : 0.0f;
}

extern "C" void ist_cuda_act_quantize_backward(int64_t n, int bits, const float *used_range, const float *x,
                                               const float *dy, float *dx) {
  if (n <= 0) return;
  IST_LAUNCH(act_quantize_backward_kernel, act_blocks(n), ACT_THREADS, 0, ist_cuda_stream(), n, bits, used_range, x,
             dy, dx);
  IST_CUDA_CHECK_LAUNCH("act_quantize_backward n=%lld bits=%d", (long long)n, bits);
}
