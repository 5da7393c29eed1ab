/* Dense and grouped 2-D convolution on the GPU (twin of kernels/cpu/conv2d.c and conv2d_grouped.c).
 * Two implementations behind one entry point (conv2d.h picks):
 *  - our own kernels, always available: an implicit-GEMM tiled SIMT kernel for the forward
 *    (M = n·ho·wo, N = cog, K = cig·k²), the backward-data (the transposed problem over input pixels)
 *    and the backward-filter (dW = dyᵀ·im2col(x), split over pixel slices into scratch and summed
 *    in a fixed order, so no float atomics and the same bits every run), and direct kernels for
 *    convs with one output channel per group (depthwise, the factored generator's level-1 stage);
 *  - cuDNN (real GPUs only), with the algorithms chosen once per shape by ist_cuda_conv_ws_floats.
 * The bias and its gradient are our kernels on both paths (fixed-order sums). */
#include <stdint.h>
#include <string.h>

#include "kernels/cuda/conv2d.h"
#include "kernels/cuda/conv_index.h"
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/ist_cuda.h"

#if IST_CUDA_REAL
#include <cudnn.h>
#endif

namespace {

/* ---- Tiling of the implicit GEMM: a block of 16 × 16 threads computes a 64 × 64 tile of C, each
 * thread a 4 × 4 micro-tile (rows ty + 16i, columns tx + 16j), stepping K by 8 through shared
 * memory. */
constexpr int kTileM = 64, kTileN = 64, kTileK = 8;
constexpr int kThreadsX = 16, kThreadsY = 16, kThreads = kThreadsX * kThreadsY;
constexpr int kMicroM = kTileM / kThreadsY, kMicroN = kTileN / kThreadsX;
static_assert(kTileM * kTileK % kThreads == 0 && kTileN * kTileK % kThreads == 0, "tile loads divide evenly");

/* Backward-filter split: the reduction over n·ho·wo pixels is cut into slices of at least this
 * many pixels, each slice's partial dW going to scratch, as long as the partials fit in
 * kWgradScratchFloats floats. */
constexpr int kWgradPixelsPerSlice = 2048;
constexpr int64_t kWgradScratchFloats = (int64_t)1 << 23;
constexpr int kMaxGridY = 65535;

/* Threads per block of the elementwise/direct kernels and of the per-channel reductions. */
constexpr int kDirectThreads = 256;
constexpr int kReduceThreads = 256;
constexpr int kMaxBlocks = 1 << 16;

__host__ __device__ int groups_of(const ist_conv_shape *s) { return s->groups > 1 ? s->groups : 1; }

/* Slices of the backward-filter reduction; 1 means dW is accumulated in place (no scratch). */
int wgrad_slices(const ist_conv_shape *s) {
  const int64_t pixels = (int64_t)s->n * s->ho * s->wo, wn = ist_conv_weight_numel(s);
  int64_t slices = (pixels + kWgradPixelsPerSlice - 1) / kWgradPixelsPerSlice;
  const int64_t fit = kWgradScratchFloats / (wn > 0 ? wn : 1);
  if (slices > fit) slices = fit;
  if (slices > kMaxGridY / groups_of(s)) slices = kMaxGridY / groups_of(s);
  return slices < 1 ? 1 : (int)slices;
}

/* Whether the conv runs the direct kernels (one output channel per group: a GEMM with N = 1
 * would waste the tile). */
bool use_direct(const ist_conv_shape *s) { return s->co / groups_of(s) == 1; }

size_t own_ws_floats(const ist_conv_shape *s) {
  if (use_direct(s)) return 0;
  const int slices = wgrad_slices(s);
  return slices > 1 ? (size_t)slices * (size_t)ist_conv_weight_numel(s) : 0;
}

/* ---- The three GEMM problems. Each gives, for group grp, the A (M × K) and B (K × N) entries the
 * tile loader needs and where a C entry goes; K is cut into [k_begin, k_end) slices by blockIdx.z
 * (z = slice · groups + grp). */
struct FwdProblem {
  ist_conv_shape s;
  const float *x, *w, *bias;
  float *y;
  __device__ float a(int grp, int m, int kk) const {
    const int64_t off = ist_conv_im2col_offset(&s, grp, m, kk);
    return off < 0 ? 0.0f : x[off];
  }
  __device__ float b(int grp, int kk, int n) const {
    const int cog = s.co / groups_of(&s), kw = s.ci / groups_of(&s) * s.k * s.k;
    return w[(int64_t)(grp * cog + n) * kw + kk];
  }
  __device__ void store(int, int grp, int m, int n, float v) const {
    const int o = grp * (s.co / groups_of(&s)) + n;
    const ist_conv_pixel p = ist_conv_pixel_of(m, s.ho, s.wo);
    y[ist_conv_y_offset(&s, p.b, o, p.y, p.x)] = bias ? v + bias[o] : v;
  }
};

struct DgradProblem {
  ist_conv_shape s;
  const float *dy, *w;
  float *dx;
  __device__ float a(int grp, int m, int kk) const {
    const int64_t off = ist_conv_col2im_offset(&s, grp, m, kk);
    return off < 0 ? 0.0f : dy[off];
  }
  __device__ float b(int grp, int kk, int n) const {
    const int cog = s.co / groups_of(&s), k2 = s.k * s.k;
    const int o = kk / k2, t = kk % k2;
    return w[ist_conv_w_offset(&s, grp * cog + o, n, t / s.k, t % s.k)];
  }
  __device__ void store(int, int grp, int m, int n, float v) const {
    const ist_conv_pixel p = ist_conv_pixel_of(m, s.h, s.w);
    dx[ist_conv_x_offset(&s, p.b, grp * (s.ci / groups_of(&s)) + n, p.y, p.x)] = v;
  }
};

/* dW (cog × cig·k² per group) = dyᵀ (cog × pixels) · im2col(x) (pixels × cig·k²). */
struct WgradProblem {
  ist_conv_shape s;
  const float *dy, *x;
  float *dw;      /* accumulated when there is one slice */
  float *partial; /* slices × co × cig·k², when there are several */
  __device__ float a(int grp, int m, int kk) const {
    const ist_conv_pixel p = ist_conv_pixel_of(kk, s.ho, s.wo);
    return dy[ist_conv_y_offset(&s, p.b, grp * (s.co / groups_of(&s)) + m, p.y, p.x)];
  }
  __device__ float b(int grp, int kk, int n) const {
    const int64_t off = ist_conv_im2col_offset(&s, grp, kk, n);
    return off < 0 ? 0.0f : x[off];
  }
  __device__ void store(int slice, int grp, int m, int n, float v) const {
    const int cog = s.co / groups_of(&s), kw = s.ci / groups_of(&s) * s.k * s.k;
    const int64_t i = (int64_t)(grp * cog + m) * kw + n;
    if (partial) partial[(int64_t)slice * s.co * kw + i] = v;
    else dw[i] += v;
  }
};

/* C tile (blockIdx.x over M, blockIdx.y over N) of group z % groups over the K slice z / groups. */
template <class P>
__global__ void conv_gemm_kernel(P p, int M, int N, int K, int groups, int k_slice) {
  IST_SHARED(float, as, kTileK * kTileM);
  IST_SHARED(float, bs, kTileK * kTileN);
  const int grp = (int)blockIdx.z % groups, slice = (int)blockIdx.z / groups;
  const int m0 = (int)blockIdx.x * kTileM, n0 = (int)blockIdx.y * kTileN;
  const int k_begin = slice * k_slice, k_end = K < k_begin + k_slice ? K : k_begin + k_slice;
  const int tid = (int)threadIdx.x, tx = tid % kThreadsX, ty = tid / kThreadsX;
  float acc[kMicroM][kMicroN] = {};
  for (int k0 = k_begin; k0 < k_end; k0 += kTileK) {
    for (int e = tid; e < kTileK * kTileM; e += kThreads) {
      const int kl = e / kTileM, ml = e % kTileM, m = m0 + ml, kk = k0 + kl;
      as[kl * kTileM + ml] = (m < M && kk < k_end) ? p.a(grp, m, kk) : 0.0f;
    }
    for (int e = tid; e < kTileK * kTileN; e += kThreads) {
      const int kl = e / kTileN, nl = e % kTileN, n = n0 + nl, kk = k0 + kl;
      bs[kl * kTileN + nl] = (n < N && kk < k_end) ? p.b(grp, kk, n) : 0.0f;
    }
    __syncthreads();
    for (int kl = 0; kl < kTileK; kl++) {
      float av[kMicroM], bv[kMicroN];
      for (int i = 0; i < kMicroM; i++) av[i] = as[kl * kTileM + ty + kThreadsY * i];
      for (int j = 0; j < kMicroN; j++) bv[j] = bs[kl * kTileN + tx + kThreadsX * j];
      for (int i = 0; i < kMicroM; i++)
        for (int j = 0; j < kMicroN; j++) acc[i][j] += av[i] * bv[j];
    }
    __syncthreads();
  }
  for (int i = 0; i < kMicroM; i++)
    for (int j = 0; j < kMicroN; j++) {
      const int m = m0 + ty + kThreadsY * i, n = n0 + tx + kThreadsX * j;
      if (m < M && n < N) p.store(slice, grp, m, n, acc[i][j]);
    }
}

template <class P>
void launch_gemm(const P &p, int M, int N, int K, int groups, int slices, const char *what, const ist_conv_shape *s) {
  if (M <= 0 || N <= 0) return;
  int k_slice = (K + slices - 1) / slices;
  k_slice = (k_slice + kTileK - 1) / kTileK * kTileK;
  const dim3 grid((unsigned)((M + kTileM - 1) / kTileM), (unsigned)((N + kTileN - 1) / kTileN),
                  (unsigned)(groups * slices));
  IST_LAUNCH(conv_gemm_kernel<P>, grid, dim3(kThreads), 0, ist_cuda_stream(), p, M, N, K, groups, k_slice);
  IST_CUDA_CHECK_LAUNCH("conv2d %s n=%d ci=%d %dx%d co=%d k=%d s=%d p=%d g=%d", what, s->n, s->ci, s->h, s->w, s->co,
                        s->k, s->stride, s->pad, groups_of(s));
}

/* dw[i] += Σ_slice partial[slice·wn + i], slices summed in order. */
__global__ void wgrad_reduce_kernel(const float *partial, int slices, int64_t wn, float *dw) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < wn; i += (int64_t)gridDim.x * blockDim.x) {
    float acc = 0.0f;
    for (int t = 0; t < slices; t++) acc += partial[(int64_t)t * wn + i];
    dw[i] += acc;
  }
}

/* ---- Direct kernels for one output channel per group (cog = 1): a thread per output, a thread
 * per input gradient, and a block per weight gradient. */
__global__ void direct_forward_kernel(ist_conv_shape s, const float *x, const float *w, const float *bias, float *y) {
  const int cig = s.ci / groups_of(&s), cog = s.co / groups_of(&s);
  const int64_t total = (int64_t)s.n * s.co * s.ho * s.wo;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int ox = (int)(i % s.wo), oy = (int)(i / s.wo % s.ho), o = (int)(i / ((int64_t)s.wo * s.ho) % s.co);
    const int b = (int)(i / ((int64_t)s.wo * s.ho * s.co)), c0 = o / cog * cig;
    float acc = 0.0f;
    for (int c = 0; c < cig; c++)
      for (int ky = 0; ky < s.k; ky++) {
        const int iy = ist_conv_in_coord(oy, ky, s.stride, s.pad);
        if (!ist_conv_inside(iy, s.h)) continue;
        for (int kx = 0; kx < s.k; kx++) {
          const int ix = ist_conv_in_coord(ox, kx, s.stride, s.pad);
          if (ist_conv_inside(ix, s.w))
            acc += x[ist_conv_x_offset(&s, b, c0 + c, iy, ix)] * w[ist_conv_w_offset(&s, o, c, ky, kx)];
        }
      }
    y[i] = bias ? acc + bias[o] : acc;
  }
}

__global__ void direct_dgrad_kernel(ist_conv_shape s, const float *dy, const float *w, float *dx) {
  const int cig = s.ci / groups_of(&s), cog = s.co / groups_of(&s);
  const int64_t total = (int64_t)s.n * s.ci * s.h * s.w;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int ix = (int)(i % s.w), iy = (int)(i / s.w % s.h), cin = (int)(i / ((int64_t)s.w * s.h) % s.ci);
    const int b = (int)(i / ((int64_t)s.w * s.h * s.ci)), grp = cin / cig, c = cin % cig;
    float acc = 0.0f;
    for (int o = grp * cog; o < (grp + 1) * cog; o++)
      for (int ky = 0; ky < s.k; ky++) {
        const int oy = ist_conv_out_coord(iy, ky, s.stride, s.pad, s.ho);
        if (oy < 0) continue;
        for (int kx = 0; kx < s.k; kx++) {
          const int ox = ist_conv_out_coord(ix, kx, s.stride, s.pad, s.wo);
          if (ox >= 0) acc += dy[ist_conv_y_offset(&s, b, o, oy, ox)] * w[ist_conv_w_offset(&s, o, c, ky, kx)];
        }
      }
    dx[i] = acc;
  }
}

/* Sum of kReduceThreads per-thread values in shared memory, in a fixed tree order; thread 0 gets it. */
__device__ float block_sum(ist_sptr<float> red, float v) {
  const int tid = (int)threadIdx.x;
  red[tid] = v;
  __syncthreads();
  for (int half = kReduceThreads / 2; half > 0; half /= 2) {
    if (tid < half) red[tid] = red[tid] + red[tid + half];
    __syncthreads();
  }
  return red[0];
}

/* Block per weight (o, c, ky, kx): dw += Σ over images and output pixels of dy · x. */
__global__ void direct_wgrad_kernel(ist_conv_shape s, const float *dy, const float *x, float *dw) {
  IST_SHARED(float, red, kReduceThreads);
  const int cig = s.ci / groups_of(&s), cog = s.co / groups_of(&s), k2 = s.k * s.k;
  const int64_t wi = blockIdx.x;
  const int t = (int)(wi % k2), c = (int)(wi / k2 % cig), o = (int)(wi / ((int64_t)k2 * cig));
  const int ky = t / s.k, kx = t % s.k, cin = o / cog * cig + c;
  const int64_t pixels = (int64_t)s.n * s.ho * s.wo;
  float acc = 0.0f;
  for (int64_t m = threadIdx.x; m < pixels; m += kReduceThreads) {
    const ist_conv_pixel p = ist_conv_pixel_of((int)m, s.ho, s.wo);
    const int iy = ist_conv_in_coord(p.y, ky, s.stride, s.pad), ix = ist_conv_in_coord(p.x, kx, s.stride, s.pad);
    if (ist_conv_inside(iy, s.h) && ist_conv_inside(ix, s.w))
      acc += dy[ist_conv_y_offset(&s, p.b, o, p.y, p.x)] * x[ist_conv_x_offset(&s, p.b, cin, iy, ix)];
  }
  const float sum = block_sum(red, acc);
  if (threadIdx.x == 0) dw[wi] += sum;
}

/* Block per output channel: dbias[o] += Σ over images and pixels of dy. */
__global__ void bias_grad_kernel(int n, int co, int hw, const float *dy, float *dbias) {
  IST_SHARED(float, red, kReduceThreads);
  const int o = (int)blockIdx.x;
  float acc = 0.0f;
  for (int64_t i = threadIdx.x; i < (int64_t)n * hw; i += kReduceThreads)
    acc += dy[((i / hw) * co + o) * hw + i % hw];
  const float sum = block_sum(red, acc);
  if (threadIdx.x == 0) dbias[o] += sum;
}

/* y[b, o, p] += bias[o] (the cuDNN path's bias). */
__global__ void bias_add_kernel(int64_t total, int co, int hw, const float *bias, float *y) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x)
    y[i] += bias[i / hw % co];
}

void own_forward(const ist_conv_shape *s, const float *x, const float *w, const float *bias, float *y) {
  if (use_direct(s)) {
    const int64_t total = (int64_t)s->n * s->co * s->ho * s->wo;
    IST_LAUNCH(direct_forward_kernel, ist_cuda_blocks(total, kDirectThreads, kMaxBlocks), kDirectThreads, 0,
               ist_cuda_stream(), *s, x, w, bias, y);
    IST_CUDA_CHECK_LAUNCH("conv2d direct forward n=%d ci=%d %dx%d co=%d k=%d s=%d p=%d g=%d", s->n, s->ci, s->h, s->w,
                          s->co, s->k, s->stride, s->pad, groups_of(s));
    return;
  }
  const int g = groups_of(s);
  const FwdProblem p = {*s, x, w, bias, y};
  launch_gemm(p, s->n * s->ho * s->wo, s->co / g, s->ci / g * s->k * s->k, g, 1, "forward", s);
}

void own_backward_data(const ist_conv_shape *s, const float *dy, const float *w, float *dx) {
  if (use_direct(s)) {
    const int64_t total = (int64_t)s->n * s->ci * s->h * s->w;
    IST_LAUNCH(direct_dgrad_kernel, ist_cuda_blocks(total, kDirectThreads, kMaxBlocks), kDirectThreads, 0,
               ist_cuda_stream(), *s, dy, w, dx);
    IST_CUDA_CHECK_LAUNCH("conv2d direct backward-data n=%d ci=%d %dx%d co=%d k=%d s=%d p=%d g=%d", s->n, s->ci, s->h,
                          s->w, s->co, s->k, s->stride, s->pad, groups_of(s));
    return;
  }
  const int g = groups_of(s);
  const DgradProblem p = {*s, dy, w, dx};
  launch_gemm(p, s->n * s->h * s->w, s->ci / g, s->co / g * s->k * s->k, g, 1, "backward-data", s);
}

void own_backward_filter(const ist_conv_shape *s, const float *dy, const float *x, float *dw, float *ws) {
  const int64_t wn = ist_conv_weight_numel(s);
  if (use_direct(s)) {
    IST_LAUNCH(direct_wgrad_kernel, (unsigned)wn, kReduceThreads, 0, ist_cuda_stream(), *s, dy, x, dw);
    IST_CUDA_CHECK_LAUNCH("conv2d direct backward-filter n=%d ci=%d %dx%d co=%d k=%d s=%d p=%d g=%d", s->n, s->ci, s->h,
                          s->w, s->co, s->k, s->stride, s->pad, groups_of(s));
    return;
  }
  const int g = groups_of(s), slices = wgrad_slices(s);
  const WgradProblem p = {*s, dy, x, dw, slices > 1 ? ws : nullptr};
  launch_gemm(p, s->co / g, s->ci / g * s->k * s->k, s->n * s->ho * s->wo, g, slices, "backward-filter", s);
  if (slices > 1) {
    IST_LAUNCH(wgrad_reduce_kernel, ist_cuda_blocks(wn, kDirectThreads, kMaxBlocks), kDirectThreads, 0,
               ist_cuda_stream(), ws, slices, wn, dw);
    IST_CUDA_CHECK_LAUNCH("conv2d backward-filter reduce of %d slices co=%d ci=%d k=%d g=%d", slices, s->co, s->ci,
                          s->k, groups_of(s));
  }
}

void bias_forward(const ist_conv_shape *s, const float *bias, float *y) {
  const int hw = s->ho * s->wo;
  const int64_t total = (int64_t)s->n * s->co * hw;
  IST_LAUNCH(bias_add_kernel, ist_cuda_blocks(total, kDirectThreads, kMaxBlocks), kDirectThreads, 0,
             ist_cuda_stream(), total, s->co, hw, bias, y);
  IST_CUDA_CHECK_LAUNCH("conv2d bias n=%d co=%d %dx%d", s->n, s->co, s->ho, s->wo);
}

void bias_backward(const ist_conv_shape *s, const float *dy, float *dbias) {
  IST_LAUNCH(bias_grad_kernel, (unsigned)s->co, kReduceThreads, 0, ist_cuda_stream(), s->n, s->co, s->ho * s->wo, dy,
             dbias);
  IST_CUDA_CHECK_LAUNCH("conv2d bias gradient n=%d co=%d %dx%d", s->n, s->co, s->ho, s->wo);
}

ist_conv_impl g_impl = IST_CUDA_REAL ? IST_CONV_CUDNN : IST_CONV_OWN;

#if IST_CUDA_REAL
/* ---- cuDNN: one plan per shape (descriptors and the algorithms), chosen by
 * ist_cuda_conv_ws_floats and kept in a small table. FP32 FMA math (no TF32: a precision flag
 * of its own, later); the backward algorithms are deterministic ones. */
constexpr int kPlanCapacity = 128;
constexpr size_t kCudnnWorkspaceLimitBytes = (size_t)64 << 20;

const char *cudnn_status_name(cudnnStatus_t st) { return cudnnGetErrorString(st); }

#define IST_CUDNN_CHECK(call, ...)                                                                          \
  do {                                                                                                      \
    cudnnStatus_t ist_d_ = (call);                                                                          \
    if (ist_d_ != CUDNN_STATUS_SUCCESS) ist_cuda_fail_call_(#call, cudnn_status_name(ist_d_), __VA_ARGS__); \
  } while (0)
#define IST_SHAPE_FMT "n=%d ci=%d %dx%d co=%d k=%d s=%d p=%d g=%d"
#define IST_SHAPE_ARGS(s) (s)->n, (s)->ci, (s)->h, (s)->w, (s)->co, (s)->k, (s)->stride, (s)->pad, groups_of(s)

struct CudnnPlan {
  ist_conv_shape s;
  cudnnTensorDescriptor_t xd, yd;
  cudnnFilterDescriptor_t wd;
  cudnnConvolutionDescriptor_t cd;
  cudnnConvolutionFwdAlgo_t fwd;
  cudnnConvolutionBwdDataAlgo_t bwd_data;
  cudnnConvolutionBwdFilterAlgo_t bwd_filter;
  size_t ws_bytes;
  bool ok;
};

struct {
  cudnnHandle_t handle;
  bool have_handle;
  CudnnPlan plans[kPlanCapacity];
  int count;
} g_cudnn;

bool same_shape(const ist_conv_shape *a, const ist_conv_shape *b) {
  return a->n == b->n && a->ci == b->ci && a->h == b->h && a->w == b->w && a->co == b->co && a->k == b->k &&
         a->stride == b->stride && a->pad == b->pad && groups_of(a) == groups_of(b);
}

cudnnHandle_t cudnn_handle() {
  if (!g_cudnn.have_handle) {
    cudnnStatus_t st = cudnnCreate(&g_cudnn.handle);
    if (st != CUDNN_STATUS_SUCCESS) {
      ist_cuda_failf("CUDA conv2d: cudnnCreate failed: %s", cudnn_status_name(st));
      return nullptr;
    }
    IST_CUDNN_CHECK(cudnnSetStream(g_cudnn.handle, ist_cuda_stream()), "conv2d cuDNN stream");
    g_cudnn.have_handle = true;
  }
  return g_cudnn.handle;
}

CudnnPlan *find_plan(const ist_conv_shape *s) {
  for (int i = 0; i < g_cudnn.count; i++)
    if (same_shape(&g_cudnn.plans[i].s, s)) return &g_cudnn.plans[i];
  return nullptr;
}

/* The first of cuDNN's ranked candidates that ran, fits the workspace limit and (when asked) is
 * deterministic; false when none does. */
template <class Perf, class Algo>
bool pick(const Perf *perf, int n, bool deterministic, Algo *algo, size_t *bytes) {
  for (int i = 0; i < n; i++)
    if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= kCudnnWorkspaceLimitBytes &&
        (!deterministic || perf[i].determinism == CUDNN_DETERMINISTIC)) {
      *algo = perf[i].algo;
      *bytes = perf[i].memory;
      return true;
    }
  return false;
}

/* Builds (once) the plan of shape s; NULL when cuDNN cannot run it (our kernels then do). */
CudnnPlan *plan_for(const ist_conv_shape *s) {
  CudnnPlan *p = find_plan(s);
  if (p) return p->ok ? p : nullptr;
  if (g_cudnn.count == kPlanCapacity || !cudnn_handle()) return nullptr;
  p = &g_cudnn.plans[g_cudnn.count++];
  memset(p, 0, sizeof *p);
  p->s = *s;
  const int g = groups_of(s);
  bool ok = true;
#define PLAN_CHECK(call)                                                                                          \
  do {                                                                                                            \
    cudnnStatus_t st_ = (call);                                                                                   \
    if (st_ != CUDNN_STATUS_SUCCESS) {                                                                            \
      ist_cuda_fail_call_(#call, cudnn_status_name(st_), "conv2d cuDNN plan " IST_SHAPE_FMT, IST_SHAPE_ARGS(s)); \
      ok = false;                                                                                                 \
    }                                                                                                             \
  } while (0)
  PLAN_CHECK(cudnnCreateTensorDescriptor(&p->xd));
  PLAN_CHECK(cudnnCreateTensorDescriptor(&p->yd));
  PLAN_CHECK(cudnnCreateFilterDescriptor(&p->wd));
  PLAN_CHECK(cudnnCreateConvolutionDescriptor(&p->cd));
  if (!ok) return nullptr;
  PLAN_CHECK(cudnnSetTensor4dDescriptor(p->xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s->n, s->ci, s->h, s->w));
  PLAN_CHECK(cudnnSetTensor4dDescriptor(p->yd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s->n, s->co, s->ho, s->wo));
  PLAN_CHECK(cudnnSetFilter4dDescriptor(p->wd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, s->co, s->ci / g, s->k, s->k));
  PLAN_CHECK(cudnnSetConvolution2dDescriptor(p->cd, s->pad, s->pad, s->stride, s->stride, 1, 1,
                                             CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  PLAN_CHECK(cudnnSetConvolutionGroupCount(p->cd, g));
  PLAN_CHECK(cudnnSetConvolutionMathType(p->cd, CUDNN_FMA_MATH));
  if (!ok) return nullptr;
  cudnnConvolutionFwdAlgoPerf_t fp[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  cudnnConvolutionBwdDataAlgoPerf_t dp[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
  cudnnConvolutionBwdFilterAlgoPerf_t wp[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
  int nf = 0, nd = 0, nw = 0;
  cudnnHandle_t h = g_cudnn.handle;
  PLAN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, p->xd, p->wd, p->cd, p->yd, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                    &nf, fp));
  PLAN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p->wd, p->yd, p->cd, p->xd,
                                                         CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &nd, dp));
  PLAN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p->xd, p->yd, p->cd, p->wd,
                                                           CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &nw, wp));
#undef PLAN_CHECK
  size_t bf = 0, bd = 0, bw = 0;
  if (!ok || !pick(fp, nf, false, &p->fwd, &bf) || !pick(dp, nd, true, &p->bwd_data, &bd) ||
      !pick(wp, nw, true, &p->bwd_filter, &bw))
    return nullptr;
  p->ws_bytes = bf > bd ? (bf > bw ? bf : bw) : (bd > bw ? bd : bw);
  p->ok = true;
  return p;
}

/* The plan to run s with, when cuDNN is chosen and s was planned by ist_cuda_conv_ws_floats. */
CudnnPlan *active_plan(const ist_conv_shape *s) {
  if (g_impl != IST_CONV_CUDNN) return nullptr;
  CudnnPlan *p = find_plan(s);
  return p && p->ok ? p : nullptr;
}

void cudnn_forward(CudnnPlan *p, const float *x, const float *w, float *y, float *ws) {
  const float one = 1.0f, zero = 0.0f;
  IST_CUDNN_CHECK(cudnnConvolutionForward(g_cudnn.handle, &one, p->xd, x, p->wd, w, p->cd, p->fwd, ws, p->ws_bytes,
                                          &zero, p->yd, y),
                  "conv2d cuDNN forward " IST_SHAPE_FMT, IST_SHAPE_ARGS(&p->s));
}

void cudnn_backward(CudnnPlan *p, const float *dy, const float *x, const float *w, float *dx, float *dw, float *ws) {
  const float one = 1.0f, zero = 0.0f;
  IST_CUDNN_CHECK(cudnnConvolutionBackwardFilter(g_cudnn.handle, &one, p->xd, x, p->yd, dy, p->cd, p->bwd_filter, ws,
                                                 p->ws_bytes, &one, p->wd, dw),
                  "conv2d cuDNN backward-filter " IST_SHAPE_FMT, IST_SHAPE_ARGS(&p->s));
  if (dx)
    IST_CUDNN_CHECK(cudnnConvolutionBackwardData(g_cudnn.handle, &one, p->wd, w, p->yd, dy, p->cd, p->bwd_data, ws,
                                                 p->ws_bytes, &zero, p->xd, dx),
                    "conv2d cuDNN backward-data " IST_SHAPE_FMT, IST_SHAPE_ARGS(&p->s));
}
#endif

} // namespace

extern "C" void ist_cuda_set_conv_impl(ist_conv_impl impl) { g_impl = IST_CUDA_REAL ? impl : IST_CONV_OWN; }
extern "C" ist_conv_impl ist_cuda_conv_impl(void) { return g_impl; }

extern "C" size_t ist_cuda_conv_ws_floats(const ist_conv_shape *s) {
  size_t floats = own_ws_floats(s);
#if IST_CUDA_REAL
  if (ist_cuda_ready()) {
    const CudnnPlan *p = plan_for(s);
    if (p) {
      const size_t cudnn_floats = (p->ws_bytes + sizeof(float) - 1) / sizeof(float);
      if (cudnn_floats > floats) floats = cudnn_floats;
    }
  }
#endif
  return floats;
}

extern "C" void ist_cuda_conv2d_forward(const ist_conv_shape *s, const float *x, const float *w, const float *bias,
                                        float *y, float *ws) {
#if IST_CUDA_REAL
  if (CudnnPlan *p = active_plan(s)) {
    cudnn_forward(p, x, w, y, ws);
    if (bias) bias_forward(s, bias, y);
    return;
  }
#endif
  (void)ws;
  own_forward(s, x, w, bias, y);
}

extern "C" void ist_cuda_conv2d_backward(const ist_conv_shape *s, const float *dy, const float *x, const float *w,
                                         float *dx, float *dw, float *dbias, float *ws) {
  if (dbias) bias_backward(s, dy, dbias);
#if IST_CUDA_REAL
  if (CudnnPlan *p = active_plan(s)) {
    cudnn_backward(p, dy, x, w, dx, dw, ws);
    return;
  }
#endif
  own_backward_filter(s, dy, x, dw, ws);
  if (dx) own_backward_data(s, dy, w, dx);
}
