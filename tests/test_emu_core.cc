// The CPU execution check itself (tests/cuda_emu): correct kernels give the right values, and each
// planted bug (a missing __syncthreads, a divergent barrier, an exit while others wait, an
// out-of-bounds shared write, a shared race, a wrong mma fragment index, a read before a cp.async
// wait, a transposed cuBLAS argument) is caught with a clear message.
#include <time.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/cuda/ist_cuda.h"
#include "tests/cuda_test_util.h"
#include "tests/test_util.h"

namespace {

constexpr int kTile = 16;

// C (m × n) = A (m × k) · B (k × n), row-major, through 16 × 16 shared tiles.
template <bool kSecondSync>
__global__ void matmul_tiled(int m, int n, int k, const float *a, const float *b, float *c) {
  IST_SHARED(float, as, kTile * kTile);
  IST_SHARED(float, bs, kTile * kTile);
  int tx = threadIdx.x, ty = threadIdx.y;
  int row = blockIdx.y * kTile + ty, col = blockIdx.x * kTile + tx;
  float acc = 0;
  for (int t0 = 0; t0 < k; t0 += kTile) {
    as[ty * kTile + tx] = row < m && t0 + tx < k ? a[row * k + t0 + tx] : 0.0f;
    bs[ty * kTile + tx] = t0 + ty < k && col < n ? b[(t0 + ty) * n + col] : 0.0f;
    __syncthreads();
    for (int i = 0; i < kTile; i++) acc += as[ty * kTile + i] * bs[i * kTile + tx];
    if (kSecondSync) __syncthreads();
  }
  if (row < m && col < n) c[row * n + col] = acc;
}

std::vector<float> matmul_ref(int m, int n, int k, const std::vector<float> &a, const std::vector<float> &b) {
  std::vector<float> c((size_t)m * n);
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double s = 0;
      for (int p = 0; p < k; p++) s += (double)a[(size_t)i * k + p] * b[(size_t)p * n + j];
      c[(size_t)i * n + j] = (float)s;
    }
  return c;
}

std::string report() { return ist_emu_last_report(); }

template <bool kSecondSync>
void run_matmul(int m, int n, int k, const std::vector<float> &a, const std::vector<float> &b, std::vector<float> &c) {
  ist_dev_buf<float> da(a), db(b), dc((size_t)m * n);
  dim3 grid((n + kTile - 1) / kTile, (m + kTile - 1) / kTile), block(kTile, kTile);
  IST_LAUNCH(matmul_tiled<kSecondSync>, grid, block, 0, ist_cuda_stream(), m, n, k, da.get(), db.get(), dc.get());
  c.assign((size_t)m * n, 0.0f);
  cudaMemcpy(c.data(), dc.get(), c.size() * sizeof(float), cudaMemcpyDeviceToHost);
}

TEST(EmuCore, TiledMatmulMatchesTheReference) {
  IST_REQUIRE_CUDA();
  const int m = 64, n = 64, k = 64;
  auto a = randn((size_t)m * k, 1), b = randn((size_t)k * n, 2);
  std::vector<float> c;
  // CPU time of this thread (the machine may be shared; wall time would measure the neighbours).
  timespec t0, t1;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
  run_matmul<true>(m, n, k, a, b, c);
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess) << report();
  EXPECT_TRUE(ist_expect_close(c, matmul_ref(m, n, k, a, b), 1e-4, 1e-4, "C"));
  printf("64x64x64 tiled matmul, 16 blocks of 256 threads: %.3f s of CPU\n", secs);
  EXPECT_LT(secs, 1.0);
}

TEST(EmuCore, TiledMatmulWithRaggedEdges) {
  IST_REQUIRE_CUDA();
  const int m = 37, n = 21, k = 45;
  auto a = randn((size_t)m * k, 3), b = randn((size_t)k * n, 4);
  std::vector<float> c;
  run_matmul<true>(m, n, k, a, b, c);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess) << report();
  EXPECT_TRUE(ist_expect_close(c, matmul_ref(m, n, k, a, b), 1e-4, 1e-4, "C"));
}

TEST(EmuCore, MissingSyncthreadsIsReportedAsARace) {
  IST_REQUIRE_CUDA();
  const int m = 32, n = 32, k = 64;
  auto a = randn((size_t)m * k, 5), b = randn((size_t)k * n, 6);
  std::vector<float> c;
  run_matmul<false>(m, n, k, a, b, c);
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  std::string r = report();
  EXPECT_NE(r.find("shared-memory race in kernel matmul_tiled<kSecondSync>"), std::string::npos) << r;
  EXPECT_NE(r.find("no __syncthreads between"), std::string::npos) << r;
  EXPECT_NE(r.find("`as`"), std::string::npos) << r;
  EXPECT_NE(r.find("; the two accesses: `addr2line -Cfpie "), std::string::npos) << r;  // where in the kernel
  // The device stays failed until reset, as a GPU context does after a fault.
  EXPECT_EQ(cudaDeviceSynchronize(), cudaErrorLaunchFailure);
  ist_emu_reset();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

// Sum of x[0..n) into *out: a warp-shuffle reduction per warp, the warps' sums through shared
// memory, one atomicAdd per block.
__global__ void sum_shuffle(int n, const float *x, float *out) {
  IST_SHARED(float, warp_sums, 32);
  float v = 0;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) v += x[i];
  for (int off = 16; off > 0; off /= 2) v += __shfl_down_sync(0xffffffffu, v, off);
  int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    int nwarps = blockDim.x / 32;
    v = lane < nwarps ? (float)warp_sums[lane] : 0.0f;
    for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
    if (lane == 0) atomicAdd(out, v);
  }
}

TEST(EmuCore, WarpShuffleReductionSums) {
  IST_REQUIRE_CUDA();
  const int n = 5000;
  auto x = randn(n, 7);
  double want = 0;
  for (float v : x) want += v;
  ist_dev_buf<float> dx(x), dout(std::vector<float>{0.0f});
  IST_LAUNCH(sum_shuffle, 4, 256, 0, ist_cuda_stream(), n, dx.get(), dout.get());
  ASSERT_EQ(cudaGetLastError(), cudaSuccess) << report();
  EXPECT_NEAR(dout.download()[0], want, 1e-3);
}

__global__ void ballot_vote(const int *pred, unsigned *out) {
  int lane = threadIdx.x;
  unsigned b = __ballot_sync(0xffffffffu, pred[lane]);
  int all = __all_sync(0xffffffffu, pred[lane]), any = __any_sync(0xffffffffu, pred[lane]);
  if (lane == 0) {
    out[0] = b;
    out[1] = (unsigned)all;
    out[2] = (unsigned)any;
  }
}

TEST(EmuCore, BallotAllAnySeeEveryLane) {
  IST_REQUIRE_CUDA();
  std::vector<int> p(32, 0);
  p[3] = p[17] = p[31] = 1;
  ist_dev_buf<int> dp(p);
  ist_dev_buf<unsigned> dout(3);
  IST_LAUNCH(ballot_vote, 1, 32, 0, ist_cuda_stream(), dp.get(), dout.get());
  ASSERT_EQ(cudaGetLastError(), cudaSuccess) << report();
  auto o = dout.download();
  EXPECT_EQ(o[0], (1u << 3) | (1u << 17) | (1u << 31));
  EXPECT_EQ(o[1], 0u);
  EXPECT_EQ(o[2], 1u);
}

// Histogram of values in [0, bins) with shared atomics, merged by global atomics.
__global__ void histogram(int n, const int *v, int bins, int *hist) {
  IST_SHARED(int, h, 64);
  for (int i = threadIdx.x; i < bins; i += blockDim.x) h[i] = 0;
  __syncthreads();
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) atomicAdd(h + v[i], 1);
  __syncthreads();
  for (int i = threadIdx.x; i < bins; i += blockDim.x) atomicAdd(&hist[i], (int)h[i]);
}

TEST(EmuCore, SharedAndGlobalAtomicsCount) {
  IST_REQUIRE_CUDA();
  const int n = 3000, bins = 64;
  std::vector<int> v(n), want(bins, 0);
  for (int i = 0; i < n; i++) want[v[i] = (i * 7919) % bins]++;
  ist_dev_buf<int> dv(v), dh(std::vector<int>(bins, 0));
  IST_LAUNCH(histogram, 3, 128, 0, ist_cuda_stream(), n, dv.get(), bins, dh.get());
  ASSERT_EQ(cudaGetLastError(), cudaSuccess) << report();
  EXPECT_EQ(dh.download(), want);
}

__global__ void divergent_barrier(float *out) {
  if (threadIdx.x < 40) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1.0f;
}

TEST(EmuCore, DivergentBarrierIsReportedWithBothSites) {
  IST_REQUIRE_CUDA();
  ist_dev_buf<float> out(64);
  IST_LAUNCH(divergent_barrier, 1, 64, 0, ist_cuda_stream(), out.get());
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  std::string r = report();
  EXPECT_NE(r.find("divergent __syncthreads in kernel divergent_barrier, block (0,0,0)"), std::string::npos) << r;
  EXPECT_NE(r.find("thread (0,0,0) waits at"), std::string::npos) << r;
  EXPECT_NE(r.find("thread (40,0,0) reached"), std::string::npos) << r;
  EXPECT_NE(r.find("test_emu_core.cc"), std::string::npos) << r;
}

__global__ void exit_before_barrier(float *out) {
  if (threadIdx.x == 5) return;
  __syncthreads();
  out[threadIdx.x] = 1.0f;
}

TEST(EmuCore, ThreadExitingWhileOthersWaitIsReported) {
  IST_REQUIRE_CUDA();
  ist_dev_buf<float> out(32);
  IST_LAUNCH(exit_before_barrier, 1, 32, 0, ist_cuda_stream(), out.get());
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  std::string r = report();
  EXPECT_NE(r.find("thread (5,0,0) returned while thread (0,0,0)"), std::string::npos) << r;
  EXPECT_NE(r.find("waits at __syncthreads"), std::string::npos) << r;
}

__global__ void oob_shared_write(float *out) {
  IST_SHARED(float, s, 32);
  s[threadIdx.x + 1] = (float)threadIdx.x;
  __syncthreads();
  out[threadIdx.x] = s[threadIdx.x];
}

TEST(EmuCore, OutOfBoundsSharedWriteIsReported) {
  IST_REQUIRE_CUDA();
  ist_dev_buf<float> out(32);
  IST_LAUNCH(oob_shared_write, 1, 32, 0, ist_cuda_stream(), out.get());
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  std::string r = report();
  EXPECT_NE(r.find("out-of-bounds shared-memory write in kernel oob_shared_write, block (0,0,0): thread "
                   "(31,0,0) accessed `s`[32] (bytes 128..131), outside its 128 bytes"),
            std::string::npos)
      << r;
  EXPECT_NE(r.find("; the access: `addr2line -Cfpie "), std::string::npos) << r;  // where in the kernel
}

// Each thread writes its word, then reads its neighbour's in the other warp without a barrier: thread 0
// reads word 32 before thread 32 (run later) writes it.
__global__ void shared_race(float *out) {
  IST_SHARED(float, s, 64);
  s[threadIdx.x] = (float)threadIdx.x;
  out[threadIdx.x] = s[(threadIdx.x + 32) % 64];
}

TEST(EmuCore, SharedRaceNamesBothThreadsAndTheArray) {
  IST_REQUIRE_CUDA();
  ist_dev_buf<float> out(64);
  IST_LAUNCH(shared_race, 1, 64, 0, ist_cuda_stream(), out.get());
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  std::string r = report();
  EXPECT_NE(r.find("shared-memory race in kernel shared_race, block (0,0,0): thread (0,0,0) read `s` byte 128 "
                   "and thread (32,0,0) wrote it with no __syncthreads between"),
            std::string::npos)
      << r;
}

// Within one warp, __syncwarp orders shared accesses: no race.
__global__ void warp_exchange(float *out) {
  IST_SHARED(float, s, 32);
  s[threadIdx.x] = (float)threadIdx.x;
  __syncwarp();
  out[threadIdx.x] = s[31 - threadIdx.x];
}

TEST(EmuCore, SyncwarpOrdersAWarpsSharedAccesses) {
  IST_REQUIRE_CUDA();
  ist_dev_buf<float> out(32);
  IST_LAUNCH(warp_exchange, 1, 32, 0, ist_cuda_stream(), out.get());
  ASSERT_EQ(cudaGetLastError(), cudaSuccess) << report();
  auto o = out.download();
  for (int i = 0; i < 32; i++) EXPECT_EQ(o[i], 31 - i);
}

__global__ void shuffle_bad_mask(float *out) {
  float v = __shfl_sync(0x0000ffffu, (float)threadIdx.x, 0);
  out[threadIdx.x] = v;
}

TEST(EmuCore, ShuffleFromALaneOutsideItsMaskIsReported) {
  IST_REQUIRE_CUDA();
  ist_dev_buf<float> out(32);
  IST_LAUNCH(shuffle_bad_mask, 1, 32, 0, ist_cuda_stream(), out.get());
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  std::string r = report();
  EXPECT_NE(r.find("lane 16 (thread (16,0,0)) calls __shfl_sync"), std::string::npos) << r;
  EXPECT_NE(r.find("which does not name it"), std::string::npos) << r;
}

TEST(EmuCore, LaunchConfigurationsAGpuRefusesAreRefused) {
  IST_REQUIRE_CUDA();
  ist_dev_buf<float> out(2048);
  IST_LAUNCH(warp_exchange, 1, 1056, 0, ist_cuda_stream(), out.get());
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);  // not sticky
  IST_LAUNCH(warp_exchange, 1, 32, 64 * 1024, ist_cuda_stream(), out.get());
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  EXPECT_NE(report().find("cudaFuncAttributeMaxDynamicSharedMemorySize"), std::string::npos) << report();
  ASSERT_EQ(cudaFuncSetAttribute(warp_exchange, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 * 1024), cudaSuccess);
  IST_LAUNCH(warp_exchange, 1, 32, 64 * 1024, ist_cuda_stream(), out.get());
  EXPECT_EQ(cudaGetLastError(), cudaSuccess) << report();
}

// ---- Tensor cores (one warp), fragments per the PTX ISA layouts written in ist_cuda.h.
float tf32_round(float x) { return __uint_as_float(ist_f32_to_tf32(x)); }
float bf16_round(float x) { return __bfloat162float(__float2bfloat16(x)); }

// D (16 × 8) = A (16 × 8, row-major) · B (8 × 8, B[k][n] row-major) + C; kWrongFragment puts A[g+8][t]
// (a[1]'s element) in a[2] too, as a kernel with a fragment-index slip would.
template <bool kWrongFragment>
__global__ void mma_tf32_tile(const float *a, const float *b, const float *c, float *d) {
  int lane = threadIdx.x, g = lane >> 2, t = lane & 3;
  uint32_t af[4] = {ist_f32_to_tf32(a[g * 8 + t]), ist_f32_to_tf32(a[(g + 8) * 8 + t]),
                    ist_f32_to_tf32(a[g * 8 + t + 4]), ist_f32_to_tf32(a[(g + 8) * 8 + t + 4])};
  if (kWrongFragment) af[2] = ist_f32_to_tf32(a[(g + 8) * 8 + t]);
  uint32_t bf[2] = {ist_f32_to_tf32(b[t * 8 + g]), ist_f32_to_tf32(b[(t + 4) * 8 + g])};
  float cf[4] = {c[g * 8 + 2 * t], c[g * 8 + 2 * t + 1], c[(g + 8) * 8 + 2 * t], c[(g + 8) * 8 + 2 * t + 1]};
  float df[4];
  ist_mma_tf32_16x8x8(df, af, bf, cf);
  d[g * 8 + 2 * t] = df[0];
  d[g * 8 + 2 * t + 1] = df[1];
  d[(g + 8) * 8 + 2 * t] = df[2];
  d[(g + 8) * 8 + 2 * t + 1] = df[3];
}

std::vector<float> mma_ref(int m, int n, int k, const std::vector<float> &a, const std::vector<float> &b,
                           const std::vector<float> &c, float (*round)(float)) {
  std::vector<float> d((size_t)m * n);
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double s = c[(size_t)i * n + j];
      for (int p = 0; p < k; p++) s += (double)round(a[(size_t)i * k + p]) * round(b[(size_t)p * n + j]);
      d[(size_t)i * n + j] = (float)s;
    }
  return d;
}

template <bool kWrong>
std::vector<float> run_mma_tf32(const std::vector<float> &a, const std::vector<float> &b, const std::vector<float> &c) {
  ist_dev_buf<float> da(a), db(b), dc(c), dd(16 * 8);
  IST_LAUNCH(mma_tf32_tile<kWrong>, 1, 32, 0, ist_cuda_stream(), da.get(), db.get(), dc.get(), dd.get());
  EXPECT_EQ(cudaGetLastError(), cudaSuccess) << report();
  return dd.download();
}

TEST(EmuCore, MmaTf32TileProductMatchesTheReference) {
  IST_REQUIRE_CUDA();
  auto a = randn(16 * 8, 11), b = randn(8 * 8, 12), c = randn(16 * 8, 13);
  EXPECT_TRUE(ist_expect_close(run_mma_tf32<false>(a, b, c), mma_ref(16, 8, 8, a, b, c, tf32_round), 1e-5, 1e-5, "D"));
  // The operands are read as TF32: the product differs from the FP32 one by more than FP32 rounding.
  EXPECT_FALSE(ist_expect_close(run_mma_tf32<false>(a, b, c), mma_ref(16, 8, 8, a, b, c, [](float x) { return x; }),
                                1e-6, 1e-6));
}

TEST(EmuCore, MmaWithAWrongFragmentIndexGivesWrongValues) {
  IST_REQUIRE_CUDA();
  auto a = randn(16 * 8, 11), b = randn(8 * 8, 12), c = randn(16 * 8, 13);
  EXPECT_FALSE(ist_expect_close(run_mma_tf32<true>(a, b, c), mma_ref(16, 8, 8, a, b, c, tf32_round), 1e-3, 1e-3,
                                "D with a[2] wrong"));
}

// D (16 × 8) = A (16 × 16, row-major) · B (16 × 8, B[k][n] row-major), bf16 operands: loaded by
// ldmatrix from shared memory (x4 for A, x2.trans for B), or packed from registers.
template <bool kLdmatrix>
__global__ void mma_bf16_tile(const float *a, const float *b, float *d) {
  IST_SHARED(__nv_bfloat16, as, 16 * 16);
  IST_SHARED(__nv_bfloat16, bs, 16 * 8);
  int lane = threadIdx.x, g = lane >> 2, t = lane & 3;
  uint32_t af[4], bf[2];
  if (kLdmatrix) {
    for (int i = lane; i < 256; i += 32) as[i] = __float2bfloat16(a[i]);
    for (int i = lane; i < 128; i += 32) bs[i] = __float2bfloat16(b[i]);
    __syncwarp();
    int m = lane >> 3, r = lane & 7;
    ist_ldmatrix_x4(af, as + (r + 8 * (m & 1)) * 16 + 8 * (m >> 1));
    ist_ldmatrix_x2_trans(bf, bs + (lane & 15) * 8);
  } else {
    af[0] = ist_pack_bf16x2(a[g * 16 + 2 * t], a[g * 16 + 2 * t + 1]);
    af[1] = ist_pack_bf16x2(a[(g + 8) * 16 + 2 * t], a[(g + 8) * 16 + 2 * t + 1]);
    af[2] = ist_pack_bf16x2(a[g * 16 + 2 * t + 8], a[g * 16 + 2 * t + 9]);
    af[3] = ist_pack_bf16x2(a[(g + 8) * 16 + 2 * t + 8], a[(g + 8) * 16 + 2 * t + 9]);
    bf[0] = ist_pack_bf16x2(b[(2 * t) * 8 + g], b[(2 * t + 1) * 8 + g]);
    bf[1] = ist_pack_bf16x2(b[(2 * t + 8) * 8 + g], b[(2 * t + 9) * 8 + g]);
  }
  float cf[4] = {0, 0, 0, 0}, df[4];
  ist_mma_bf16_16x8x16(df, af, bf, cf);
  d[g * 8 + 2 * t] = df[0];
  d[g * 8 + 2 * t + 1] = df[1];
  d[(g + 8) * 8 + 2 * t] = df[2];
  d[(g + 8) * 8 + 2 * t + 1] = df[3];
}

template <bool kLdmatrix>
void check_mma_bf16() {
  auto a = randn(16 * 16, 21), b = randn(16 * 8, 22);
  std::vector<float> zero(16 * 8, 0.0f);
  ist_dev_buf<float> da(a), db(b), dd(16 * 8);
  IST_LAUNCH(mma_bf16_tile<kLdmatrix>, 1, 32, 0, ist_cuda_stream(), da.get(), db.get(), dd.get());
  ASSERT_EQ(cudaGetLastError(), cudaSuccess) << report();
  EXPECT_TRUE(ist_expect_close(dd.download(), mma_ref(16, 8, 16, a, b, zero, bf16_round), 1e-5, 1e-5, "D"));
}

TEST(EmuCore, MmaBf16TileProductFromRegistersMatchesTheReference) {
  IST_REQUIRE_CUDA();
  check_mma_bf16<false>();
}

TEST(EmuCore, MmaBf16TileProductFedByLdmatrixMatchesTheReference) {
  IST_REQUIRE_CUDA();
  check_mma_bf16<true>();
}

// ---- cp.async: a two-stage pipeline of 16-byte copies; y[t·256 + j] = 2·x[t·256 + 255 − j]. Each
// thread reads elements other threads copied, so it needs the wait and the barrier; kWait = false
// forgets the wait.
template <bool kWait>
__global__ void cp_async_reverse(int tiles, const float *x, float *y) {
  IST_SHARED(float, buf, 2 * 256);
  int tid = threadIdx.x;
  ist_cp_async_16(buf + 4 * tid, x + 4 * tid);
  ist_cp_async_commit();
  for (int t = 0; t < tiles; t++) {
    int s = t & 1;
    if (t + 1 < tiles) ist_cp_async_16(buf + (s ^ 1) * 256 + 4 * tid, x + (t + 1) * 256 + 4 * tid);
    ist_cp_async_commit();
    if (kWait) ist_cp_async_wait_group<1>();
    __syncthreads();
    for (int j = tid; j < 256; j += 64) y[t * 256 + j] = 2.0f * buf[s * 256 + 255 - j];
    __syncthreads();
  }
}

TEST(EmuCore, CpAsyncPipelineDeliversEveryTile) {
  IST_REQUIRE_CUDA();
  const int tiles = 3;
  auto x = randn(tiles * 256, 31);
  ist_dev_buf<float> dx(x), dy(x.size());
  IST_LAUNCH(cp_async_reverse<true>, 1, 64, 0, ist_cuda_stream(), tiles, dx.get(), dy.get());
  ASSERT_EQ(cudaGetLastError(), cudaSuccess) << report();
  std::vector<float> want(x.size());
  for (int t = 0; t < tiles; t++)
    for (int j = 0; j < 256; j++) want[t * 256 + j] = 2.0f * x[t * 256 + 255 - j];
  EXPECT_EQ(dy.download(), want);
}

TEST(EmuCore, ReadingBeforeTheCpAsyncWaitIsReported) {
  IST_REQUIRE_CUDA();
  auto x = randn(2 * 256, 32);
  ist_dev_buf<float> dx(x), dy(x.size());
  IST_LAUNCH(cp_async_reverse<false>, 1, 64, 0, ist_cuda_stream(), 2, dx.get(), dy.get());
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  std::string r = report();
  // Thread 63 completes the barrier and reads first: buf[192], which thread 48 is filling.
  EXPECT_NE(r.find("read before wait in kernel cp_async_reverse<false>, block (0,0,0): thread (63,0,0) read `buf` "
                   "byte 768 while a cp.async of thread (48,0,0) issued at"),
            std::string::npos)
      << r;
}

// ---- cuBLAS: row-major C (m × n) = A (m × k) · B (k × n) is the column-major Cᵀ = Bᵀ · Aᵀ.
TEST(EmuCore, CublasSgemmComputesTheColumnMajorProduct) {
  IST_REQUIRE_CUDA();
  const int m = 6, n = 5, k = 7;
  auto a = randn((size_t)m * k, 41), b = randn((size_t)k * n, 42);
  ist_dev_buf<float> da(a), db(b), dc((size_t)m * n);
  const float one = 1, zero = 0;
  ASSERT_EQ(cublasSgemm(ist_cuda_blas(), CUBLAS_OP_N, CUBLAS_OP_N, n, m, k, &one, db, n, da, k, &zero, dc, n),
            CUBLAS_STATUS_SUCCESS);
  EXPECT_TRUE(ist_expect_close(dc.download(), matmul_ref(m, n, k, a, b), 1e-5, 1e-5, "C"));
}

TEST(EmuCore, CublasWithATransposedArgumentFailsOrComputesWrongValues) {
  IST_REQUIRE_CUDA();
  const int m = 6, n = 5, k = 7;
  auto a = randn((size_t)m * k, 41), b = randn((size_t)k * n, 42);
  auto want = matmul_ref(m, n, k, a, b);
  ist_dev_buf<float> da(a), db(b), dc((size_t)m * n);
  const float one = 1, zero = 0;
  // Row-major operands passed as if they were column-major: a valid call, a wrong product.
  ASSERT_EQ(cublasSgemm(ist_cuda_blas(), CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, da, m, db, k, &zero, dc, m),
            CUBLAS_STATUS_SUCCESS);
  EXPECT_FALSE(ist_expect_close(dc.download(), want, 1e-3, 1e-3));
  // B marked transposed with its untransposed leading dimension: refused, as cuBLAS does.
  EXPECT_EQ(cublasSgemm(ist_cuda_blas(), CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &one, db, n, da, k, &zero, dc, n),
            CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_NE(report().find("lda is less than the rows of A as stored"), std::string::npos) << report();
}

TEST(EmuCore, CublasRefusesMatricesOutsideDeviceMemory) {
  IST_REQUIRE_CUDA();
  const int m = 4, n = 4, k = 4;
  std::vector<float> host(16, 1.0f);
  ist_dev_buf<float> da(host), dc(16);
  const float one = 1, zero = 0;
  EXPECT_EQ(cublasSgemm(ist_cuda_blas(), CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, da, m, host.data(), k, &zero, dc, m),
            CUBLAS_STATUS_EXECUTION_FAILED);
  EXPECT_NE(report().find("matrix B (4 × 4, ld 4"), std::string::npos) << report();
  EXPECT_NE(report().find("is not inside one cudaMalloc allocation"), std::string::npos) << report();
}

// ---- Dynamic shared memory, 16-byte accesses through ist_scast, blocks on several OS threads.
// y[i] = x[n − 1 − i] within each block's chunk of blockDim.x·4 floats, staged as float4.
__global__ void reverse_chunks_float4(const float *x, float *y) {
  IST_DYNAMIC_SHARED(float, s);
  ist_sptr<float4> s4 = ist_scast<float4>(s);
  int chunk = blockDim.x * 4, base = blockIdx.x * chunk;
  s4[threadIdx.x] = reinterpret_cast<const float4 *>(x + base)[threadIdx.x];
  __syncthreads();
  for (int j = threadIdx.x; j < chunk; j += blockDim.x) y[base + j] = s[chunk - 1 - j];
}

TEST(EmuCore, DynamicSharedMemoryThroughFloat4Handles) {
  IST_REQUIRE_CUDA();
  const int threads = 64, blocks = 5, chunk = threads * 4;
  auto x = randn((size_t)blocks * chunk, 51);
  ist_dev_buf<float> dx(x), dy(x.size());
  IST_LAUNCH(reverse_chunks_float4, blocks, threads, chunk * sizeof(float), ist_cuda_stream(), dx.get(), dy.get());
  ASSERT_EQ(cudaGetLastError(), cudaSuccess) << report();
  std::vector<float> want(x.size());
  for (int b = 0; b < blocks; b++)
    for (int j = 0; j < chunk; j++) want[(size_t)b * chunk + j] = x[(size_t)b * chunk + chunk - 1 - j];
  EXPECT_EQ(dy.download(), want);
}

TEST(EmuCore, TooLittleDynamicSharedMemoryIsAnOutOfBoundsAccess) {
  IST_REQUIRE_CUDA();
  const int threads = 64, chunk = threads * 4;
  auto x = randn(chunk, 52);
  ist_dev_buf<float> dx(x), dy(x.size());
  IST_LAUNCH(reverse_chunks_float4, 1, threads, chunk * sizeof(float) / 2, ist_cuda_stream(), dx.get(), dy.get());
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  EXPECT_NE(report().find("out-of-bounds shared-memory write in kernel reverse_chunks_float4, block (0,0,0): thread "
                          "(32,0,0) accessed `s`[32] (bytes 512..527), outside its 512 bytes"),
            std::string::npos)
      << report();
}

TEST(EmuCore, BlocksOnSeveralOsThreadsGiveTheSameProduct) {
  IST_REQUIRE_CUDA();
  const int m = 48, n = 64, k = 32;
  auto a = randn((size_t)m * k, 53), b = randn((size_t)k * n, 54);
  std::vector<float> one, three;
  run_matmul<true>(m, n, k, a, b, one);
  setenv("IST_EMU_THREADS", "3", 1);
  run_matmul<true>(m, n, k, a, b, three);
  unsetenv("IST_EMU_THREADS");
  ASSERT_EQ(cudaGetLastError(), cudaSuccess) << report();
  EXPECT_EQ(one, three);
  EXPECT_TRUE(ist_expect_close(three, matmul_ref(m, n, k, a, b), 1e-4, 1e-4, "C"));
}

// Lane 0 goes to a barrier while the rest of its warp waits for it in a shuffle.
__global__ void barrier_inside_warp_divergence(float *out) {
  float v = (float)threadIdx.x;
  if (threadIdx.x == 0) {
    __syncthreads();
  } else {
    v = __shfl_sync(0xffffffffu, v, 1);
    __syncthreads();
  }
  out[threadIdx.x] = v;
}

TEST(EmuCore, LaneAtABarrierWhileItsWarpShufflesIsReported) {
  IST_REQUIRE_CUDA();
  ist_dev_buf<float> out(32);
  IST_LAUNCH(barrier_inside_warp_divergence, 1, 32, 0, ist_cuda_stream(), out.get());
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  std::string r = report();
  EXPECT_NE(r.find("warp divergence in kernel barrier_inside_warp_divergence, block (0,0,0): lane 0 (thread "
                   "(0,0,0)) waits at __syncthreads"),
            std::string::npos)
      << r;
  EXPECT_NE(r.find("waits at __shfl_sync"), std::string::npos) << r;
}

__global__ void too_much_static_shared(float *out) {
  IST_SHARED(float, big, 13 * 1024);
  big[threadIdx.x] = 1.0f;
  out[threadIdx.x] = big[threadIdx.x];
}

TEST(EmuCore, StaticSharedMemoryAbove48KiBIsRefused) {
  IST_REQUIRE_CUDA();
  ist_dev_buf<float> out(32);
  IST_LAUNCH(too_much_static_shared, 1, 32, 0, ist_cuda_stream(), out.get());
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  EXPECT_NE(report().find("more than 49152 bytes of static shared memory"), std::string::npos) << report();
}

TEST(EmuCore, TheDeviceDescribesItselfAsTheEmulation) {
  IST_REQUIRE_CUDA();
  cudaDeviceProp p;
  ASSERT_EQ(cudaGetDeviceProperties(&p, 0), cudaSuccess);
  EXPECT_STREQ(p.name, "insitu CPU emulation");
  EXPECT_EQ(p.major, 9);
  EXPECT_EQ(ist_cuda_sm_count(), p.multiProcessorCount);
  EXPECT_EQ(ist_cuda_smem_optin(), (int)p.sharedMemPerBlockOptin);
  EXPECT_STREQ(ist_test_cuda_mode(), "emulated");
  float *d = nullptr;
  ASSERT_EQ(cudaMalloc(&d, 8 * sizeof(float)), cudaSuccess);
  float h[8];
  ASSERT_EQ(cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_TRUE(std::isnan(h[0]));  // fresh device memory reads as NaN
  EXPECT_EQ(cudaMemcpy(h, d, 9 * sizeof(float), cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
  EXPECT_EQ(cudaFree(d), cudaSuccess);
}

TEST(EmuCore, CublasBatchedProductsTf32ModeAndTranspose) {
  IST_REQUIRE_CUDA();
  const int m = 5, n = 4, k = 9, batch = 3;
  auto a = randn((size_t)batch * m * k, 61), b = randn((size_t)batch * k * n, 62);
  ist_dev_buf<float> da(a), db(b), dc((size_t)batch * m * n), dt((size_t)m * n);
  const float one = 1, zero = 0;
  cublasHandle_t h = ist_cuda_blas();
  ASSERT_EQ(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, n, m, k, &one, db, n, (long long)k * n, da, k,
                                      (long long)m * k, &zero, dc, n, (long long)m * n, batch),
            CUBLAS_STATUS_SUCCESS);
  auto c = dc.download();
  for (int i = 0; i < batch; i++) {
    std::vector<float> ai(a.begin() + i * m * k, a.begin() + (i + 1) * m * k);
    std::vector<float> bi(b.begin() + i * k * n, b.begin() + (i + 1) * k * n);
    std::vector<float> ci(c.begin() + i * m * n, c.begin() + (i + 1) * m * n);
    EXPECT_TRUE(ist_expect_close(ci, matmul_ref(m, n, k, ai, bi), 1e-5, 1e-5, "batch")) << "batch " << i;
  }
  // Under the TF32 math mode the operands are rounded to TF32, as the tensor cores read them.
  ASSERT_EQ(cublasSetMathMode(h, CUBLAS_TF32_TENSOR_OP_MATH), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, m, k, &one, db, n, da, k, &zero, dc, n), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH), CUBLAS_STATUS_SUCCESS);
  std::vector<float> a0(a.begin(), a.begin() + m * k), b0(b.begin(), b.begin() + k * n), zeros((size_t)m * n, 0.0f);
  auto c0 = dc.download();
  c0.resize((size_t)m * n);
  EXPECT_TRUE(ist_expect_close(c0, mma_ref(m, n, k, a0, b0, zeros, tf32_round), 1e-5, 1e-5, "TF32 product"));
  EXPECT_FALSE(ist_expect_close(c0, matmul_ref(m, n, k, a0, b0), 1e-6, 1e-6));
  // The row-major m × n C0, transposed by geam (column-major n × m → m × n).
  ASSERT_EQ(cublasSgeam(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, &one, dc, n, &zero, dt, m, dt, m), CUBLAS_STATUS_SUCCESS);
  auto t = dt.download();
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) EXPECT_EQ(t[(size_t)j * m + i], c0[(size_t)i * n + j]);
}

TEST(EmuCore, StreamsAndEventsRunInOrderAtCallTime) {
  IST_REQUIRE_CUDA();
  cudaStream_t s;
  cudaEvent_t e0, e1;
  ASSERT_EQ(cudaStreamCreate(&s), cudaSuccess);
  ASSERT_EQ(cudaEventCreate(&e0), cudaSuccess);
  ASSERT_EQ(cudaEventCreate(&e1), cudaSuccess);
  ist_dev_buf<float> d(256);
  std::vector<float> h(256, 3.0f), back(256);
  ASSERT_EQ(cudaEventRecord(e0, s), cudaSuccess);
  ASSERT_EQ(cudaMemcpyAsync(d.get(), h.data(), 256 * sizeof(float), cudaMemcpyHostToDevice, s), cudaSuccess);
  ASSERT_EQ(cudaMemsetAsync(d.get(), 0, 128 * sizeof(float), s), cudaSuccess);
  ASSERT_EQ(cudaMemcpyAsync(back.data(), d.get(), 256 * sizeof(float), cudaMemcpyDeviceToHost, s), cudaSuccess);
  ASSERT_EQ(cudaEventRecord(e1, s), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  float ms = -1;
  ASSERT_EQ(cudaEventElapsedTime(&ms, e0, e1), cudaSuccess);
  EXPECT_GE(ms, 0.0f);
  EXPECT_EQ(back[127], 0.0f);
  EXPECT_EQ(back[128], 3.0f);
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaStreamDestroy(s);
}

// ---- ldmatrix against its definition: lane l receives elements (l/4, 2(l%4)) and (l/4, 2(l%4)+1) of
// matrix i (of its transpose with .trans); matrix i's rows come from lanes 8i..8i+7. The 16 × 16
// matrix of 16-bit values holds 100·row + col; matrix i is rows 8(i%2).., columns 8(i/2)..
template <int kCount, bool kTrans>
__global__ void ldmatrix_probe(uint32_t *out) {
  IST_SHARED(uint16_t, m, 16 * 16);
  int lane = threadIdx.x;
  for (int i = lane; i < 256; i += 32) m[i] = (uint16_t)(100 * (i / 16) + i % 16);
  __syncwarp();
  int mat = lane / 8, row = lane % 8;
  ist_sptr<uint16_t> p = m + (8 * (mat % 2) + row) * 16 + 8 * (mat / 2);
  uint32_t r[4] = {0, 0, 0, 0};
  if (kCount == 1) kTrans ? ist_ldmatrix_x1_trans(r, p) : ist_ldmatrix_x1(r, p);
  if (kCount == 2) kTrans ? ist_ldmatrix_x2_trans(r, p) : ist_ldmatrix_x2(r, p);
  if (kCount == 4) kTrans ? ist_ldmatrix_x4_trans(r, p) : ist_ldmatrix_x4(r, p);
  for (int i = 0; i < 4; i++) out[lane * 4 + i] = r[i];
}

template <int kCount, bool kTrans>
void check_ldmatrix() {
  ist_dev_buf<uint32_t> out(32 * 4);
  IST_LAUNCH((ldmatrix_probe<kCount, kTrans>), 1, 32, 0, ist_cuda_stream(), out.get());
  ASSERT_EQ(cudaGetLastError(), cudaSuccess) << report();
  auto o = out.download();
  for (int lane = 0; lane < 32; lane++)
    for (int i = 0; i < 4; i++) {
      uint32_t want = 0;
      if (i < kCount) {
        int r0 = 8 * (i % 2), c0 = 8 * (i / 2), g = lane / 4, c = 2 * (lane % 4);
        auto at = [&](int r, int cc) { return (uint32_t)(kTrans ? 100 * (r0 + cc) + c0 + r : 100 * (r0 + r) + c0 + cc); };
        want = at(g, c) | at(g, c + 1) << 16;
      }
      EXPECT_EQ(o[lane * 4 + i], want) << "x" << kCount << (kTrans ? ".trans" : "") << " lane " << lane << " r[" << i
                                       << "]";
    }
}

TEST(EmuCore, LdmatrixDeliversTheDocumentedFragments) {
  IST_REQUIRE_CUDA();
  check_ldmatrix<1, false>();
  check_ldmatrix<2, false>();
  check_ldmatrix<4, false>();
  check_ldmatrix<1, true>();
  check_ldmatrix<2, true>();
  check_ldmatrix<4, true>();
}

__global__ void mixed_collectives(unsigned *out) {
  unsigned v = threadIdx.x < 16 ? (unsigned)__shfl_sync(0xffffffffu, (int)threadIdx.x, 0)
                                : __ballot_sync(0xffffffffu, 1);
  out[threadIdx.x] = v;
}

TEST(EmuCore, LanesMeetingAtDifferentCollectivesAreReported) {
  IST_REQUIRE_CUDA();
  ist_dev_buf<unsigned> out(32);
  IST_LAUNCH(mixed_collectives, 1, 32, 0, ist_cuda_stream(), out.get());
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  std::string r = report();
  EXPECT_NE(r.find("warp divergence in kernel mixed_collectives, block (0,0,0): lane 0 waits at __shfl_sync"),
            std::string::npos)
      << r;
  EXPECT_NE(r.find("while lane 16 reached __ballot_sync"), std::string::npos) << r;
}

// Block votes and global atomics other than add.
__global__ void votes_and_atomics(const int *v, int *out) {
  int x = v[threadIdx.x];
  int count = __syncthreads_count(x > 0), all = __syncthreads_and(x > -100), any = __syncthreads_or(x > 1000);
  atomicMax(&out[0], x);
  atomicMin(&out[1], x);
  atomicCAS(&out[2], 0, (int)threadIdx.x + 1);  // the first thread to arrive wins
  if (threadIdx.x == 0) {
    out[3] = count;
    out[4] = all;
    out[5] = any;
  }
}

TEST(EmuCore, BlockVotesAndGlobalAtomics) {
  IST_REQUIRE_CUDA();
  std::vector<int> v(96);
  for (int i = 0; i < 96; i++) v[i] = (i * 37) % 101 - 50;
  ist_dev_buf<int> dv(v), out(std::vector<int>{-1000, 1000, 0, 0, 0, 0});
  IST_LAUNCH(votes_and_atomics, 1, 96, 0, ist_cuda_stream(), dv.get(), out.get());
  ASSERT_EQ(cudaGetLastError(), cudaSuccess) << report();
  auto o = out.download();
  int positive = 0;
  for (int x : v) positive += x > 0;
  EXPECT_EQ(o[0], *std::max_element(v.begin(), v.end()));
  EXPECT_EQ(o[1], *std::min_element(v.begin(), v.end()));
  EXPECT_GE(o[2], 1);
  EXPECT_EQ(o[3], positive);
  EXPECT_EQ(o[4], 1);
  EXPECT_EQ(o[5], 0);
}

}  // namespace
