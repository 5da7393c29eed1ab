// The CUDA RAdam step (kernels/cuda/radam.cu) against the CPU reference: the same step scalars and
// float arithmetic; a fused multiply-add may differ, so 1e-6 relative, and 1e-7 absolute where a
// moment's two terms cancel (values of order 0.1–1: an ulp or two).
#include "tests/cuda_test_util.h"
#include "tests/test_util.h"

extern "C" {
#include "kernels/cuda/cuda_ops.h"
}

static const double kRtol = 1e-6, kAtol = 1e-7;

TEST(CudaRadam, UpdateMatchesTheCpuBeforeAndAfterRectification) {
  IST_REQUIRE_CUDA();
  const ist_radam_hparams h = {2e-3f, 0.9f, 0.999f, 1e-8f, 5e-4f};
  const int64_t n = 1031;
  for (int step : {1, 3, 6, 10, 1000}) { /* rho_t > 5 from step 6 on with beta2 = 0.999 */
    std::vector<float> p = randn(n, 700 + step), g = randn(n, 800 + step), m = randn(n, 900 + step, 0.1f);
    std::vector<float> v = randn(n, 1000 + step, 0.1f);
    for (auto &x : v) x *= x;
    ist_dev_buf<float> dp(p), dg(g), dm(m), dv(v);
    ist_cuda_radam_update(n, dp, dg, dm, dv, step, &h);
    ist_cpu_radam_update(n, p.data(), g.data(), m.data(), v.data(), step, &h);
    EXPECT_TRUE(ist_expect_close(dp.download(), p, kRtol, kAtol, "param")) << "step " << step;
    EXPECT_TRUE(ist_expect_close(dm.download(), m, kRtol, kAtol, "first moment")) << "step " << step;
    EXPECT_TRUE(ist_expect_close(dv.download(), v, kRtol, kAtol, "second moment")) << "step " << step;
  }
  EXPECT_EQ(ist_cuda_error(), nullptr);
}
