/* The baseline conv types of SPEC §6 (DSConv, BSConv-U, PENNI d = 2, CirCNN block 4) on the GPU
 * (twin of kernels/cpu/baseline_convs.c): a thread per weight entry builds W; the backward
 * gathers each parameter's gradient (a thread per parameter, or a block for PENNI's shared basis)
 * in a fixed order, so no atomics. Layouts in kernels/backend.h. */
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/ist_cuda.h"

namespace {
constexpr int kThreads = 256;
constexpr int kReduceThreads = 256;
constexpr int kMaxBlocks = 1 << 16;

#define GRID_STRIDE(i, total) \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (total); i += (int64_t)gridDim.x * blockDim.x)

/* p1 index of CirCNN's weight entry (o, c, t). */
__host__ __device__ int64_t circ_index(const ist_base_shape &b, int o, int c, int t) {
  const int nbc = b.ci / IST_CIRCNN_BLOCK, shift = ((o - c) % IST_CIRCNN_BLOCK + IST_CIRCNN_BLOCK) % IST_CIRCNN_BLOCK;
  return (((int64_t)(o / IST_CIRCNN_BLOCK) * nbc + c / IST_CIRCNN_BLOCK) * b.k2 + t) * IST_CIRCNN_BLOCK + shift;
}

__global__ void forward_kernel(ist_base_shape b, const float *p1, const float *p2, float *w) {
  GRID_STRIDE(i, (int64_t)b.co * b.ci * b.k2) {
    const int t = (int)(i % b.k2), c = (int)(i / b.k2 % b.ci), o = (int)(i / ((int64_t)b.k2 * b.ci));
    float v = 0.0f;
    switch (b.type) {
      case IST_BASE_DSCONV: v = p2[(int64_t)o * b.ci + c] * p1[(int64_t)c * b.k2 + t]; break;
      case IST_BASE_BSCONV: v = p1[(int64_t)o * b.k2 + t] * p2[(int64_t)o * b.ci + c]; break;
      case IST_BASE_PENNI:
        for (int d = 0; d < IST_PENNI_D; d++) v += p2[((int64_t)o * b.ci + c) * IST_PENNI_D + d] * p1[d * b.k2 + t];
        break;
      case IST_BASE_CIRCNN: v = p1[circ_index(b, o, c, t)]; break;
      default: break;
    }
    w[i] = v;
  }
}

/* DSConv: dp2[o, c] += Σ_t g·DW[c, t]; BSConv-U: dp2[o, c] += Σ_t g·DW[o, t];
 * PENNI: dp2[(o, c), d] += Σ_t g·B[d, t]. A thread per dp2 entry. */
__global__ void dp2_kernel(ist_base_shape b, const float *dw, const float *p1, float *dp2) {
  const int per = b.type == IST_BASE_PENNI ? IST_PENNI_D : 1;
  GRID_STRIDE(i, (int64_t)b.co * b.ci * per) {
    const int64_t oc = i / per;
    const int d = (int)(i % per), c = (int)(oc % b.ci), o = (int)(oc / b.ci);
    const float *g = dw + oc * b.k2;
    const float *basis = b.type == IST_BASE_DSCONV ? p1 + (int64_t)c * b.k2
                         : b.type == IST_BASE_BSCONV ? p1 + (int64_t)o * b.k2
                                                     : p1 + (int64_t)d * b.k2;
    float acc = 0.0f;
    for (int t = 0; t < b.k2; t++) acc += g[t] * basis[t];
    dp2[i] += acc;
  }
}

/* DSConv: dp1[c, t] += Σ_o g[o, c, t]·PW[o, c] (a thread per (c, t)). */
__global__ void dsconv_dp1_kernel(ist_base_shape b, const float *dw, const float *p2, float *dp1) {
  GRID_STRIDE(i, (int64_t)b.ci * b.k2) {
    const int t = (int)(i % b.k2), c = (int)(i / b.k2);
    float acc = 0.0f;
    for (int o = 0; o < b.co; o++) acc += dw[((int64_t)o * b.ci + c) * b.k2 + t] * p2[(int64_t)o * b.ci + c];
    dp1[i] += acc;
  }
}

/* BSConv-U: dp1[o, t] += Σ_c g[o, c, t]·PW[o, c] (a thread per (o, t)). */
__global__ void bsconv_dp1_kernel(ist_base_shape b, const float *dw, const float *p2, float *dp1) {
  GRID_STRIDE(i, (int64_t)b.co * b.k2) {
    const int t = (int)(i % b.k2), o = (int)(i / b.k2);
    float acc = 0.0f;
    for (int c = 0; c < b.ci; c++) acc += dw[((int64_t)o * b.ci + c) * b.k2 + t] * p2[(int64_t)o * b.ci + c];
    dp1[i] += acc;
  }
}

/* PENNI: dp1[d, t] += Σ_{o, c} g[o, c, t]·C[(o, c), d], a block per (d, t) summing co·ci terms in a
 * fixed tree order. */
__global__ void penni_dp1_kernel(ist_base_shape b, const float *dw, const float *p2, float *dp1) {
  IST_SHARED(float, red, kReduceThreads);
  const int d = (int)blockIdx.x / b.k2, t = (int)blockIdx.x % b.k2, tid = (int)threadIdx.x;
  float acc = 0.0f;
  for (int64_t oc = tid; oc < (int64_t)b.co * b.ci; oc += kReduceThreads)
    acc += dw[oc * b.k2 + t] * p2[oc * IST_PENNI_D + d];
  red[tid] = acc;
  __syncthreads();
  for (int half = kReduceThreads / 2; half > 0; half /= 2) {
    if (tid < half) red[tid] = red[tid] + red[tid + half];
    __syncthreads();
  }
  if (tid == 0) dp1[blockIdx.x] += red[0];
}

/* CirCNN: each p1 entry (ob, cb, t, shift) is shared by the block's 4 entries with (o − c) mod 4 =
 * shift; its gradient is their sum, over r = o mod 4 in order. */
__global__ void circnn_dp1_kernel(ist_base_shape b, const float *dw, float *dp1) {
  const int nbc = b.ci / IST_CIRCNN_BLOCK;
  GRID_STRIDE(i, (int64_t)b.co * b.ci * b.k2 / IST_CIRCNN_BLOCK) {
    const int shift = (int)(i % IST_CIRCNN_BLOCK), t = (int)(i / IST_CIRCNN_BLOCK % b.k2);
    const int64_t blk = i / ((int64_t)IST_CIRCNN_BLOCK * b.k2);
    const int cb = (int)(blk % nbc), ob = (int)(blk / nbc);
    float acc = 0.0f;
    for (int r = 0; r < IST_CIRCNN_BLOCK; r++) {
      const int o = ob * IST_CIRCNN_BLOCK + r, c = cb * IST_CIRCNN_BLOCK + (r - shift + IST_CIRCNN_BLOCK) % IST_CIRCNN_BLOCK;
      acc += dw[((int64_t)o * b.ci + c) * b.k2 + t];
    }
    dp1[i] += acc;
  }
}

const char *type_name(ist_base_type t) {
  switch (t) {
    case IST_BASE_DSCONV: return "DSConv";
    case IST_BASE_BSCONV: return "BSConv-U";
    case IST_BASE_PENNI: return "PENNI";
    case IST_BASE_CIRCNN: return "CirCNN";
    default: return "none";
  }
}
} // namespace

extern "C" void ist_cuda_baseline_forward(const ist_base_shape *b, const float *p1, const float *p2, float *w) {
  const int64_t total = (int64_t)b->co * b->ci * b->k2;
  IST_LAUNCH(forward_kernel, ist_cuda_blocks(total, kThreads, kMaxBlocks), kThreads, 0, ist_cuda_stream(), *b, p1, p2,
             w);
  IST_CUDA_CHECK_LAUNCH("baseline %s forward co=%d ci=%d k2=%d", type_name(b->type), b->co, b->ci, b->k2);
}

extern "C" void ist_cuda_baseline_backward(const ist_base_shape *b, const float *dw, const float *p1, const float *p2,
                                           float *dp1, float *dp2) {
  cudaStream_t st = ist_cuda_stream();
  const int64_t p1n = ist_base_p1_numel(b), p2n = ist_base_p2_numel(b);
  switch (b->type) {
    case IST_BASE_DSCONV:
      IST_LAUNCH(dsconv_dp1_kernel, ist_cuda_blocks(p1n, kThreads, kMaxBlocks), kThreads, 0, st, *b, dw, p2, dp1);
      break;
    case IST_BASE_BSCONV:
      IST_LAUNCH(bsconv_dp1_kernel, ist_cuda_blocks(p1n, kThreads, kMaxBlocks), kThreads, 0, st, *b, dw, p2, dp1);
      break;
    case IST_BASE_PENNI: IST_LAUNCH(penni_dp1_kernel, (unsigned)p1n, kReduceThreads, 0, st, *b, dw, p2, dp1); break;
    case IST_BASE_CIRCNN:
      IST_LAUNCH(circnn_dp1_kernel, ist_cuda_blocks(p1n, kThreads, kMaxBlocks), kThreads, 0, st, *b, dw, dp1);
      break;
    default: return;
  }
  IST_CUDA_CHECK_LAUNCH("baseline %s backward dp1 co=%d ci=%d k2=%d", type_name(b->type), b->co, b->ci, b->k2);
  if (p2n > 0) {
    IST_LAUNCH(dp2_kernel, ist_cuda_blocks(p2n, kThreads, kMaxBlocks), kThreads, 0, st, *b, dw, p1, dp2);
    IST_CUDA_CHECK_LAUNCH("baseline %s backward dp2 co=%d ci=%d k2=%d", type_name(b->type), b->co, b->ci, b->k2);
  }
}
