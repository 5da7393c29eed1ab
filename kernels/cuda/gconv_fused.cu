/* The fused generated convolution: implicit-GEMM convolutions whose weight tile is generated in
 * shared memory from the layer's factors (SPEC §2) right before it is multiplied, so W never
 * exists in global memory. Versions side by side (STYLE 13), each tested against the CPU
 * reference (tests/test_cuda_gconv_fused.cc) and timed by bench/fused_conv.cu:
 *   v1  plain FP32 on the SIMT cores: forward, backward-data, and the weight gradient via dW;
 *   v2  tensor cores (mma.sync TF32 m16n8k8 / BF16 m16n8k16, FP32 accumulation): forward and
 *       backward-data, same generation.
 * Index arithmetic (tile → pixels, channels, taps) lives in gconv_fused_index.h.
 *
 * Generation reuse: a CTA owns a tile of output channels (forward) or input channels
 * (backward-data) and runs many M tiles (persistent over blockIdx.y). When its whole W tile fits
 * in shared memory (the "resident" mode) it is generated once per CTA; otherwise each K chunk is
 * generated again per M tile, which costs bc (level 2) or bi (level 1 only) multiply-adds per W
 * element against the tile's TILE_M. */
#include <stdio.h>

#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/gconv_fused.h"
#include "kernels/cuda/gconv_fused_index.h"
#include "kernels/cuda/ist_cuda.h"

/* ---- v1 tiling (SIMT): 256 threads as 8 rows × 32 columns, each thread 4 × 4 outputs. */
#define V1_THREADS 256
#define V1_TX 32              /* threads along M */
#define V1_TY 8               /* threads along N (channels) */
#define V1_PER_THREAD 4       /* outputs per thread along each of M and N */
#define V1_TILE_N (V1_TY * V1_PER_THREAD)  /* 32 channels */
#define V1_TILE_M (V1_TX * V1_PER_THREAD)  /* 128 pixels */
/* A K chunk holds about this many columns (whole channels × k² taps, at least one channel). */
#define FUSED_CHUNK_COLS 64
/* Scratch for level-1 rows (Wc) generated at once: at most this many floats, at most
 * FUSED_GEN_ROWS rows. */
#define FUSED_GEN_FLOATS 4096
#define FUSED_GEN_ROWS 16
/* M tiles a CTA runs at least, so generation is shared (persistent CTAs along blockIdx.y). */
#define FUSED_CTAS_PER_SM 2
/* Weight gradient: 32 × 128 dW tile per CTA, M consumed 32 pixels at a time, split over M into
 * at most WGRAD_MAX_SPLITS partials (summed in a fixed order: deterministic) while the partials
 * stay under WGRAD_SPLIT_FLOATS floats. */
#define WGRAD_TILE_M 32
#define WGRAD_TARGET_CTAS 512
#define WGRAD_MAX_SPLITS 8
#define WGRAD_SPLIT_FLOATS (4 << 20)
#define SIMPLE_THREADS 256
#define MAX_GRID_Y 65535

/* ---- Reading factors: FP32 values, or packed q-bit codes dequantized on the fly (the
 * `.compressed` format of models/compressed.c). */
__device__ __forceinline__ float fused_factor_at(const ist_fused_factor &f, int64_t i) {
  if (!f.codes) return f.values[i];
  const int64_t bit0 = i * f.bits;
  uint32_t code = 0;
  for (int got = 0; got < f.bits;) {
    const int64_t bit = bit0 + got;
    const int shift = (int)(bit & 7), take = min(8 - shift, f.bits - got);
    code |= (uint32_t)((f.codes[bit >> 3] >> shift) & ((1u << take) - 1u)) << got;
    got += take;
  }
  const float scale = *f.scale;
  if (f.bits == 1) return code ? scale : -scale;
  const int n = (1 << (f.bits - 1)) - 1;
  return (float)((int)code - n) * (scale / (float)n);
}

/* Wc[j, c·k² + t] (SPEC §2 level 1: Σ_b U_j[c, b]·Wb_j[b, t]; level 1 off: the free Wc). */
__device__ __forceinline__ float fused_wc_at(const ist_gen_shape &g, const ist_fused_factors &f, int j, int c,
                                             int t) {
  if (!g.level1) return fused_factor_at(f.wc, ((int64_t)j * g.ci + c) * g.k2 + t);
  float acc = 0.0f;
  for (int b = 0; b < g.bi; b++)
    acc += fused_factor_at(f.u, ((int64_t)j * g.ci + c) * g.bi + b) * fused_factor_at(f.wb, ((int64_t)j * g.bi + b) * g.k2 + t);
  return acc;
}

/* Generates W[o0 + oo, (c0 + cc)·k² + t] for oo < no, cc < nc into ws[oo·ldw + col0 + cc·k² + t]
 * (rows o ≥ co and channels c ≥ ci are 0), with every thread of the CTA. Level 2 builds the
 * level-1 rows jb at a time in wcs (jb × nc·k² floats), then W += V[:, rows]·Wc[rows]. Ends with
 * a barrier; the caller must have one between its last read of ws/wcs and this call. */
__device__ void fused_generate_tile(const ist_gen_shape &g, const ist_fused_factors &f, int o0, int no, int c0,
                                    int nc, ist_sptr<float> ws, int ldw, int col0, ist_sptr<float> wcs, int jb) {
  const int k2 = g.k2, cols = nc * k2, tid = threadIdx.x, nthr = blockDim.x;
  if (!g.level2) {
    for (int e = tid; e < no * cols; e += nthr) {
      const int oo = e / cols, q = e - oo * cols, c = c0 + q / k2, t = q % k2, o = o0 + oo;
      ws[oo * ldw + col0 + q] = (o < g.co && c < g.ci) ? fused_wc_at(g, f, o, c, t) : 0.0f;
    }
    __syncthreads();
    return;
  }
  for (int e = tid; e < no * cols; e += nthr) {
    const int oo = e / cols, q = e - oo * cols;
    ws[oo * ldw + col0 + q] = 0.0f;
  }
  for (int j0 = 0; j0 < g.nb; j0 += jb) {
    const int jn = min(jb, g.nb - j0);
    for (int e = tid; e < jn * cols; e += nthr) {
      const int jj = e / cols, q = e - jj * cols, c = c0 + q / k2;
      wcs[e] = c < g.ci ? fused_wc_at(g, f, j0 + jj, c, q % k2) : 0.0f;
    }
    __syncthreads();
    /* Each thread updates the same W elements in every round (the zeroing loop's mapping). */
    for (int e = tid; e < no * cols; e += nthr) {
      const int oo = e / cols, q = e - oo * cols, o = o0 + oo;
      if (o >= g.co) continue;
      float acc = ws[oo * ldw + col0 + q];
      for (int jj = 0; jj < jn; jj++) acc += fused_factor_at(f.v, (int64_t)o * g.bc + j0 + jj) * wcs[jj * cols + q];
      ws[oo * ldw + col0 + q] = acc;
    }
    __syncthreads();
  }
}

/* ---- v1 forward: CTA (blockIdx.x) = 32 output channels; M tiles of 128 pixels over blockIdx.y,
 * persistent. K runs in chunks of nc whole channels (nc·k² columns). */
__global__ void __launch_bounds__(V1_THREADS) gconv_fused_v1_forward(ist_conv_shape s, ist_gen_shape g,
                                                                     ist_fused_factors f, const float *x, float *y,
                                                                     int nc, int resident, int jb) {
  IST_DYNAMIC_SHARED(float, smem);
  const int k2 = g.k2, K = s.ci * k2, kc = nc * k2, ldw = resident ? K : kc;
  ist_sptr<float> ws = smem, xs = smem + V1_TILE_N * ldw, wcs = xs + kc * V1_TILE_M;
  const int o0 = blockIdx.x * V1_TILE_N, M = ist_fused_out_pixels(&s), mtiles = ist_fused_tiles(M, V1_TILE_M);
  const int tid = threadIdx.x, tx = tid % V1_TX, ty = tid / V1_TX;
  if (resident)
    for (int c0 = 0; c0 < s.ci; c0 += nc)
      fused_generate_tile(g, f, o0, V1_TILE_N, c0, min(nc, s.ci - c0), ws, ldw, c0 * k2, wcs, jb);
  for (int mt = blockIdx.y; mt < mtiles; mt += gridDim.y) {
    const int m0 = mt * V1_TILE_M;
    float acc[V1_PER_THREAD][V1_PER_THREAD] = {};
    for (int c0 = 0; c0 < s.ci; c0 += nc) {
      const int cols = min(nc, s.ci - c0) * k2;
      if (!resident) fused_generate_tile(g, f, o0, V1_TILE_N, c0, min(nc, s.ci - c0), ws, ldw, 0, wcs, jb);
      for (int e = tid; e < cols * V1_TILE_M; e += V1_THREADS) {
        const int r = e / V1_TILE_M, m = m0 + e % V1_TILE_M;
        const int64_t off = m < M ? ist_fused_x_offset(&s, c0 * k2 + r, m) : -1;
        xs[e] = off >= 0 ? x[off] : 0.0f;
      }
      __syncthreads();
      const int wcol = resident ? c0 * k2 : 0;
      for (int r = 0; r < cols; r++) {
        float a[V1_PER_THREAD], b[V1_PER_THREAD];
#pragma unroll
        for (int j = 0; j < V1_PER_THREAD; j++) a[j] = ws[(ty + V1_TY * j) * ldw + wcol + r];
#pragma unroll
        for (int i = 0; i < V1_PER_THREAD; i++) b[i] = xs[r * V1_TILE_M + tx + V1_TX * i];
#pragma unroll
        for (int j = 0; j < V1_PER_THREAD; j++)
#pragma unroll
          for (int i = 0; i < V1_PER_THREAD; i++) acc[j][i] += a[j] * b[i];
      }
      __syncthreads();
    }
#pragma unroll
    for (int j = 0; j < V1_PER_THREAD; j++)
#pragma unroll
      for (int i = 0; i < V1_PER_THREAD; i++) {
        const int o = o0 + ty + V1_TY * j, m = m0 + tx + V1_TX * i;
        if (o < s.co && m < M) y[ist_fused_y_offset(&s, m, o)] = acc[j][i];
      }
  }
}

/* ---- v1 backward-data: CTA (blockIdx.x) = 32 input channels; M tiles of 128 input pixels; K runs
 * over chunks of no output channels × k² taps. The W block is rows o, columns c·k² + t of the
 * CTA's channels (ldw = 32·k²). */
__global__ void __launch_bounds__(V1_THREADS) gconv_fused_v1_backward_data(ist_conv_shape s, ist_gen_shape g,
                                                                           ist_fused_factors f, const float *dy,
                                                                           float *dx, int no, int resident, int jb) {
  IST_DYNAMIC_SHARED(float, smem);
  const int k2 = g.k2, ldw = V1_TILE_N * k2, rows_w = resident ? s.co : no;
  ist_sptr<float> ws = smem, ds = smem + rows_w * ldw, wcs = ds + no * k2 * V1_TILE_M;
  const int c0 = blockIdx.x * V1_TILE_N, M = ist_fused_in_pixels(&s), mtiles = ist_fused_tiles(M, V1_TILE_M);
  const int tid = threadIdx.x, tx = tid % V1_TX, ty = tid / V1_TX;
  if (resident)
    for (int o0 = 0; o0 < s.co; o0 += no)
      fused_generate_tile(g, f, o0, min(no, s.co - o0), c0, V1_TILE_N, ws + o0 * ldw, ldw, 0, wcs, jb);
  for (int mt = blockIdx.y; mt < mtiles; mt += gridDim.y) {
    const int m0 = mt * V1_TILE_M;
    float acc[V1_PER_THREAD][V1_PER_THREAD] = {};
    for (int o0 = 0; o0 < s.co; o0 += no) {
      const int on = min(no, s.co - o0), rows = on * k2;
      if (!resident) fused_generate_tile(g, f, o0, on, c0, V1_TILE_N, ws, ldw, 0, wcs, jb);
      for (int e = tid; e < rows * V1_TILE_M; e += V1_THREADS) {
        const int r = e / V1_TILE_M, m = m0 + e % V1_TILE_M;
        const int64_t off = m < M ? ist_fused_dy_offset(&s, o0 + r / k2, r % k2, m) : -1;
        ds[e] = off >= 0 ? dy[off] : 0.0f;
      }
      __syncthreads();
      const int wrow = resident ? o0 : 0;
      for (int r = 0; r < rows; r++) {
        const int oo = r / k2, t = r - oo * k2;
        float a[V1_PER_THREAD], b[V1_PER_THREAD];
#pragma unroll
        for (int j = 0; j < V1_PER_THREAD; j++) a[j] = ws[(wrow + oo) * ldw + (ty + V1_TY * j) * k2 + t];
#pragma unroll
        for (int i = 0; i < V1_PER_THREAD; i++) b[i] = ds[r * V1_TILE_M + tx + V1_TX * i];
#pragma unroll
        for (int j = 0; j < V1_PER_THREAD; j++)
#pragma unroll
          for (int i = 0; i < V1_PER_THREAD; i++) acc[j][i] += a[j] * b[i];
      }
      __syncthreads();
    }
#pragma unroll
    for (int j = 0; j < V1_PER_THREAD; j++)
#pragma unroll
      for (int i = 0; i < V1_PER_THREAD; i++) {
        const int c = c0 + ty + V1_TY * j, m = m0 + tx + V1_TX * i;
        if (c < s.ci && m < M) dx[ist_fused_dx_offset(&s, m, c)] = acc[j][i];
      }
  }
}

/* ---- Weight gradient. dW (co × K) partial over M split blockIdx.z: a 32 × 128 tile per CTA. */
__global__ void __launch_bounds__(V1_THREADS) gconv_fused_wgrad_dw(ist_conv_shape s, const float *dy,
                                                                   const float *x, float *dw_part, int m_per_split) {
  IST_SHARED(float, dys, V1_TILE_N * WGRAD_TILE_M);
  IST_SHARED(float, xs, V1_TILE_M * (WGRAD_TILE_M + 1));
  const int K = ist_fused_k(&s), M = ist_fused_out_pixels(&s);
  const int o0 = blockIdx.x * V1_TILE_N, kk0 = blockIdx.y * V1_TILE_M;
  const int mbeg = blockIdx.z * m_per_split, mend = min(M, mbeg + m_per_split);
  const int tid = threadIdx.x, tx = tid % V1_TX, ty = tid / V1_TX;
  float acc[V1_PER_THREAD][V1_PER_THREAD] = {};
  for (int mb = mbeg; mb < mend; mb += WGRAD_TILE_M) {
    for (int e = tid; e < V1_TILE_N * WGRAD_TILE_M; e += V1_THREADS) {
      const int oo = e / WGRAD_TILE_M, m = mb + e % WGRAD_TILE_M, o = o0 + oo;
      dys[e] = (o < s.co && m < mend) ? dy[ist_fused_y_offset(&s, m, o)] : 0.0f;
    }
    for (int e = tid; e < V1_TILE_M * WGRAD_TILE_M; e += V1_THREADS) {
      const int r = e / WGRAD_TILE_M, mm = e % WGRAD_TILE_M, m = mb + mm, kk = kk0 + r;
      const int64_t off = (kk < K && m < mend) ? ist_fused_x_offset(&s, kk, m) : -1;
      xs[r * (WGRAD_TILE_M + 1) + mm] = off >= 0 ? x[off] : 0.0f;
    }
    __syncthreads();
    for (int mm = 0; mm < WGRAD_TILE_M; mm++) {
      float a[V1_PER_THREAD], b[V1_PER_THREAD];
#pragma unroll
      for (int j = 0; j < V1_PER_THREAD; j++) a[j] = dys[(ty + V1_TY * j) * WGRAD_TILE_M + mm];
#pragma unroll
      for (int i = 0; i < V1_PER_THREAD; i++) b[i] = xs[(tx + V1_TX * i) * (WGRAD_TILE_M + 1) + mm];
#pragma unroll
      for (int j = 0; j < V1_PER_THREAD; j++)
#pragma unroll
        for (int i = 0; i < V1_PER_THREAD; i++) acc[j][i] += a[j] * b[i];
    }
    __syncthreads();
  }
  float *out = dw_part + (int64_t)blockIdx.z * s.co * K;
#pragma unroll
  for (int j = 0; j < V1_PER_THREAD; j++)
#pragma unroll
    for (int i = 0; i < V1_PER_THREAD; i++) {
      const int o = o0 + ty + V1_TY * j, kk = kk0 + tx + V1_TX * i;
      if (o < s.co && kk < K) out[(int64_t)o * K + kk] = acc[j][i];
    }
}

/* dw[i] = Σ_z part[z][i], z in order (deterministic). */
__global__ void gconv_fused_sum_splits(int64_t n, int splits, const float *part, float *dw) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    float acc = 0.0f;
    for (int z = 0; z < splits; z++) acc += part[(int64_t)z * n + i];
    dw[i] = acc;
  }
}

/* Wc (nb × K) = {U_j·Wb_j} (level 1 on). */
__global__ void gconv_fused_gen_wc(ist_gen_shape g, const float *wb, const float *u, float *wc) {
  const int64_t K = (int64_t)g.ci * g.k2, n = g.nb * K;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const int j = (int)(i / K), q = (int)(i % K), c = q / g.k2, t = q % g.k2;
    float acc = 0.0f;
    for (int b = 0; b < g.bi; b++) acc += u[((int64_t)j * g.ci + c) * g.bi + b] * wb[((int64_t)j * g.bi + b) * g.k2 + t];
    wc[i] = acc;
  }
}

/* dV[o, j] += Σ_kk dW[o, kk]·Wc[j, kk]. */
__global__ void gconv_fused_grad_v(ist_gen_shape g, const float *dw, const float *wc, float *dv) {
  const int64_t K = (int64_t)g.ci * g.k2, n = (int64_t)g.co * g.bc;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const int o = (int)(i / g.bc), j = (int)(i % g.bc);
    float acc = 0.0f;
    for (int64_t q = 0; q < K; q++) acc += dw[o * K + q] * wc[j * K + q];
    dv[i] += acc;
  }
}

/* dWc[j, kk] = Σ_o V[o, j]·dW[o, kk]. */
__global__ void gconv_fused_grad_wc(ist_gen_shape g, const float *dw, const float *v, float *dwc) {
  const int64_t K = (int64_t)g.ci * g.k2, n = (int64_t)g.bc * K;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const int j = (int)(i / K);
    const int64_t q = i % K;
    float acc = 0.0f;
    for (int o = 0; o < g.co; o++) acc += v[(int64_t)o * g.bc + j] * dw[o * K + q];
    dwc[i] = acc;
  }
}

/* dU_j[c, b] += Σ_t dWc_j[c, t]·Wb_j[b, t]. */
__global__ void gconv_fused_grad_u(ist_gen_shape g, const float *dwc, const float *wb, float *du) {
  const int64_t n = (int64_t)g.nb * g.ci * g.bi;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const int b = (int)(i % g.bi);
    const int64_t jc = i / g.bi; /* j·ci + c */
    const int j = (int)(jc / g.ci);
    float acc = 0.0f;
    for (int t = 0; t < g.k2; t++) acc += dwc[jc * g.k2 + t] * wb[((int64_t)j * g.bi + b) * g.k2 + t];
    du[i] += acc;
  }
}

/* dWb_j[b, t] += Σ_c U_j[c, b]·dWc_j[c, t]. */
__global__ void gconv_fused_grad_wb(ist_gen_shape g, const float *dwc, const float *u, float *dwb) {
  const int64_t n = (int64_t)g.nb * g.bi * g.k2;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const int t = (int)(i % g.k2), b = (int)(i / g.k2 % g.bi), j = (int)(i / ((int64_t)g.k2 * g.bi));
    float acc = 0.0f;
    for (int c = 0; c < g.ci; c++)
      acc += u[((int64_t)j * g.ci + c) * g.bi + b] * dwc[((int64_t)j * g.ci + c) * g.k2 + t];
    dwb[i] += acc;
  }
}

/* dst[i] += src[i]. */
__global__ void gconv_fused_accumulate(int64_t n, const float *src, float *dst) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    dst[i] += src[i];
}

#include "kernels/cuda/gconv_fused_v2.cuh"
static_assert(V1_THREADS == V2_THREADS, "launch_planned launches every version with V1_THREADS");

/* ================================ host side ================================ */

static size_t g_resident_limit = 0; /* 0: the device's opt-in limit */

extern "C" void ist_cuda_gconv_fused_set_resident_limit(size_t bytes) { g_resident_limit = bytes; }

static size_t resident_limit(void) {
  return g_resident_limit ? g_resident_limit : (size_t)ist_cuda_smem_optin();
}

extern "C" ist_fused_factors ist_fused_factors_f32(const float *wb, const float *u, const float *wc,
                                                    const float *v) {
  ist_fused_factors f = {};
  f.wb.values = wb;
  f.u.values = u;
  f.wc.values = wc;
  f.v.values = v;
  f.wb.bits = f.u.bits = f.wc.bits = f.v.bits = 32;
  return f;
}

extern "C" int ist_cuda_gconv_fused_eligible(int version, ist_fused_precision precision, const ist_conv_shape *s,
                                             const ist_gen_shape *g, const char **why) {
  const char *no = NULL;
  if (s->groups > 1) no = "grouped or depthwise conv (the fused kernels are dense convs)";
  else if (g->co != s->co || g->ci != s->ci || g->k2 != s->k * s->k) no = "generator shape differs from the conv's";
  else if ((int64_t)s->n * s->h * s->w * (s->ci > s->co ? s->ci : s->co) >= ((int64_t)1 << 31))
    no = "tensor too large for 32-bit pixel indices";
  else if (version == IST_FUSED_V1 && precision != IST_PREC_FP32) no = "v1 runs FP32 only";
  else if (version == IST_FUSED_V2 && precision == IST_PREC_FP32) no = "v2 runs TF32 or BF16 only";
  else if (version != IST_FUSED_V1 && version != IST_FUSED_V2) no = "unknown version";
  if (why) *why = no;
  return no == NULL;
}

/* Level-1 rows generated at once for a chunk of `cols` columns. */
static int gen_rows(int cols) {
  int jb = FUSED_GEN_FLOATS / (cols > 0 ? cols : 1);
  return jb < 1 ? 1 : jb > FUSED_GEN_ROWS ? FUSED_GEN_ROWS : jb;
}

/* Whole channels per K chunk: about FUSED_CHUNK_COLS columns, at least one channel. */
static int chunk_channels(int k2, int limit) {
  int nc = FUSED_CHUNK_COLS / k2;
  if (nc < 1) nc = 1;
  return nc > limit ? limit : nc;
}

/* Grid rows (persistent M tiles): enough CTAs to fill the device, at most one per M tile. */
static unsigned grid_m(int mtiles, int ntiles) {
  long long want = (long long)ist_cuda_sm_count() * FUSED_CTAS_PER_SM / (ntiles > 0 ? ntiles : 1);
  if (want < 1) want = 1;
  if (want > mtiles) want = mtiles;
  if (want > MAX_GRID_Y) want = MAX_GRID_Y;
  return (unsigned)want;
}

extern "C" void ist_cuda_gconv_fused_plan(int version, int backward_data, const ist_conv_shape *s,
                                          const ist_gen_shape *g, ist_fused_plan *p) {
  const int k2 = g->k2, K = s->ci * k2, v1 = version == IST_FUSED_V1;
  const int tile_n = v1 ? V1_TILE_N : V2_TILE_N, tile_m = v1 ? V1_TILE_M : V2_TILE_M;
  const int ntiles = ist_fused_tiles(backward_data ? s->ci : s->co, tile_n);
  const int mtiles = ist_fused_tiles(backward_data ? ist_fused_in_pixels(s) : ist_fused_out_pixels(s), tile_m);
  size_t stream, w_res, w_chunk;
  if (!backward_data) {
    const int nc = chunk_channels(k2, s->ci), cols = nc * k2, nchunks = ist_fused_tiles(s->ci, nc);
    p->chunk = nc;
    p->jb = gen_rows(cols);
    if (v1) {
      stream = (size_t)cols * V1_TILE_M + (size_t)p->jb * cols;
      w_res = (size_t)V1_TILE_N * K;
      w_chunk = (size_t)V1_TILE_N * cols;
    } else {
      const int kpad = v2_round_up(cols, V2_KSTEP);
      stream = (size_t)kpad * V2_LDX + (size_t)p->jb * cols;
      w_res = (size_t)V2_TILE_N * (nchunks * kpad + V2_W_PAD);
      w_chunk = (size_t)V2_TILE_N * (kpad + V2_W_PAD);
    }
  } else {
    const int no = chunk_channels(k2, s->co), ldw = tile_n * k2;
    p->chunk = no;
    p->jb = gen_rows(ldw);
    stream = (v1 ? (size_t)no * k2 * V1_TILE_M : (size_t)v2_round_up(no * k2, V2_KSTEP) * V2_LDX) + (size_t)p->jb * ldw;
    w_res = (size_t)s->co * ldw;
    w_chunk = (size_t)no * ldw;
  }
  p->resident = (stream + w_res) * sizeof(float) <= resident_limit();
  p->smem_bytes = (stream + (p->resident ? w_res : w_chunk)) * sizeof(float);
  p->grid_x = (unsigned)ntiles;
  p->grid_y = p->resident ? grid_m(mtiles, ntiles) : (unsigned)(mtiles < MAX_GRID_Y ? mtiles : MAX_GRID_Y);
  p->generations = p->resident ? (double)p->grid_y : (double)mtiles;
}

/* Allows `bytes` of dynamic shared memory for kernel (above the 48 KB default). */
template <class Kern>
static void allow_smem(Kern kernel, size_t bytes, const char *op) {
  IST_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes),
                 "%s: %zu bytes of shared memory", op, bytes);
}

/* Launches kern with the plan's grid and shared memory: (s, g, f, in, out, chunk, resident, jb). */
template <class Kern>
static void launch_planned(Kern kern, const ist_fused_plan &p, const char *op, const ist_conv_shape *s,
                           const ist_gen_shape *g, const ist_fused_factors *f, const float *in, float *out) {
  allow_smem(kern, p.smem_bytes, op);
  IST_LAUNCH(kern, dim3(p.grid_x, p.grid_y), V1_THREADS, p.smem_bytes,
             ist_cuda_stream(), *s, *g, *f, in, out, p.chunk, p.resident, p.jb);
  IST_CUDA_CHECK_LAUNCH("%s n=%d ci=%d %dx%d co=%d k=%d s=%d p=%d bi=%d bc=%d resident=%d smem=%zu", op, s->n, s->ci,
                        s->h, s->w, s->co, s->k, s->stride, s->pad, g->bi, g->bc, p.resident, p.smem_bytes);
}

static void run_fused(int version, ist_fused_precision precision, int backward_data, const ist_conv_shape *s,
                      const ist_gen_shape *g, const ist_fused_factors *f, const float *in, float *out) {
  const char *why = NULL;
  if (!ist_cuda_gconv_fused_eligible(version, precision, s, g, &why)) {
    ist_cuda_failf("gconv_fused_%s v%d: not eligible: %s", backward_data ? "backward_data" : "forward", version, why);
    return;
  }
  ist_fused_plan p;
  ist_cuda_gconv_fused_plan(version, backward_data, s, g, &p);
  const int bf16 = precision == IST_PREC_BF16;
  if (version == IST_FUSED_V1) {
    if (backward_data) launch_planned(gconv_fused_v1_backward_data, p, "gconv_fused_v1_backward_data", s, g, f, in, out);
    else launch_planned(gconv_fused_v1_forward, p, "gconv_fused_v1_forward", s, g, f, in, out);
  } else if (backward_data) {
    if (bf16)
      launch_planned(gconv_fused_v2_backward_data<IST_PREC_BF16>, p, "gconv_fused_v2_backward_data bf16", s, g, f, in, out);
    else
      launch_planned(gconv_fused_v2_backward_data<IST_PREC_TF32>, p, "gconv_fused_v2_backward_data tf32", s, g, f, in, out);
  } else {
    if (bf16) launch_planned(gconv_fused_v2_forward<IST_PREC_BF16>, p, "gconv_fused_v2_forward bf16", s, g, f, in, out);
    else launch_planned(gconv_fused_v2_forward<IST_PREC_TF32>, p, "gconv_fused_v2_forward tf32", s, g, f, in, out);
  }
}

extern "C" void ist_cuda_gconv_fused_forward(int version, ist_fused_precision precision, const ist_conv_shape *s,
                                             const ist_gen_shape *g, const ist_fused_factors *f, const float *x,
                                             float *y) {
  run_fused(version, precision, 0, s, g, f, x, y);
}

extern "C" void ist_cuda_gconv_fused_backward_data(int version, ist_fused_precision precision,
                                                   const ist_conv_shape *s, const ist_gen_shape *g,
                                                   const ist_fused_factors *f, const float *dy, float *dx) {
  run_fused(version, precision, 1, s, g, f, dy, dx);
}

/* Split-M partials of dW: a function of the shape only, so ws sizing and the op agree. */
static int wgrad_splits(const ist_conv_shape *s) {
  const int64_t K = (int64_t)ist_fused_k(s), tiles = (int64_t)ist_fused_tiles(s->co, V1_TILE_N) * ist_fused_tiles((int)K, V1_TILE_M);
  int64_t splits = (WGRAD_TARGET_CTAS + tiles - 1) / tiles;
  const int64_t by_budget = WGRAD_SPLIT_FLOATS / ((int64_t)s->co * K);
  const int64_t by_m = ist_fused_tiles(ist_fused_out_pixels(s), WGRAD_TILE_M);
  if (splits > WGRAD_MAX_SPLITS) splits = WGRAD_MAX_SPLITS;
  if (splits > by_budget) splits = by_budget;
  if (splits > by_m) splits = by_m;
  return splits < 1 ? 1 : (int)splits;
}

/* Scratch layout (floats): dW (co × K), partials (splits × co × K when splits > 1), Wc and dWc
 * (nb × K each, level 2 on). */
typedef struct {
  size_t dw, part, wc, dwc, total;
} wgrad_layout;

static wgrad_layout wgrad_ws(const ist_conv_shape *s, const ist_gen_shape *g) {
  wgrad_layout L = {};
  const size_t K = (size_t)ist_fused_k(s), cok = (size_t)s->co * K;
  const int splits = wgrad_splits(s);
  L.dw = 0;
  L.part = cok;
  L.wc = L.part + (splits > 1 ? (size_t)splits * cok : 0);
  L.dwc = L.wc + (g->level2 && g->level1 ? (size_t)g->nb * K : 0);
  L.total = L.dwc + (g->level2 ? (size_t)g->nb * K : 0);
  return L;
}

extern "C" size_t ist_cuda_gconv_fused_ws_floats(const ist_conv_shape *s, const ist_gen_shape *g) {
  return wgrad_ws(s, g).total;
}

static unsigned simple_blocks(int64_t n) { return ist_cuda_blocks(n, SIMPLE_THREADS, 4096); }

extern "C" void ist_cuda_gconv_fused_backward_weights(const ist_conv_shape *s, const ist_gen_shape *g,
                                                      const float *dy, const float *x, const float *wb,
                                                      const float *u, const float *wc, const float *v, float *dwb,
                                                      float *du, float *dwc, float *dv, float *ws) {
  const char *why = NULL;
  if (!ist_cuda_gconv_fused_eligible(IST_FUSED_V1, IST_PREC_FP32, s, g, &why)) {
    ist_cuda_failf("gconv_fused_backward_weights: not eligible: %s", why);
    return;
  }
  const wgrad_layout L = wgrad_ws(s, g);
  const int K = ist_fused_k(s), splits = wgrad_splits(s), mtiles = ist_fused_tiles(ist_fused_out_pixels(s), WGRAD_TILE_M);
  const int m_per_split = ist_fused_tiles(mtiles, splits) * WGRAD_TILE_M;
  const int64_t cok = (int64_t)s->co * K, nbk = (int64_t)g->nb * K;
  float *dw = ws + L.dw;
  cudaStream_t st = ist_cuda_stream();
  dim3 grid(ist_fused_tiles(s->co, V1_TILE_N), ist_fused_tiles(K, V1_TILE_M), splits);
  IST_LAUNCH(gconv_fused_wgrad_dw, grid, V1_THREADS, 0, st, *s, dy, x, splits > 1 ? ws + L.part : dw, m_per_split);
  IST_CUDA_CHECK_LAUNCH("gconv_fused_wgrad_dw n=%d ci=%d %dx%d co=%d k=%d s=%d p=%d splits=%d", s->n, s->ci, s->h,
                        s->w, s->co, s->k, s->stride, s->pad, splits);
  if (splits > 1) {
    IST_LAUNCH(gconv_fused_sum_splits, simple_blocks(cok), SIMPLE_THREADS, 0, st, cok, splits, ws + L.part, dw);
    IST_CUDA_CHECK_LAUNCH("gconv_fused_sum_splits co=%d K=%d splits=%d", s->co, K, splits);
  }
  /* SPEC §2 backward: through level 2, then level 1. */
  const float *dwc_l1 = dw;
  if (g->level2) {
    const float *wc_full = wc;
    if (g->level1) {
      IST_LAUNCH(gconv_fused_gen_wc, simple_blocks(nbk), SIMPLE_THREADS, 0, st, *g, wb, u, ws + L.wc);
      IST_CUDA_CHECK_LAUNCH("gconv_fused_gen_wc nb=%d ci=%d k2=%d bi=%d", g->nb, g->ci, g->k2, g->bi);
      wc_full = ws + L.wc;
    }
    IST_LAUNCH(gconv_fused_grad_v, simple_blocks((int64_t)g->co * g->bc), SIMPLE_THREADS, 0, st, *g, dw, wc_full, dv);
    IST_CUDA_CHECK_LAUNCH("gconv_fused_grad_v co=%d bc=%d K=%d", g->co, g->bc, K);
    IST_LAUNCH(gconv_fused_grad_wc, simple_blocks(nbk), SIMPLE_THREADS, 0, st, *g, dw, v, ws + L.dwc);
    IST_CUDA_CHECK_LAUNCH("gconv_fused_grad_wc co=%d bc=%d K=%d", g->co, g->bc, K);
    dwc_l1 = ws + L.dwc;
  }
  if (g->level1) {
    IST_LAUNCH(gconv_fused_grad_u, simple_blocks((int64_t)g->nb * g->ci * g->bi), SIMPLE_THREADS, 0, st, *g, dwc_l1,
               wb, du);
    IST_CUDA_CHECK_LAUNCH("gconv_fused_grad_u nb=%d ci=%d bi=%d k2=%d", g->nb, g->ci, g->bi, g->k2);
    IST_LAUNCH(gconv_fused_grad_wb, simple_blocks((int64_t)g->nb * g->bi * g->k2), SIMPLE_THREADS, 0, st, *g, dwc_l1,
               u, dwb);
    IST_CUDA_CHECK_LAUNCH("gconv_fused_grad_wb nb=%d ci=%d bi=%d k2=%d", g->nb, g->ci, g->bi, g->k2);
  } else {
    IST_LAUNCH(gconv_fused_accumulate, simple_blocks(nbk), SIMPLE_THREADS, 0, st, nbk, dwc_l1, dwc);
    IST_CUDA_CHECK_LAUNCH("gconv_fused_accumulate dwc nb=%d K=%d", g->nb, K);
  }
}
