/* Elementwise ops (twins of kernels/cpu/add.c and relu.c): channel-slice copies, sum, scale,
 * ReLU and ReLU6. Grid-stride loops, one element per step, the CPU's expressions exactly. */
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/ist_cuda.h"

#define EW_THREADS 256
/* Enough blocks to fill a GPU several times over; grid-stride loops cover larger tensors. */
#define EW_MAX_BLOCKS 4096
#define RELU6_CAP 6.0f

static unsigned ew_blocks(int64_t n) { return ist_cuda_blocks(n, EW_THREADS, EW_MAX_BLOCKS); }

#define GRID_STRIDE(i, n) \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

/* Element i of the (n, c, hw) slice ↔ its place in src (src_c channels) and dst (dst_c channels). */
static __global__ void copy_channels_kernel(int64_t total, int64_t len, int hw, const float *src, int src_c, int src_off,
                                     float *dst, int dst_c, int dst_off, int accumulate) {
  GRID_STRIDE(i, total) {
    const int64_t b = i / len, r = i % len;
    const float v = src[(b * src_c + src_off) * hw + r];
    float *d = dst + (b * dst_c + dst_off) * hw + r;
    *d = accumulate ? *d + v : v;
  }
}

extern "C" void ist_cuda_copy_channels(int n, int hw, int c, const float *src, int src_c, int src_off, float *dst,
                                       int dst_c, int dst_off, int accumulate) {
  const int64_t len = (int64_t)c * hw, total = len * n;
  if (total <= 0) return;
  IST_LAUNCH(copy_channels_kernel, ew_blocks(total), EW_THREADS, 0, ist_cuda_stream(), total, len, hw, src, src_c,
             src_off, dst, dst_c, dst_off, accumulate);
  IST_CUDA_CHECK_LAUNCH("copy_channels n=%d hw=%d c=%d src_c=%d+%d dst_c=%d+%d", n, hw, c, src_c, src_off, dst_c,
                        dst_off);
}

static __global__ void add_kernel(int64_t n, const float *a, const float *b, float *y) {
  GRID_STRIDE(i, n) y[i] = a[i] + b[i];
}

extern "C" void ist_cuda_add(int64_t n, const float *a, const float *b, float *y) {
  if (n <= 0) return;
  IST_LAUNCH(add_kernel, ew_blocks(n), EW_THREADS, 0, ist_cuda_stream(), n, a, b, y);
  IST_CUDA_CHECK_LAUNCH("add n=%lld", (long long)n);
}

static __global__ void scale_kernel(int64_t n, float a, float *x) {
  GRID_STRIDE(i, n) x[i] *= a;
}

extern "C" void ist_cuda_scale(int64_t n, float a, float *x) {
  if (n <= 0) return;
  IST_LAUNCH(scale_kernel, ew_blocks(n), EW_THREADS, 0, ist_cuda_stream(), n, a, x);
  IST_CUDA_CHECK_LAUNCH("scale n=%lld", (long long)n);
}

static __global__ void relu_forward_kernel(int64_t n, const float *x, float *y) {
  GRID_STRIDE(i, n) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

/* y > 0 exactly where x > 0 (as the CPU: the backward reads the output). */
static __global__ void relu_backward_kernel(int64_t n, const float *dy, const float *y, float *dx) {
  GRID_STRIDE(i, n) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

static __global__ void relu6_forward_kernel(int64_t n, const float *x, float *y) {
  GRID_STRIDE(i, n) y[i] = x[i] > 0.0f ? (x[i] < RELU6_CAP ? x[i] : RELU6_CAP) : 0.0f;
}

static __global__ void relu6_backward_kernel(int64_t n, const float *dy, const float *y, float *dx) {
  GRID_STRIDE(i, n) dx[i] = y[i] > 0.0f && y[i] < RELU6_CAP ? dy[i] : 0.0f;
}

extern "C" void ist_cuda_relu_forward(int64_t n, const float *x, float *y) {
  if (n <= 0) return;
  IST_LAUNCH(relu_forward_kernel, ew_blocks(n), EW_THREADS, 0, ist_cuda_stream(), n, x, y);
  IST_CUDA_CHECK_LAUNCH("relu_forward n=%lld", (long long)n);
}

extern "C" void ist_cuda_relu_backward(int64_t n, const float *dy, const float *y, float *dx) {
  if (n <= 0) return;
  IST_LAUNCH(relu_backward_kernel, ew_blocks(n), EW_THREADS, 0, ist_cuda_stream(), n, dy, y, dx);
  IST_CUDA_CHECK_LAUNCH("relu_backward n=%lld", (long long)n);
}

extern "C" void ist_cuda_relu6_forward(int64_t n, const float *x, float *y) {
  if (n <= 0) return;
  IST_LAUNCH(relu6_forward_kernel, ew_blocks(n), EW_THREADS, 0, ist_cuda_stream(), n, x, y);
  IST_CUDA_CHECK_LAUNCH("relu6_forward n=%lld", (long long)n);
}

extern "C" void ist_cuda_relu6_backward(int64_t n, const float *dy, const float *y, float *dx) {
  if (n <= 0) return;
  IST_LAUNCH(relu6_backward_kernel, ew_blocks(n), EW_THREADS, 0, ist_cuda_stream(), n, dy, y, dx);
  IST_CUDA_CHECK_LAUNCH("relu6_backward n=%lld", (long long)n);
}
