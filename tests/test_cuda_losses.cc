// The CUDA losses (kernels/cuda/softmax_xent.cu, kd_loss.cu) against the CPU reference: the device
// scalars are ADDED to (loss_sum += the mean loss, correct += the hits), the CPU returns them; losses
// and gradients agree to 1e-5 relative (expf/log differ by an ulp or two), hits exactly.
#include <cmath>

#include "tests/cuda_test_util.h"
#include "tests/test_util.h"

extern "C" {
#include "kernels/cuda/cuda_ops.h"
}

static const double kRtol = 1e-5, kAtol = 1e-7;
// What the device scalars hold before the call (they accumulate).
static const float kLossBefore = 0.75f;
static const int32_t kHitsBefore = 4;

// The CPU's value and hits, returned (this is where a change of the CPU table to device scalars
// would be adapted).
struct CpuLoss {
  float loss;
  int hits;
};

struct LossCase {
  int n, c;
};
// Batches below and above the kernel's chunk of 256 samples, classes below and above a warp.
static const LossCase kCases[] = {{5, 7}, {37, 10}, {300, 3}, {3, 100}};

static std::vector<int32_t> labels_for(int n, int c, uint64_t seed) {
  std::vector<float> r = randn(n, seed);
  std::vector<int32_t> y(n);
  for (int i = 0; i < n; i++) y[i] = (int32_t)(std::fabs(r[i]) * 1000) % c;
  return y;
}

// Logits with ties (rounded to a coarse grid), so the argmax's tie rule is exercised.
static std::vector<float> logits_for(size_t n, uint64_t seed) {
  std::vector<float> z = randn(n, seed, 2.0f);
  for (size_t i = 0; i < n; i += 2) z[i] = std::round(z[i]);
  return z;
}

static void expect_device_scalars(const ist_dev_buf<float> &loss, const ist_dev_buf<int32_t> *hits, CpuLoss cpu,
                                  const char *what) {
  const float want = kLossBefore + cpu.loss;
  EXPECT_TRUE(ist_expect_close(loss.download(), {want}, kRtol, kAtol, what));
  if (hits) {
    EXPECT_EQ(hits->download()[0], kHitsBefore + cpu.hits) << what << ": argmax hits";
  }
}

TEST(CudaLosses, CrossEntropyAddsTheCpuMeanLossAndHitsAndWritesItsGradient) {
  IST_REQUIRE_CUDA();
  for (auto k : kCases) {
    const size_t nz = (size_t)k.n * k.c;
    std::vector<float> z = logits_for(nz, 101), dz(nz);
    std::vector<int32_t> y = labels_for(k.n, k.c, 102);
    ist_dev_buf<float> d_z(z), d_dz(std::vector<float>(nz, NAN)), d_loss(std::vector<float>{kLossBefore});
    ist_dev_buf<int32_t> d_y(y), d_hits(std::vector<int32_t>{kHitsBefore});
    ist_cuda_cross_entropy(k.n, k.c, d_z, d_y, d_dz, d_loss, d_hits);
    CpuLoss cpu;
    cpu.loss = ist_cpu_cross_entropy(k.n, k.c, z.data(), y.data(), dz.data(), &cpu.hits);
    expect_device_scalars(d_loss, &d_hits, cpu, "cross-entropy");
    EXPECT_TRUE(ist_expect_close(d_dz.download(), dz, kRtol, kAtol, "dlogits")) << k.n << "x" << k.c;
  }
  EXPECT_EQ(ist_cuda_error(), nullptr);
}

TEST(CudaLosses, CrossEntropyWithoutGradientOrHitsOnlyAddsTheLoss) {
  IST_REQUIRE_CUDA();
  const int n = 9, c = 5;
  std::vector<float> z = logits_for((size_t)n * c, 111);
  std::vector<int32_t> y = labels_for(n, c, 112);
  ist_dev_buf<float> d_z(z), d_loss(std::vector<float>{kLossBefore});
  ist_dev_buf<int32_t> d_y(y);
  ist_cuda_cross_entropy(n, c, d_z, d_y, nullptr, d_loss, nullptr);
  CpuLoss cpu{ist_cpu_cross_entropy(n, c, z.data(), y.data(), nullptr, nullptr), 0};
  expect_device_scalars(d_loss, nullptr, cpu, "cross-entropy, loss only");
  EXPECT_EQ(ist_cuda_error(), nullptr);
}

TEST(CudaLosses, DistillationLossAddsTheCpuLossAndHitsAndWritesItsGradient) {
  IST_REQUIRE_CUDA();
  const struct {
    float beta, t;
  } settings[] = {{0.9f, 3.0f}, {0.0f, 1.0f}, {0.5f, 0.5f}};
  for (auto k : kCases)
    for (auto h : settings) {
      const size_t nz = (size_t)k.n * k.c;
      std::vector<float> s = logits_for(nz, 121), t = randn(nz, 122, 3.0f), dz(nz);
      std::vector<int32_t> y = labels_for(k.n, k.c, 123);
      ist_dev_buf<float> d_s(s), d_t(t), d_dz(std::vector<float>(nz, NAN)), d_loss(std::vector<float>{kLossBefore});
      ist_dev_buf<int32_t> d_y(y), d_hits(std::vector<int32_t>{kHitsBefore});
      ist_cuda_kd_loss(k.n, k.c, d_s, d_t, d_y, h.beta, h.t, d_dz, d_loss, d_hits);
      CpuLoss cpu;
      cpu.loss = ist_cpu_kd_loss(k.n, k.c, s.data(), t.data(), y.data(), h.beta, h.t, dz.data(), &cpu.hits);
      expect_device_scalars(d_loss, &d_hits, cpu, "distillation loss");
      EXPECT_TRUE(ist_expect_close(d_dz.download(), dz, kRtol, kAtol, "dlogits"))
          << k.n << "x" << k.c << " beta=" << h.beta << " T=" << h.t;
    }
  EXPECT_EQ(ist_cuda_error(), nullptr);
}
