// The CUDA weight generator (kernels/cuda/generator.cu, SPEC §2) against the CPU backend, for every
// combination of levels on and off and the depthwise case: W and Wc forward; dWb, dU, dV
// accumulating and dWc overwritten backward.
#include "cuda_conv_test_util.h"
#include "cuda_test_util.h"

#include "kernels/cuda/cuda_ops.h"

namespace {

struct Case {
  int co, ci, k, bi, bc;
  int level1, level2; // what ist_gen_shape_make must decide for this case
};

void PrintTo(const Case &c, std::ostream *os) {
  *os << c.co << "x" << c.ci << " k" << c.k << " " << c.bi << "-" << c.bc << " levels " << c.level1 << c.level2;
}

class CudaGenerator : public ::testing::TestWithParam<Case> {};

TEST_P(CudaGenerator, ForwardAndBackwardMatchCpu) {
  IST_REQUIRE_CUDA();
  const Case c = GetParam();
  const ist_gen_shape g = ist_gen_shape_make(c.co, c.ci, c.k, c.bi, c.bc);
  ASSERT_EQ(g.level1, c.level1);
  ASSERT_EQ(g.level2, c.level2);
  const size_t wbn = ist_gen_wb_numel(&g), un = ist_gen_u_numel(&g), wcn = ist_gen_wc_numel(&g),
               vn = ist_gen_v_numel(&g), wn = (size_t)g.co * g.ci * g.k2;
  const auto wb = randn(wbn, 31, 0.5f), u = randn(un, 32, 0.5f), v = randn(vn, 33, 0.5f), dw = randn(wn, 34);
  const auto wc_free = randn(wcn, 35, 0.3f); // the input Wc when level 1 is off
  const auto dwb0 = randn(wbn, 36), du0 = randn(un, 37), dv0 = randn(vn, 38);

  const ist_backend *cpu = ist_backend_cpu();
  std::vector<float> wc = wc_free, w(wn), dwb = dwb0, du = du0, dv = dv0, dwc(wcn);
  cpu->generate_forward(&g, wb.data(), u.data(), v.data(), wc.data(), w.data());
  cpu->generate_backward(&g, dw.data(), wb.data(), u.data(), v.data(), wc.data(), dwb.data(), du.data(), dv.data(),
                         dwc.data());

  DevVec gwb(wb), gu(u), gv(v), gdw(dw), gw = DevVec::poisoned(wn), gdwc = DevVec::poisoned(wcn);
  DevVec gwc = g.level1 ? DevVec::poisoned(wcn) : DevVec(wc_free);
  DevVec gdwb(dwb0), gdu(du0), gdv(dv0);
  ist_cuda_generate_forward(&g, gwb.p, gu.p, gv.p, gwc.p, gw.p);
  ist_cuda_generate_backward(&g, gdw.p, gwb.p, gu.p, gv.p, gwc.p, gdwb.p, gdu.p, gdv.p, gdwc.p);
  expect_no_cuda_failure("generator");
  expect_close(gw.get(), w, "W");
  expect_close(gwc.get(), wc, "Wc");
  expect_close(gdwc.get(), dwc, "dWc overwritten");
  expect_close(gdwb.get(), dwb, "dWb accumulated");
  expect_close(gdu.get(), du, "dU accumulated");
  expect_close(gdv.get(), dv, "dV accumulated");
}

INSTANTIATE_TEST_SUITE_P(Levels, CudaGenerator,
                         ::testing::Values(Case{8, 6, 3, 2, 4, 1, 1},    // both levels
                                           Case{8, 6, 3, 2, 0, 1, 0},    // level 1 only
                                           Case{8, 6, 3, 0, 4, 0, 1},    // level 2 only
                                           Case{8, 6, 1, 2, 4, 0, 1},    // 1×1: no level 1
                                           Case{8, 6, 3, 0, 0, 0, 0},    // neither: W = Wc
                                           Case{1, 16, 3, 2, 0, 1, 0},   // depthwise (co = 1)
                                           Case{10, 5, 5, 3, 7, 1, 1},   // odd sizes, 5×5
                                           Case{12, 9, 7, 4, 5, 1, 1})); // 7×7

} // namespace
