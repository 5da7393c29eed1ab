// CUDA BatchNorm (kernels/cuda/batchnorm.cu) against the CPU reference: the same double statistics
// summed in another order, so outputs agree to float rounding (relative 1e-5, absolute 1e-5 for
// values near 0).
#include "tests/cuda_test_util.h"
#include "tests/test_util.h"

extern "C" {
#include "kernels/cuda/cuda_ops.h"
}

static const double kRtol = 1e-5, kAtol = 1e-5;
static const float kMomentum = 0.1f, kEps = 1e-5f;

struct BnShape {
  int n, c, hw;
};
static const BnShape kShapes[] = {{3, 5, 63}, {2, 3, 1}, {1, 4, 300}};

// Positive running variances, shifted inputs (so the mean matters).
static std::vector<float> positive(size_t n, uint64_t seed) {
  std::vector<float> v = randn(n, seed, 0.5f);
  for (auto &x : v) x = 0.5f + x * x;
  return v;
}
static std::vector<float> shifted(size_t n, uint64_t seed) {
  std::vector<float> v = randn(n, seed, 2.0f);
  for (auto &x : v) x += 1.5f;
  return v;
}

// Both backends' forward from the same inputs; compares every output.
static void expect_forward_matches(const BnShape &s, int training, const ist_reducer *sync) {
  const size_t nx = (size_t)s.n * s.c * s.hw;
  std::vector<float> x = shifted(nx, 81), gamma = randn(s.c, 82), beta = randn(s.c, 83);
  std::vector<float> run_mean = randn(s.c, 84), run_var = positive(s.c, 85);
  std::vector<float> y(nx), save_mean(s.c), save_rstd(s.c), poison(nx, NAN), cpoison(s.c, NAN);
  ist_dev_buf<float> dx(x), dg(gamma), db(beta), drm(run_mean), drv(run_var), dy(poison), dsm(cpoison),
      dsr(cpoison);
  ist_cuda_batchnorm_forward(s.n, s.c, s.hw, dx, dg, db, dy, dsm, dsr, drm, drv, kMomentum, kEps, training, sync);
  ist_cpu_batchnorm_forward(s.n, s.c, s.hw, x.data(), gamma.data(), beta.data(), y.data(), save_mean.data(),
                            save_rstd.data(), run_mean.data(), run_var.data(), kMomentum, kEps, training, sync);
  EXPECT_TRUE(ist_expect_close(dy.download(), y, kRtol, kAtol, "y")) << s.n << "x" << s.c << "x" << s.hw;
  EXPECT_TRUE(ist_expect_close(dsm.download(), save_mean, kRtol, kAtol, "saved mean"));
  EXPECT_TRUE(ist_expect_close(dsr.download(), save_rstd, kRtol, kAtol, "saved rstd"));
  EXPECT_TRUE(ist_expect_close(drm.download(), run_mean, kRtol, kAtol, "running mean"));
  EXPECT_TRUE(ist_expect_close(drv.download(), run_var, kRtol, kAtol, "running variance"));
}

static void expect_backward_matches(const BnShape &s, int training, const ist_reducer *sync) {
  const size_t nx = (size_t)s.n * s.c * s.hw;
  std::vector<float> x = shifted(nx, 91), dy = randn(nx, 92), gamma = randn(s.c, 93);
  std::vector<float> save_mean = randn(s.c, 94), save_rstd = positive(s.c, 95);
  std::vector<float> dgamma = randn(s.c, 96), dbeta = randn(s.c, 97), dx(nx);
  ist_dev_buf<float> d_x(x), d_dy(dy), d_g(gamma), d_sm(save_mean), d_sr(save_rstd), d_dg(dgamma), d_db(dbeta),
      d_dx(std::vector<float>(nx, NAN));
  ist_cuda_batchnorm_backward(s.n, s.c, s.hw, d_dy, d_x, d_g, d_sm, d_sr, d_dx, d_dg, d_db, training, sync);
  ist_cpu_batchnorm_backward(s.n, s.c, s.hw, dy.data(), x.data(), gamma.data(), save_mean.data(), save_rstd.data(),
                             dx.data(), dgamma.data(), dbeta.data(), training, sync);
  EXPECT_TRUE(ist_expect_close(d_dx.download(), dx, kRtol, kAtol, "dx")) << s.n << "x" << s.c << "x" << s.hw;
  EXPECT_TRUE(ist_expect_close(d_dg.download(), dgamma, kRtol, kAtol, "dgamma (accumulated)"));
  EXPECT_TRUE(ist_expect_close(d_db.download(), dbeta, kRtol, kAtol, "dbeta (accumulated)"));
}

TEST(CudaBatchNorm, TrainingForwardMatchesTheCpuStatisticsAndRunningStats) {
  IST_REQUIRE_CUDA();
  for (const BnShape &s : kShapes) expect_forward_matches(s, 1, nullptr);
  EXPECT_EQ(ist_cuda_error(), nullptr);
}

TEST(CudaBatchNorm, EvalForwardUsesAndSavesTheRunningStatsAsTheCpu) {
  IST_REQUIRE_CUDA();
  for (const BnShape &s : kShapes) expect_forward_matches(s, 0, nullptr);
  EXPECT_EQ(ist_cuda_error(), nullptr);
}

TEST(CudaBatchNorm, BackwardMatchesTheCpuInBothModes) {
  IST_REQUIRE_CUDA();
  for (const BnShape &s : kShapes)
    for (int training = 0; training < 2; training++) expect_backward_matches(s, training, nullptr);
  EXPECT_EQ(ist_cuda_error(), nullptr);
}

// A stand-in for MPI: `ranks` ranks that all hold this rank's batch (the sum is ranks × the value),
// counting its calls.
struct FakeRanks {
  int calls = 0;
};
static void fake_sum(void *ctx, double *buf, int n) {
  static_cast<FakeRanks *>(ctx)->calls++;
  for (int i = 0; i < n; i++) buf[i] *= 3;
}

TEST(CudaBatchNorm, SynchronizedForwardAndBackwardStageTheSumsThroughTheHostAsTheCpu) {
  IST_REQUIRE_CUDA();
  FakeRanks calls;
  ist_reducer sync = {fake_sum, &calls, 3, nullptr};
  for (const BnShape &s : kShapes) {
    expect_forward_matches(s, 1, &sync);
    expect_backward_matches(s, 1, &sync);
  }
  EXPECT_EQ(calls.calls, (2 + 1) * 2 * 3) << "two reductions per forward and one per backward, on both backends";
  EXPECT_EQ(ist_cuda_error(), nullptr);
}
