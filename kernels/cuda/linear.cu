/* Fully-connected layer on the GPU (twin of kernels/cpu/linear.c): y = x·Wᵀ + b through cuBLAS,
 * with small kernels for the bias and its gradient (a fixed-order sum per output). */
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/ist_cuda.h"

namespace {
constexpr int kThreads = 256;
constexpr int kMaxBlocks = 1 << 16;

/* y[i, o] += b[o] */
__global__ void bias_add_kernel(int64_t total, int out, const float *b, float *y) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x)
    y[i] += b[i % out];
}

/* db[o] += Σ_i dy[i, o], rows summed in order (a thread per output; n is a batch, small). */
__global__ void bias_grad_kernel(int n, int out, const float *dy, float *db) {
  for (int o = blockIdx.x * blockDim.x + threadIdx.x; o < out; o += gridDim.x * blockDim.x) {
    float acc = 0.0f;
    for (int i = 0; i < n; i++) acc += dy[(int64_t)i * out + o];
    db[o] += acc;
  }
}
} // namespace

extern "C" void ist_cuda_linear_forward(int n, int in, int out, const float *x, const float *w, const float *b,
                                        float *y) {
  ist_cuda_gemm("linear forward", 0, 1, n, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
  if (b) {
    const int64_t total = (int64_t)n * out;
    IST_LAUNCH(bias_add_kernel, ist_cuda_blocks(total, kThreads, kMaxBlocks), kThreads, 0, ist_cuda_stream(), total,
               out, b, y);
    IST_CUDA_CHECK_LAUNCH("linear bias n=%d out=%d", n, out);
  }
}

extern "C" void ist_cuda_linear_backward(int n, int in, int out, const float *dy, const float *x, const float *w,
                                         float *dx, float *dw, float *db) {
  ist_cuda_gemm("linear backward dW", 1, 0, out, in, n, 1.0f, dy, out, x, in, 1.0f, dw, in); /* dW += dyᵀ·x */
  if (db) {
    IST_LAUNCH(bias_grad_kernel, ist_cuda_blocks(out, kThreads, kMaxBlocks), kThreads, 0, ist_cuda_stream(), n, out,
               dy, db);
    IST_CUDA_CHECK_LAUNCH("linear bias gradient n=%d out=%d", n, out);
  }
  if (dx) ist_cuda_gemm("linear backward dx", 0, 0, n, in, out, 1.0f, dy, out, w, in, 0.0f, dx, in); /* dx = dy·W */
}
