// The CUDA baseline conv types (kernels/cuda/baseline_convs.cu: DSConv, BSConv-U, PENNI, CirCNN)
// against the CPU backend: the weight they build, and their parameters' gradients accumulating.
#include "cuda_conv_test_util.h"
#include "cuda_test_util.h"

#include "kernels/cuda/cuda_ops.h"

namespace {

struct Case {
  ist_base_type type;
  int co, ci, k2;
};

void PrintTo(const Case &c, std::ostream *os) {
  static const char *names[] = {"none", "DSConv", "BSConv-U", "PENNI", "CirCNN"};
  *os << names[c.type] << " " << c.co << "x" << c.ci << " k2=" << c.k2;
}

class CudaBaselines : public ::testing::TestWithParam<Case> {};

TEST_P(CudaBaselines, WeightAndGradientsMatchCpu) {
  IST_REQUIRE_CUDA();
  const Case c = GetParam();
  const ist_base_shape b = {c.type, c.co, c.ci, c.k2};
  const size_t p1n = ist_base_p1_numel(&b), p2n = ist_base_p2_numel(&b), wn = (size_t)c.co * c.ci * c.k2;
  const auto p1 = randn(p1n, 41), p2 = randn(p2n, 42), dw = randn(wn, 43), dp10 = randn(p1n, 44),
             dp20 = randn(p2n, 45);
  const ist_backend *cpu = ist_backend_cpu();
  std::vector<float> w(wn), dp1 = dp10, dp2 = dp20;
  cpu->baseline_forward(&b, p1.data(), p2.data(), w.data());
  cpu->baseline_backward(&b, dw.data(), p1.data(), p2.data(), dp1.data(), dp2.data());

  DevVec gp1(p1), gp2(p2), gdw(dw), gw = DevVec::poisoned(wn), gdp1(dp10), gdp2(dp20);
  ist_cuda_baseline_forward(&b, gp1.p, gp2.p, gw.p);
  ist_cuda_baseline_backward(&b, gdw.p, gp1.p, gp2.p, gdp1.p, gdp2.p);
  expect_no_cuda_failure("baseline");
  expect_close(gw.get(), w, "W");
  expect_close(gdp1.get(), dp1, "dp1 accumulated");
  expect_close(gdp2.get(), dp2, "dp2 accumulated");
}

INSTANTIATE_TEST_SUITE_P(Types, CudaBaselines,
                         ::testing::Values(Case{IST_BASE_DSCONV, 6, 5, 9}, Case{IST_BASE_DSCONV, 3, 7, 25},
                                           Case{IST_BASE_BSCONV, 6, 5, 9}, Case{IST_BASE_BSCONV, 9, 4, 1},
                                           Case{IST_BASE_PENNI, 6, 5, 9},
                                           Case{IST_BASE_PENNI, 20, 16, 9}, // 320 (o, c) pairs: > one block's threads
                                           Case{IST_BASE_CIRCNN, 8, 12, 9}, Case{IST_BASE_CIRCNN, 4, 4, 1}));

} // namespace
