// The CUDA squared-error op (kernels/cuda/sq_diff.cu) against the CPU reference
// (kernels/cpu/sq_diff.c): the ℓ2 projection's gradient and its mean squared error.
#include <gtest/gtest.h>

#include <vector>

#include "kernels/cpu/cpu.h"
#include "kernels/cuda/cuda_ops.h"
#include "tests/cuda_test_util.h"
#include "tests/test_util.h"

namespace {

// The gradient is one subtraction and one product per element: within 1 ulp-level of the CPU's
// (which divides where the GPU multiplies by 2/n). The sum is reduced in another order.
constexpr float kGradRtol = 1e-6f, kGradAtol = 1e-9f, kSumRtol = 1e-5f;

TEST(CudaSqDiff, GradientAndMeanSquaredErrorMatchCpuOnOddSizes) {
  IST_REQUIRE_CUDA();
  for (int64_t n : {1, 7, 255, 256, 1000, 4099}) {
    auto a = randn((size_t)n, 40 + n), b = randn((size_t)n, 50 + n);
    std::vector<float> grad_cpu(n), poison(n, NAN);
    float loss_cpu = 0.25f;
    ist_cpu_sq_diff(n, a.data(), b.data(), grad_cpu.data(), &loss_cpu);
    ist_dev_buf<float> da(a), db(b), dg(poison), dloss(std::vector<float>{0.25f});
    ist_cuda_sq_diff(n, da, db, dg, dloss);
    ASSERT_EQ(ist_cuda_sync(), IST_OK) << ist_last_error();
    EXPECT_TRUE(ist_expect_close(dg.download(), grad_cpu, kGradRtol, kGradAtol, "grad"));
    EXPECT_NEAR(dloss.download()[0], loss_cpu, kSumRtol * loss_cpu) << "n = " << n << ": the loss is added to";
  }
}

TEST(CudaSqDiff, WithoutALossScalarOnlyTheGradientIsWritten) {
  IST_REQUIRE_CUDA();
  const int64_t n = 333;
  auto a = randn((size_t)n, 1), b = randn((size_t)n, 2);
  std::vector<float> grad_cpu(n), poison(n, NAN);
  ist_cpu_sq_diff(n, a.data(), b.data(), grad_cpu.data(), nullptr);
  ist_dev_buf<float> da(a), db(b), dg(poison);
  ist_cuda_sq_diff(n, da, db, dg, nullptr);
  ASSERT_EQ(ist_cuda_sync(), IST_OK) << ist_last_error();
  EXPECT_TRUE(ist_expect_close(dg.download(), grad_cpu, kGradRtol, kGradAtol, "grad"));
}

}  // namespace
