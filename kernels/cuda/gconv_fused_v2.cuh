/* gconv_fused v2: the fused generated convolution on the tensor cores (mma.sync m16n8k8 TF32 or
 * m16n8k16 BF16, FP32 accumulation). Included by gconv_fused.cu only (it shares v1's generation,
 * fused_generate_tile, which writes FP32 W into shared memory). TF32 keeps the W tile in FP32 and
 * rounds fragments as it reads them; BF16 converts each generated chunk once into a BF16 tile (half
 * the shared memory when resident, laid out [channel][K] for both passes) read by ldmatrix.x4. The
 * level-2 product of the generation (W = V·Wc) runs on the tensor cores too (TF32), level 1
 * (bi multiply-adds per Wc element) on the SIMT cores while Wc is staged. The
 * im2col input tile arrives by cp.async (4-byte, zero-filled
 * at padding taps). CTA: 64 channels × 128 pixels, 8 warps as 2 (channels) × 4 (pixels), each
 * warp 32 × 32 = 2 × 4 mma tiles. K chunks are padded to V2_KSTEP columns with zeros; the input
 * tile is double-buffered (chunk i + 1 loads while chunk i multiplies). Kernels are bounded to two
 * CTAs per SM (128 registers; a few bytes spill). */

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
/* BF16 W tile row pitch padding (elements): a pitch of an odd number of 16-byte units keeps the 8
 * row addresses of an ldmatrix in distinct bank groups. */
#define V2_H_PAD 8

static __host__ __device__ __forceinline__ int v2_round_up(int a, int b) { return (a + b - 1) / b * b; }

/* Columns a resident W tile needs for `channels` in chunks of `per_chunk` (each chunk padded to
 * V2_KSTEP; chunk i starts at i·kpad, the last one only as wide as it is). */
static __host__ __device__ __forceinline__ int v2_resident_width(int channels, int per_chunk, int k2) {
  const int kpad = v2_round_up(per_chunk * k2, V2_KSTEP), n = ist_fused_tiles(channels, per_chunk);
  return (n - 1) * kpad + v2_round_up((channels - (n - 1) * per_chunk) * k2, V2_KSTEP);
}
/* Resident CTAs generate before their first input load, so the generation scratch (FP32 chunk and
 * level-1 rows, `scratch` floats) may live in the two input buffers when it fits there. */
static __host__ __device__ __forceinline__ int v2_scratch_in_inputs(int resident, int kpad, int scratch) {
  return resident && scratch <= 2 * kpad * V2_LDX;
}

/* ---- Generation on the tensor cores. Level 2 is a GEMM, W (rows × cols) = V (rows × bc) · Wc
 * (bc × cols), so v2 runs it as TF32 mma.sync instead of bc FP32 multiply-adds per element on the
 * SIMT cores; level 1 (bi multiply-adds per Wc element) stays scalar while Wc is staged. Output in
 * column blocks of V2_GEN_CB, level-1 rows in rounds of V2_GEN_JB; the 8 warps share the block's
 * 4 × (cols / 8) m16n8 tiles. */
#define V2_GEN_JB 16                   /* level-1 rows per round: two TF32 k-steps */
#define V2_GEN_CB 64                   /* W columns per block: 8 n8 tiles */
#define V2_GEN_LDV (V2_GEN_JB + 4)     /* V stage pitch: A fragments conflict-free */
#define V2_GEN_LDC (V2_GEN_CB + 8)     /* Wc stage pitch: B fragments conflict-free */
#define V2_GEN_TILES_PER_WARP (4 * (V2_GEN_CB / 8) / (V2_THREADS / 32))
#define V2_GEN_SCRATCH (V2_TILE_N * V2_GEN_LDV + V2_GEN_JB * V2_GEN_LDC) /* floats */

/* W[o0 + oo, (c0 + cc)·k² + t] for oo < no (≤ 64), cc < nc into ws[oo·ldw + col0 + cc·k² + t], rows
 * o ≥ co and channels c ≥ ci as 0; scratch: V2_GEN_SCRATCH floats. Ends with a barrier; the caller
 * must have one between its last read of ws/scratch and this call. */
__device__ void v2_generate_tile(const ist_gen_shape &g, const ist_fused_factors &f, int o0, int no, int c0, int nc,
                                 ist_sptr<float> ws, int ldw, int col0, ist_sptr<float> scratch) {
  if (!g.level2) { /* W = Wc: no product */
    fused_generate_tile(g, f, o0, no, c0, nc, ws, ldw, col0, scratch, 1);
    return;
  }
  const int k2 = g.k2, cols = nc * k2, tid = threadIdx.x, warp = tid / 32, lane = tid % 32, gq = lane >> 2, tq = lane & 3;
  ist_sptr<float> vs = scratch, wcs = scratch + V2_TILE_N * V2_GEN_LDV;
  for (int cb0 = 0; cb0 < cols; cb0 += V2_GEN_CB) {
    const int cbn = min(V2_GEN_CB, cols - cb0), ntl = (cbn + 7) / 8;
    float acc[V2_GEN_TILES_PER_WARP][4] = {};
    for (int j0 = 0; j0 < g.nb; j0 += V2_GEN_JB) {
      const int jn = min(V2_GEN_JB, g.nb - j0);
      for (int e = tid; e < V2_TILE_N * V2_GEN_JB; e += V2_THREADS) {
        const int oo = e / V2_GEN_JB, jj = e % V2_GEN_JB, o = o0 + oo;
        vs[oo * V2_GEN_LDV + jj] = (oo < no && o < g.co && jj < jn) ? fused_factor_at(f.v, (int64_t)o * g.bc + j0 + jj) : 0.0f;
      }
      for (int e = tid; e < V2_GEN_JB * V2_GEN_CB; e += V2_THREADS) {
        const int jj = e / V2_GEN_CB, q = e % V2_GEN_CB, col = cb0 + q, c = c0 + col / k2;
        wcs[jj * V2_GEN_LDC + q] = (jj < jn && q < cbn && c < g.ci) ? fused_wc_at(g, f, j0 + jj, c, col % k2) : 0.0f;
      }
      __syncthreads();
#pragma unroll
      for (int i = 0; i < V2_GEN_TILES_PER_WARP; i++) {
        const int id = warp + (V2_THREADS / 32) * i, tile_row = id % 4, ni = id / 4;
        if (ni < ntl) { /* warp-uniform */
#pragma unroll
          for (int k0 = 0; k0 < V2_GEN_JB; k0 += 8) {
            uint32_t a[4], b[2];
            const int r = tile_row * 16 + gq, cc = ni * 8 + gq;
            a[0] = ist_f32_to_tf32(vs[r * V2_GEN_LDV + k0 + tq]);
            a[1] = ist_f32_to_tf32(vs[(r + 8) * V2_GEN_LDV + k0 + tq]);
            a[2] = ist_f32_to_tf32(vs[r * V2_GEN_LDV + k0 + tq + 4]);
            a[3] = ist_f32_to_tf32(vs[(r + 8) * V2_GEN_LDV + k0 + tq + 4]);
            b[0] = ist_f32_to_tf32(wcs[(k0 + tq) * V2_GEN_LDC + cc]);
            b[1] = ist_f32_to_tf32(wcs[(k0 + tq + 4) * V2_GEN_LDC + cc]);
            ist_mma_tf32_16x8x8(acc[i], a, b, acc[i]);
          }
        }
      }
      __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < V2_GEN_TILES_PER_WARP; i++) {
      const int id = warp + (V2_THREADS / 32) * i, tile_row = id % 4, ni = id / 4;
      if (ni >= ntl) continue;
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int row = tile_row * 16 + gq + (e >> 1) * 8, col = ni * 8 + 2 * tq + (e & 1);
        if (row < no && col < cbn) ws[row * ldw + col0 + cb0 + col] = acc[i][e];
      }
    }
  }
  __syncthreads();
}

/* One K chunk of the warp's 32 × 32 tile: acc += A[rows, 0..kpad) · B[0..kpad), cols], B =
 * bs[k·V2_LDX + col]. TF32: A read element by element through a_at(row, k) (FP32 in shared memory);
 * BF16: A's 16 × 16 fragments through a_at.frag (ldmatrix). */
template <int PREC, class AFn>
__device__ __forceinline__ void v2_mma_chunk(float (&acc)[V2_MT][V2_NT][4], const AFn &a_at, ist_sptr<float> bs,
                                             int kpad, int row0, int col0) {
  const int lane = threadIdx.x % 32, gq = lane >> 2, tq = lane & 3;
  if constexpr (PREC == IST_PREC_TF32) {
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
      for (int mi = 0; mi < V2_MT; mi++) a_at.frag(a[mi], row0 + mi * 16, k0);
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

/* TF32 A: an FP32 [row][k] tile (the forward's W rows o; backward-data's transposed rows c). */
struct v2_fwd_a {
  ist_sptr<float> ws;
  int ldw, wcol;
  __device__ __forceinline__ float operator()(int row, int k) const { return ws[row * ldw + wcol + k]; }
};

/* BF16 A: a [row][k] tile of packed bf16 pairs (pitch ldh elements), read by ldmatrix.x4: lanes
 * 0–15 give rows 0–15 at column k0, lanes 16–31 the same rows at k0 + 8, so the four matrices are
 * exactly the m16n8k16 A fragment's a[0..3] (PTX ISA fragment layout). */
struct v2_a_bf16 {
  ist_sptr<uint32_t> wh;
  int ldh, hcol;
  __device__ __forceinline__ void frag(uint32_t (&a)[4], int row0, int k0) const {
    const int lane = threadIdx.x % 32;
    ist_ldmatrix_x4(a, wh + ((row0 + (lane & 15)) * ldh + hcol + k0 + (lane >> 4) * 8) / 2);
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

/* Forward, TF32: CTA = 64 output channels (blockIdx.x) × persistent 128-pixel M tiles (blockIdx.y).
 * Chunks of nc channels = cols columns padded to kpad; resident: every chunk's W columns stay in
 * shared memory (chunk i at column i·kpad), generated straight into the FP32 tile. */
__global__ void __launch_bounds__(V2_THREADS, 2) gconv_fused_v2_forward_tf32(ist_conv_shape s, ist_gen_shape g,
                                                                          ist_fused_factors f, const float *x,
                                                                          float *y, int nc, int resident, int /* jb: v1's level-1 rounds */) {
  IST_DYNAMIC_SHARED(float, smem);
  const int k2 = g.k2, kpad = v2_round_up(nc * k2, V2_KSTEP), nchunks = ist_fused_tiles(s.ci, nc);
  const int ldw = (resident ? v2_resident_width(s.ci, nc, k2) : kpad) + V2_W_PAD;
  /* Two input buffers: chunk i + 1 streams in (cp.async) while the tensor cores work on chunk i. */
  ist_sptr<float> ws = smem, xbuf0 = smem + V2_TILE_N * ldw, xbuf1 = xbuf0 + kpad * V2_LDX;
  ist_sptr<float> wcs = v2_scratch_in_inputs(resident, kpad, V2_GEN_SCRATCH) ? xbuf0 : xbuf1 + kpad * V2_LDX;
  const int o0 = blockIdx.x * V2_TILE_N, M = ist_fused_out_pixels(&s), mtiles = ist_fused_tiles(M, V2_TILE_M);
  const int tid = threadIdx.x, warp = tid / 32;
  const int wrow0 = (warp % V2_WARPS_N) * V2_WARP_N, wcol0 = (warp / V2_WARPS_N) * V2_WARP_M;
  /* The im2col rows of chunk i for pixels m0.., zero at padding taps and beyond the chunk. */
  auto load_x = [&](int i, int m0, ist_sptr<float> xs) {
    const int c0 = i * nc, cols = min(nc, s.ci - c0) * k2;
    for (int e = tid; e < kpad * V2_TILE_M; e += V2_THREADS) {
      const int r = e / V2_TILE_M, mm = e % V2_TILE_M, m = m0 + mm;
      const int64_t off = (r < cols && m < M) ? ist_fused_x_offset(&s, c0 * k2 + r, m) : -1;
      ist_cp_async_4_zfill(xs + r * V2_LDX + mm, off >= 0 ? x + off : x, off >= 0);
    }
    ist_cp_async_commit();
  };
  /* Pad columns must read as 0 (shared memory starts as garbage; NaN·0 is NaN). */
  for (int e = tid; e < V2_TILE_N * ldw; e += V2_THREADS) ws[e] = 0.0f;
  __syncthreads();
  if (resident)
    for (int c0 = 0, i = 0; c0 < s.ci; c0 += nc, i++)
      v2_generate_tile(g, f, o0, V2_TILE_N, c0, min(nc, s.ci - c0), ws, ldw, i * kpad, wcs);
  for (int mt = blockIdx.y; mt < mtiles; mt += gridDim.y) {
    const int m0 = mt * V2_TILE_M;
    float acc[V2_MT][V2_NT][4] = {};
    load_x(0, m0, xbuf0);
    for (int i = 0; i < nchunks; i++) {
      const int c0 = i * nc;
      if (!resident) v2_generate_tile(g, f, o0, V2_TILE_N, c0, min(nc, s.ci - c0), ws, ldw, 0, wcs);
      if (i + 1 < nchunks) {
        load_x(i + 1, m0, (i + 1) & 1 ? xbuf1 : xbuf0);
        ist_cp_async_wait_group<1>();
      } else {
        ist_cp_async_wait_group<0>();
      }
      __syncthreads();
      const v2_fwd_a a_at = {ws, ldw, resident ? i * kpad : 0};
      const int kpad_i = v2_round_up(min(nc, s.ci - c0) * k2, V2_KSTEP); /* the last chunk may be narrower */
      v2_mma_chunk<IST_PREC_TF32>(acc, a_at, i & 1 ? xbuf1 : xbuf0, kpad_i, wrow0, wcol0);
      __syncthreads(); /* before the next chunk's load overwrites this buffer */
    }
    const v2_y_off off = {&s};
    v2_store(acc, o0 + wrow0, m0 + wcol0, s.co, M, y, off);
  }
}

/* ---- BF16: the W tile in BF16, [channel][K], read by ldmatrix. Each K chunk is generated in FP32
 * into wf (fused_generate_tile) and converted once; chunk i occupies columns i·kpad.. of wh when
 * resident (else columns 0..kpad), zero beyond the chunk's real columns. */

/* Forward: rows = the CTA's 64 output channels, columns = the chunk's (c, t). */
__global__ void __launch_bounds__(V2_THREADS, 2) gconv_fused_v2_forward_bf16(ist_conv_shape s, ist_gen_shape g,
                                                                          ist_fused_factors f, const float *x,
                                                                          float *y, int nc, int resident, int /* jb: v1's level-1 rounds */) {
  IST_DYNAMIC_SHARED(float, smem);
  const int k2 = g.k2, kc = nc * k2, kpad = v2_round_up(kc, V2_KSTEP), nchunks = ist_fused_tiles(s.ci, nc);
  const int ldh = (resident ? v2_resident_width(s.ci, nc, k2) : kpad) + V2_H_PAD;
  ist_sptr<uint32_t> wh = ist_scast<uint32_t>(smem);
  ist_sptr<float> xbuf0 = smem + V2_TILE_N * ldh / 2, xbuf1 = xbuf0 + kpad * V2_LDX;
  ist_sptr<float> wf = v2_scratch_in_inputs(resident, kpad, V2_TILE_N * kc + V2_GEN_SCRATCH) ? xbuf0 : xbuf1 + kpad * V2_LDX,
                  wcs = wf + V2_TILE_N * kc;
  const int o0 = blockIdx.x * V2_TILE_N, M = ist_fused_out_pixels(&s), mtiles = ist_fused_tiles(M, V2_TILE_M);
  const int tid = threadIdx.x, warp = tid / 32;
  const int wrow0 = (warp % V2_WARPS_N) * V2_WARP_N, wcol0 = (warp / V2_WARPS_N) * V2_WARP_M;
  auto load_x = [&](int i, int m0, ist_sptr<float> xs) {
    const int c0 = i * nc, cols = min(nc, s.ci - c0) * k2;
    for (int e = tid; e < kpad * V2_TILE_M; e += V2_THREADS) {
      const int r = e / V2_TILE_M, mm = e % V2_TILE_M, m = m0 + mm;
      const int64_t off = (r < cols && m < M) ? ist_fused_x_offset(&s, c0 * k2 + r, m) : -1;
      ist_cp_async_4_zfill(xs + r * V2_LDX + mm, off >= 0 ? x + off : x, off >= 0);
    }
    ist_cp_async_commit();
  };
  /* Generates chunk i (FP32, wf) and stores it as BF16 pairs at columns hcol.. of wh. */
  auto make_chunk = [&](int i, int hcol) {
    const int c0 = i * nc, ncc = min(nc, s.ci - c0), cols = ncc * k2, half = v2_round_up(cols, V2_KSTEP) / 2;
    v2_generate_tile(g, f, o0, V2_TILE_N, c0, ncc, wf, kc, 0, wcs);
    for (int e = tid; e < V2_TILE_N * half; e += V2_THREADS) {
      const int row = e / half, q = 2 * (e - row * half);
      const float lo = q < cols ? (float)wf[row * kc + q] : 0.0f, hi = q + 1 < cols ? (float)wf[row * kc + q + 1] : 0.0f;
      wh[(row * ldh + hcol + q) / 2] = ist_pack_bf16x2(lo, hi);
    }
    __syncthreads();
  };
  if (resident)
    for (int i = 0; i < nchunks; i++) make_chunk(i, i * kpad);
  for (int mt = blockIdx.y; mt < mtiles; mt += gridDim.y) {
    const int m0 = mt * V2_TILE_M;
    float acc[V2_MT][V2_NT][4] = {};
    load_x(0, m0, xbuf0);
    for (int i = 0; i < nchunks; i++) {
      if (!resident) make_chunk(i, 0);
      if (i + 1 < nchunks) {
        load_x(i + 1, m0, (i + 1) & 1 ? xbuf1 : xbuf0);
        ist_cp_async_wait_group<1>();
      } else {
        ist_cp_async_wait_group<0>();
      }
      __syncthreads();
      const v2_a_bf16 a_at = {wh, ldh, resident ? i * kpad : 0};
      const int kpad_i = v2_round_up(min(nc, s.ci - i * nc) * k2, V2_KSTEP);
      v2_mma_chunk<IST_PREC_BF16>(acc, a_at, i & 1 ? xbuf1 : xbuf0, kpad_i, wrow0, wcol0);
      __syncthreads(); /* before the next chunk's load or generation overwrites what was read */
    }
    const v2_y_off off = {&s};
    v2_store(acc, o0 + wrow0, m0 + wcol0, s.co, M, y, off);
  }
}

/* Backward-data: CTA = 64 input channels (blockIdx.x) × persistent 128-input-pixel tiles; K chunks
 * of no output channels × k² taps. W is kept as rows = the CTA's channels c, columns = the chunk's
 * (output channel, tap) pairs, i.e. wt[c][oo·k² + t] = W[o0 + oo, c·k² + t] — the transpose the
 * GEMM needs, made once per generated chunk: FP32 (TF32, pitch ≡ 4 mod 32 words) or BF16 pairs
 * (ldmatrix). */
template <int PREC>
__global__ void __launch_bounds__(V2_THREADS, 2) gconv_fused_v2_backward_data(ist_conv_shape s, ist_gen_shape g,
                                                                           ist_fused_factors f, const float *dy,
                                                                           float *dx, int no, int resident, int /* jb: v1's level-1 rounds */) {
  constexpr bool kBf16 = PREC == IST_PREC_BF16;
  IST_DYNAMIC_SHARED(float, smem);
  const int k2 = g.k2, ldw = V2_TILE_N * k2, kpad = v2_round_up(no * k2, V2_KSTEP), nchunks = ist_fused_tiles(s.co, no);
  /* Pitch of the transposed tile in elements (BF16 elements or floats). */
  const int ldh = (resident ? v2_resident_width(s.co, no, k2) : kpad) + (kBf16 ? V2_H_PAD : V2_W_PAD);
  const int tile_floats = kBf16 ? V2_TILE_N * ldh / 2 : V2_TILE_N * ldh;
  ist_sptr<uint32_t> wh = ist_scast<uint32_t>(smem);
  ist_sptr<float> wt = smem, dbuf0 = smem + tile_floats, dbuf1 = dbuf0 + kpad * V2_LDX;
  ist_sptr<float> wf = v2_scratch_in_inputs(resident, kpad, no * ldw + V2_GEN_SCRATCH) ? dbuf0 : dbuf1 + kpad * V2_LDX,
                  wcs = wf + no * ldw;
  const int c0 = blockIdx.x * V2_TILE_N, M = ist_fused_in_pixels(&s), mtiles = ist_fused_tiles(M, V2_TILE_M);
  const int tid = threadIdx.x, warp = tid / 32;
  const int wrow0 = (warp % V2_WARPS_N) * V2_WARP_N, wcol0 = (warp / V2_WARPS_N) * V2_WARP_M;
  auto load_dy = [&](int i, int m0, ist_sptr<float> ds) {
    const int o0 = i * no, rows = min(no, s.co - o0) * k2;
    for (int e = tid; e < kpad * V2_TILE_M; e += V2_THREADS) {
      const int r = e / V2_TILE_M, mm = e % V2_TILE_M, m = m0 + mm;
      const int64_t off = (r < rows && m < M) ? ist_fused_dy_offset(&s, o0 + r / k2, r % k2, m) : -1;
      ist_cp_async_4_zfill(ds + r * V2_LDX + mm, off >= 0 ? dy + off : dy, off >= 0);
    }
    ist_cp_async_commit();
  };
  auto make_chunk = [&](int i, int hcol) {
    const int o0 = i * no, on = min(no, s.co - o0), rows = on * k2, half = v2_round_up(rows, V2_KSTEP) / 2;
    v2_generate_tile(g, f, o0, on, c0, V2_TILE_N, wf, ldw, 0, wcs);
    for (int e = tid; e < V2_TILE_N * half; e += V2_THREADS) {
      const int c = e / half, q = 2 * (e - c * half);
      float v[2];
      for (int h = 0; h < 2; h++) {
        const int kk = q + h, oo = kk / k2;
        v[h] = kk < rows ? (float)wf[oo * ldw + c * k2 + (kk - oo * k2)] : 0.0f;
      }
      if constexpr (kBf16) {
        wh[(c * ldh + hcol + q) / 2] = ist_pack_bf16x2(v[0], v[1]);
      } else {
        wt[c * ldh + hcol + q] = v[0];
        wt[c * ldh + hcol + q + 1] = v[1];
      }
    }
    __syncthreads();
  };
  if (resident)
    for (int i = 0; i < nchunks; i++) make_chunk(i, i * kpad);
  for (int mt = blockIdx.y; mt < mtiles; mt += gridDim.y) {
    const int m0 = mt * V2_TILE_M;
    float acc[V2_MT][V2_NT][4] = {};
    load_dy(0, m0, dbuf0);
    for (int i = 0; i < nchunks; i++) {
      if (!resident) make_chunk(i, 0);
      if (i + 1 < nchunks) {
        load_dy(i + 1, m0, (i + 1) & 1 ? dbuf1 : dbuf0);
        ist_cp_async_wait_group<1>();
      } else {
        ist_cp_async_wait_group<0>();
      }
      __syncthreads();
      const int kpad_i = v2_round_up(min(no, s.co - i * no) * k2, V2_KSTEP); /* the last chunk may be narrower */
      if constexpr (kBf16) {
        const v2_a_bf16 a_at = {wh, ldh, resident ? i * kpad : 0};
        v2_mma_chunk<PREC>(acc, a_at, i & 1 ? dbuf1 : dbuf0, kpad_i, wrow0, wcol0);
      } else {
        const v2_fwd_a a_at = {wt, ldh, resident ? i * kpad : 0};
        v2_mma_chunk<PREC>(acc, a_at, i & 1 ? dbuf1 : dbuf0, kpad_i, wrow0, wcol0);
      }
      __syncthreads();
    }
    const v2_dx_off off = {&s};
    v2_store(acc, c0 + wrow0, m0 + wcol0, s.ci, M, dx, off);
  }
}
