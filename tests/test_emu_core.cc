// The CPU execution check itself (tests/cuda_emu): correct kernels give the right values, and each
// planted bug (a missing __syncthreads, a divergent barrier, an exit while others wait, an
// out-of-bounds shared write, a shared race, a wrong mma fragment index, a read before a cp.async
// wait, a transposed cuBLAS argument) is caught with a clear message.
#include <chrono>
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
  auto t0 = std::chrono::steady_clock::now();
  run_matmul<true>(m, n, k, a, b, c);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(cudaGetLastError(), cudaSuccess) << report();
  EXPECT_TRUE(ist_expect_close(c, matmul_ref(m, n, k, a, b), 1e-4, 1e-4, "C"));
  printf("64x64x64 tiled matmul, 16 blocks of 256 threads: %.3f s\n", secs);
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

}  // namespace
