/* gconv_fused v2: the fused generated convolution on the tensor cores (mma.sync m16n8k8 TF32 or
 * m16n8k16 BF16, FP32 accumulation). Included by gconv_fused.cu only (it shares v1's generation,
 * fused_generate_tile, which writes the FP32 W tile into shared memory; fragments are rounded to
 * TF32 / BF16 as they are read). The im2col input tile arrives by cp.async (4-byte, zero-filled
 * at padding taps). CTA: 64 channels × 128 pixels, 8 warps as 2 (channels) × 4 (pixels), each
 * warp 32 × 32 = 2 × 4 mma tiles. K chunks are padded to V2_KSTEP columns with zeros. */

#define V2_THREADS 256
#define V2_TILE_N 64           /* channels per CTA */
#define V2_TILE_M 128          /* pixels per CTA tile */
#define V2_WARPS_N 2
#define V2_WARP_N (V2_TILE_N / V2_WARPS_N) /* 32 channels per warp: 2 m16 tiles */
#define V2_WARP_M (V2_TILE_M / 4)          /* 32 pixels per warp: 4 n8 tiles */
#define V2_MT (V2_WARP_N / 16)
#define V2_NT (V2_WARP_M / 8)
#define V2_KSTEP 16            /* K chunks are padded to this (a BF16 step; two TF32 steps) */
/* Row pitches in floats, chosen so that a fragment's 8 rows × 4 columns hit 32 distinct banks. */
#define V2_LDX (V2_TILE_M + 8)
#define V2_W_PAD 4

static __host__ __device__ __forceinline__ int v2_round_up(int a, int b) { return (a + b - 1) / b * b; }

/* One K chunk of the warp's 32 × 32 tile: acc += A[rows, 0..kpad) · B[0..kpad), cols], A read
 * through a_at(row, k) (FP32 in shared memory), B = bs[k·V2_LDX + col]. */
template <int PREC, class AFn>
__device__ __forceinline__ void v2_mma_chunk(float (&acc)[V2_MT][V2_NT][4], const AFn &a_at, ist_sptr<float> bs,
                                             int kpad, int row0, int col0) {
  const int lane = threadIdx.x % 32, gq = lane >> 2, tq = lane & 3;
  if (PREC == IST_PREC_TF32) {
    for (int k0 = 0; k0 < kpad; k0 += 8) {
      uint32_t a[V2_MT][4], b[V2_NT][2];
#pragma unroll
      for (int mi = 0; mi < V2_MT; mi++) {
        const int r = row0 + mi * 16 + gq;
        a[mi][0] = ist_f32_to_tf32(a_at(r, k0 + tq));
        a[mi][1] = ist_f32_to_tf32(a_at(r + 8, k0 + tq));
        a[mi][2] = ist_f32_to_tf32(a_at(r, k0 + tq + 4));
        a[mi][3] = ist_f32_to_tf32(a_at(r + 8, k0 + tq + 4));
      }
#pragma unroll
      for (int ni = 0; ni < V2_NT; ni++) {
        const int c = col0 + ni * 8 + gq;
        b[ni][0] = ist_f32_to_tf32(bs[(k0 + tq) * V2_LDX + c]);
        b[ni][1] = ist_f32_to_tf32(bs[(k0 + tq + 4) * V2_LDX + c]);
      }
#pragma unroll
      for (int mi = 0; mi < V2_MT; mi++)
#pragma unroll
        for (int ni = 0; ni < V2_NT; ni++) ist_mma_tf32_16x8x8(acc[mi][ni], a[mi], b[ni], acc[mi][ni]);
    }
  } else {
    for (int k0 = 0; k0 < kpad; k0 += 16) {
      uint32_t a[V2_MT][4], b[V2_NT][2];
#pragma unroll
      for (int mi = 0; mi < V2_MT; mi++) {
        const int r = row0 + mi * 16 + gq, k = k0 + 2 * tq;
        a[mi][0] = ist_pack_bf16x2(a_at(r, k), a_at(r, k + 1));
        a[mi][1] = ist_pack_bf16x2(a_at(r + 8, k), a_at(r + 8, k + 1));
        a[mi][2] = ist_pack_bf16x2(a_at(r, k + 8), a_at(r, k + 9));
        a[mi][3] = ist_pack_bf16x2(a_at(r + 8, k + 8), a_at(r + 8, k + 9));
      }
#pragma unroll
      for (int ni = 0; ni < V2_NT; ni++) {
        const int c = col0 + ni * 8 + gq, k = k0 + 2 * tq;
        b[ni][0] = ist_pack_bf16x2(bs[k * V2_LDX + c], bs[(k + 1) * V2_LDX + c]);
        b[ni][1] = ist_pack_bf16x2(bs[(k + 8) * V2_LDX + c], bs[(k + 9) * V2_LDX + c]);
      }
#pragma unroll
      for (int mi = 0; mi < V2_MT; mi++)
#pragma unroll
        for (int ni = 0; ni < V2_NT; ni++) ist_mma_bf16_16x8x16(acc[mi][ni], a[mi], b[ni], acc[mi][ni]);
    }
  }
}

/* Forward A: the W tile, rows = output channels, columns = the chunk's K columns. */
struct v2_fwd_a {
  ist_sptr<float> ws;
  int ldw, wcol;
  __device__ __forceinline__ float operator()(int row, int k) const { return ws[row * ldw + wcol + k]; }
};

/* Backward-data A: A[c, (oo, t)] = W[o0 + oo, c·k² + t], rows beyond the chunk's are 0. */
struct v2_bwd_a {
  ist_sptr<float> ws;
  int ldw, wrow, k2, rows;
  __device__ __forceinline__ float operator()(int c, int r) const {
    if (r >= rows) return 0.0f;
    const int oo = r / k2;
    return ws[(wrow + oo) * ldw + c * k2 + (r - oo * k2)];
  }
};

/* Stores a warp's accumulators: element (row, col) → out[offset(row, col)] when both are inside. */
template <class OffFn>
__device__ __forceinline__ void v2_store(const float (&acc)[V2_MT][V2_NT][4], int row0, int col0, int nrows,
                                         int ncols, float *out, const OffFn &offset) {
  const int lane = threadIdx.x % 32, gq = lane >> 2, tq = lane & 3;
#pragma unroll
  for (int mi = 0; mi < V2_MT; mi++)
#pragma unroll
    for (int ni = 0; ni < V2_NT; ni++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int row = row0 + mi * 16 + gq + (e >> 1) * 8, col = col0 + ni * 8 + 2 * tq + (e & 1);
        if (row < nrows && col < ncols) out[offset(row, col)] = acc[mi][ni][e];
      }
}

struct v2_y_off {
  const ist_conv_shape *s;
  __device__ __forceinline__ int64_t operator()(int o, int m) const { return ist_fused_y_offset(s, m, o); }
};
struct v2_dx_off {
  const ist_conv_shape *s;
  __device__ __forceinline__ int64_t operator()(int c, int m) const { return ist_fused_dx_offset(s, m, c); }
};

/* Forward: CTA = 64 output channels (blockIdx.x) × persistent 128-pixel M tiles (blockIdx.y).
 * Chunks of nc channels = cols columns padded to kpad; resident: every chunk's W columns stay in
 * shared memory (chunk i at column i·kpad). */
template <int PREC>
__global__ void __launch_bounds__(V2_THREADS) gconv_fused_v2_forward(ist_conv_shape s, ist_gen_shape g,
                                                                     ist_fused_factors f, const float *x, float *y,
                                                                     int nc, int resident, int jb) {
  IST_DYNAMIC_SHARED(float, smem);
  const int k2 = g.k2, kpad = v2_round_up(nc * k2, V2_KSTEP), nchunks = ist_fused_tiles(s.ci, nc);
  const int ldw = (resident ? nchunks * kpad : kpad) + V2_W_PAD;
  ist_sptr<float> ws = smem, xs = smem + V2_TILE_N * ldw, wcs = xs + kpad * V2_LDX;
  const int o0 = blockIdx.x * V2_TILE_N, M = ist_fused_out_pixels(&s), mtiles = ist_fused_tiles(M, V2_TILE_M);
  const int tid = threadIdx.x, warp = tid / 32;
  const int wrow0 = (warp % V2_WARPS_N) * V2_WARP_N, wcol0 = (warp / V2_WARPS_N) * V2_WARP_M;
  /* Pad columns must read as 0 (shared memory starts as garbage; NaN·0 is NaN). */
  for (int e = tid; e < V2_TILE_N * ldw; e += V2_THREADS) ws[e] = 0.0f;
  __syncthreads();
  if (resident)
    for (int c0 = 0, i = 0; c0 < s.ci; c0 += nc, i++)
      fused_generate_tile(g, f, o0, V2_TILE_N, c0, min(nc, s.ci - c0), ws, ldw, i * kpad, wcs, jb);
  for (int mt = blockIdx.y; mt < mtiles; mt += gridDim.y) {
    const int m0 = mt * V2_TILE_M;
    float acc[V2_MT][V2_NT][4] = {};
    for (int c0 = 0, i = 0; c0 < s.ci; c0 += nc, i++) {
      const int cols = min(nc, s.ci - c0) * k2;
      if (!resident) fused_generate_tile(g, f, o0, V2_TILE_N, c0, min(nc, s.ci - c0), ws, ldw, 0, wcs, jb);
      for (int e = tid; e < kpad * V2_TILE_M; e += V2_THREADS) {
        const int r = e / V2_TILE_M, mm = e % V2_TILE_M, m = m0 + mm;
        const int64_t off = (r < cols && m < M) ? ist_fused_x_offset(&s, c0 * k2 + r, m) : -1;
        ist_cp_async_4_zfill(xs + r * V2_LDX + mm, off >= 0 ? x + off : x, off >= 0);
      }
      ist_cp_async_commit();
      ist_cp_async_wait_all();
      __syncthreads();
      const v2_fwd_a a_at = {ws, ldw, resident ? i * kpad : 0};
      v2_mma_chunk<PREC>(acc, a_at, xs, kpad, wrow0, wcol0);
      __syncthreads();
    }
    const v2_y_off off = {&s};
    v2_store(acc, o0 + wrow0, m0 + wcol0, s.co, M, y, off);
  }
}

/* Backward-data: CTA = 64 input channels (blockIdx.x) × persistent 128-input-pixel tiles; chunks of
 * no output channels × k² taps (rows, padded to kpad). W block: rows o, columns c·k² + t of the
 * CTA's channels (ldw = 64·k²); resident: all co rows. */
template <int PREC>
__global__ void __launch_bounds__(V2_THREADS) gconv_fused_v2_backward_data(ist_conv_shape s, ist_gen_shape g,
                                                                           ist_fused_factors f, const float *dy,
                                                                           float *dx, int no, int resident, int jb) {
  IST_DYNAMIC_SHARED(float, smem);
  const int k2 = g.k2, ldw = V2_TILE_N * k2, kpad = v2_round_up(no * k2, V2_KSTEP), rows_w = resident ? s.co : no;
  ist_sptr<float> ws = smem, ds = smem + rows_w * ldw, wcs = ds + kpad * V2_LDX;
  const int c0 = blockIdx.x * V2_TILE_N, M = ist_fused_in_pixels(&s), mtiles = ist_fused_tiles(M, V2_TILE_M);
  const int tid = threadIdx.x, warp = tid / 32;
  const int wrow0 = (warp % V2_WARPS_N) * V2_WARP_N, wcol0 = (warp / V2_WARPS_N) * V2_WARP_M;
  if (resident)
    for (int o0 = 0; o0 < s.co; o0 += no)
      fused_generate_tile(g, f, o0, min(no, s.co - o0), c0, V2_TILE_N, ws + o0 * ldw, ldw, 0, wcs, jb);
  for (int mt = blockIdx.y; mt < mtiles; mt += gridDim.y) {
    const int m0 = mt * V2_TILE_M;
    float acc[V2_MT][V2_NT][4] = {};
    for (int o0 = 0; o0 < s.co; o0 += no) {
      const int on = min(no, s.co - o0), rows = on * k2;
      if (!resident) fused_generate_tile(g, f, o0, on, c0, V2_TILE_N, ws, ldw, 0, wcs, jb);
      for (int e = tid; e < kpad * V2_TILE_M; e += V2_THREADS) {
        const int r = e / V2_TILE_M, mm = e % V2_TILE_M, m = m0 + mm;
        const int64_t off = (r < rows && m < M) ? ist_fused_dy_offset(&s, o0 + r / k2, r % k2, m) : -1;
        ist_cp_async_4_zfill(ds + r * V2_LDX + mm, off >= 0 ? dy + off : dy, off >= 0);
      }
      ist_cp_async_commit();
      ist_cp_async_wait_all();
      __syncthreads();
      const v2_bwd_a a_at = {ws, ldw, resident ? o0 : 0, k2, rows};
      v2_mma_chunk<PREC>(acc, a_at, ds, kpad, wrow0, wcol0);
      __syncthreads();
    }
    const v2_dx_off off = {&s};
    v2_store(acc, c0 + wrow0, m0 + wcol0, s.ci, M, dx, off);
  }
}
