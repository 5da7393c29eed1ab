// The CUDA factored generated convolution (kernels/cuda/gconv.cu) against the CPU's, for every
// combination of levels, forward (y, and the saved t1, t2) and backward (dx overwritten or NULL;
// dWb, dU, dWc, dV accumulating).
#include "cuda_conv_test_util.h"
#include "cuda_test_util.h"

#include "kernels/cuda/cuda_ops.h"

namespace {

struct Case {
  int n, ci, h, w, co, k, stride, pad, bi, bc;
  int level1, level2; // what ist_gen_shape_make must decide for this case
  bool dx;
};

void PrintTo(const Case &c, std::ostream *os) {
  *os << c.n << "x" << c.ci << "x" << c.h << "x" << c.w << " -> " << c.co << " k" << c.k << " s" << c.stride << " p"
      << c.pad << " " << c.bi << "-" << c.bc << " levels " << c.level1 << c.level2 << (c.dx ? "" : " no-dx");
}

class CudaGconv : public ::testing::TestWithParam<Case> {};

TEST_P(CudaGconv, ForwardAndBackwardMatchCpu) {
  IST_REQUIRE_CUDA();
  const Case c = GetParam();
  ist_conv_shape s = {c.n, c.ci, c.h, c.w, c.co, c.k, c.stride, c.pad, 0, 0, 1};
  ASSERT_TRUE(ist_conv_shape_init(&s));
  const ist_gen_shape g = ist_gen_shape_make(c.co, c.ci, c.k, c.bi, c.bc);
  ASSERT_EQ(g.level1, c.level1);
  ASSERT_EQ(g.level2, c.level2);
  const size_t xn = (size_t)s.n * s.ci * s.h * s.w, yn = (size_t)s.n * s.co * s.ho * s.wo;
  const size_t wbn = ist_gen_wb_numel(&g), un = ist_gen_u_numel(&g), wcn = g.level1 ? 0 : ist_gen_wc_numel(&g),
               vn = ist_gen_v_numel(&g), t1n = ist_gconv_t1_numel(&s, &g), t2n = ist_gconv_t2_numel(&s, &g);
  const auto x = randn(xn, 51), wb = randn(wbn, 52, 0.5f), u = randn(un, 53, 0.5f), wc = randn(wcn, 54, 0.3f),
             v = randn(vn, 55, 0.5f), dy = randn(yn, 56);
  const auto dwb0 = randn(wbn, 57), du0 = randn(un, 58), dwc0 = randn(wcn, 59), dv0 = randn(vn, 60);

  const ist_backend *cpu = ist_backend_cpu();
  std::vector<float> cws(ist_gconv_ws_floats(&s, &g)), t1(t1n), t2(t2n), y(yn), dx(xn), dwb = dwb0, du = du0,
                                                                                   dwc = dwc0, dv = dv0;
  cpu->gconv_forward(&s, &g, x.data(), wb.data(), u.data(), wc.data(), v.data(), t1.data(), t2.data(), y.data(),
                     cws.data());
  cpu->gconv_backward(&s, &g, dy.data(), x.data(), wb.data(), u.data(), wc.data(), v.data(), t1.data(), t2.data(),
                      c.dx ? dx.data() : nullptr, dwb.data(), du.data(), dwc.data(), dv.data(), cws.data());

  DevVec gx(x), gwb(wb), gu(u), gwc(wc), gv(v), gdy(dy), gt1 = DevVec::poisoned(t1n), gt2 = DevVec::poisoned(t2n);
  DevVec gy = DevVec::poisoned(yn), gdx = DevVec::poisoned(xn), gdwb(dwb0), gdu(du0), gdwc(dwc0), gdv(dv0);
  DevVec ws = DevVec::poisoned(ist_cuda_gconv_ws_floats(&s, &g));
  ist_cuda_gconv_forward(&s, &g, gx.p, gwb.p, gu.p, gwc.p, gv.p, gt1.p, gt2.p, gy.p, ws.p);
  ist_cuda_gconv_backward(&s, &g, gdy.p, gx.p, gwb.p, gu.p, gwc.p, gv.p, gt1.p, gt2.p, c.dx ? gdx.p : nullptr, gdwb.p,
                          gdu.p, gdwc.p, gdv.p, ws.p);
  expect_no_cuda_failure("gconv");
  expect_close(gy.get(), y, "y");
  expect_close(gt1.get(), t1, "t1 saved");
  expect_close(gt2.get(), t2, "t2 saved");
  if (c.dx) expect_close(gdx.get(), dx, "dx");
  expect_close(gdwb.get(), dwb, "dWb accumulated");
  expect_close(gdu.get(), du, "dU accumulated");
  expect_close(gdwc.get(), dwc, "dWc accumulated");
  expect_close(gdv.get(), dv, "dV accumulated");
}

INSTANTIATE_TEST_SUITE_P(Levels, CudaGconv,
                         ::testing::Values(Case{2, 6, 7, 8, 8, 3, 1, 1, 2, 4, 1, 1, true},   // both levels
                                           Case{2, 6, 9, 7, 8, 3, 2, 1, 2, 0, 1, 0, true},   // level 1 only, stride 2
                                           Case{2, 6, 7, 6, 8, 3, 1, 0, 0, 4, 0, 1, true},   // level 2 only
                                           Case{1, 5, 6, 6, 7, 3, 1, 1, 0, 0, 0, 0, true},   // neither
                                           Case{1, 9, 9, 9, 10, 5, 2, 2, 3, 5, 1, 1, false}, // 5×5, no dx
                                           Case{2, 4, 5, 5, 6, 1, 1, 0, 2, 3, 0, 1, true},   // 1×1: no level 1
                                           Case{1, 12, 10, 9, 6, 7, 1, 3, 4, 3, 1, 1, true})); // 7×7

} // namespace
