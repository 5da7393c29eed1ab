// The factored generated convolution against the materialized one (generator + direct conv),
// forward and backward, for every combination of levels, and a finite-difference check.
#include "test_util.h"

namespace {

struct Case {
  int n, ci, h, w, co, k, stride, pad, bi, bc;
};

void PrintTo(const Case &c, std::ostream *os) {
  *os << c.n << "x" << c.ci << "x" << c.h << "x" << c.w << " -> " << c.co << " k" << c.k << " s" << c.stride << " p"
      << c.pad << " " << c.bi << "-" << c.bc;
}

// One layer's factors and shapes, with seeded random values.
struct Layer {
  ist_conv_shape s;
  ist_gen_shape g;
  std::vector<float> x, wb, u, wc, v;
  explicit Layer(const Case &c) {
    s = {c.n, c.ci, c.h, c.w, c.co, c.k, c.stride, c.pad, 0, 0, 1};
    EXPECT_TRUE(ist_conv_shape_init(&s));
    g = ist_gen_shape_make(c.co, c.ci, c.k, c.bi, c.bc);
    x = randn((size_t)s.n * s.ci * s.h * s.w, 1);
    wb = randn(ist_gen_wb_numel(&g), 2, 0.5f);
    u = randn(ist_gen_u_numel(&g), 3, 0.5f);
    wc = randn(ist_gen_wc_numel(&g), 4, 0.3f);
    v = randn(ist_gen_v_numel(&g), 5, 0.5f);
  }
  size_t yn() const { return (size_t)s.n * s.co * s.ho * s.wo; }
  size_t wn() const { return (size_t)s.co * s.ci * s.k * s.k; }
};

// The two paths associate the same sums differently (W first, or x through each factor), so they
// agree to float rounding, judged relative to each value with a 1e-3 floor.
constexpr double kTol = 1e-3;

class Gconv : public ::testing::TestWithParam<Case> {};

TEST_P(Gconv, FactoredMatchesMaterializedForwardAndBackward) {
  Layer L(GetParam());
  const ist_conv_shape &s = L.s;
  const ist_gen_shape &g = L.g;
  // Materialized reference: W = generator(factors), y = conv(x, W); gradients through both.
  std::vector<float> wc_ref = L.wc, w(L.wn()), yr(L.yn());
  ist_cpu_generate_forward(&g, L.wb.data(), L.u.data(), L.v.data(), wc_ref.data(), w.data());
  ist_cpu_conv2d_forward_ref(&s, L.x.data(), w.data(), nullptr, yr.data());

  std::vector<float> t1(ist_gconv_t1_numel(&s, &g)), t2(ist_gconv_t2_numel(&s, &g)), y(L.yn());
  std::vector<float> ws(ist_gconv_ws_floats(&s, &g));
  ist_cpu_gconv_forward(&s, &g, L.x.data(), L.wb.data(), L.u.data(), L.wc.data(), L.v.data(), t1.data(), t2.data(),
                        y.data(), ws.data());
  EXPECT_LT(max_rel_diff(y.data(), yr.data(), L.yn()), kTol) << "levels " << g.level1 << g.level2;

  auto dy = randn(L.yn(), 6);
  std::vector<float> dxr(L.x.size()), dw(L.wn(), 0.0f), dwbr(L.wb.size(), 0.5f), dur(L.u.size(), 0.5f),
      dvr(L.v.size(), 0.5f), dwcr(L.wc.size());
  ist_cpu_conv2d_backward_ref(&s, dy.data(), L.x.data(), w.data(), dxr.data(), dw.data(), nullptr);
  ist_cpu_generate_backward(&g, dw.data(), L.wb.data(), L.u.data(), L.v.data(), wc_ref.data(), dwbr.data(),
                            dur.data(), dvr.data(), dwcr.data());

  std::vector<float> dx(L.x.size()), dwb(L.wb.size(), 0.5f), du(L.u.size(), 0.5f), dv(L.v.size(), 0.5f),
      dwc(L.wc.size(), 0.0f);
  ist_cpu_gconv_backward(&s, &g, dy.data(), L.x.data(), L.wb.data(), L.u.data(), L.wc.data(), L.v.data(), t1.data(),
                         t2.data(), dx.data(), dwb.data(), du.data(), dwc.data(), dv.data(), ws.data());
  EXPECT_LT(max_rel_diff(dx.data(), dxr.data(), dx.size()), kTol) << "dx";
  EXPECT_LT(max_rel_diff(dwb.data(), dwbr.data(), dwb.size()), kTol) << "dWb accumulates";
  EXPECT_LT(max_rel_diff(du.data(), dur.data(), du.size()), kTol) << "dU accumulates";
  EXPECT_LT(max_rel_diff(dv.data(), dvr.data(), dv.size()), kTol) << "dV accumulates";
  if (!g.level1) {
    EXPECT_LT(max_rel_diff(dwc.data(), dwcr.data(), dwc.size()), kTol) << "free dWc";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Levels, Gconv,
    ::testing::Values(Case{2, 6, 7, 9, 5, 3, 1, 1, 2, 3},     // both levels on
                      Case{3, 4, 11, 8, 6, 5, 2, 2, 2, 4},    // both on, stride 2, k = 5
                      Case{2, 3, 9, 7, 4, 3, 2, 0, 1, 2},     // both on, no padding, odd sizes
                      Case{2, 3, 6, 7, 4, 3, 1, 0, 2, 2},     // both on, stride 1, no padding
                      Case{2, 6, 9, 8, 5, 5, 1, 2, 2, 3},     // both on, stride 1, k = 5 (cnn3's conv2)
                      Case{2, 1, 12, 12, 4, 5, 2, 2, 2, 3},   // level 1 off (ci = 1)
                      Case{2, 5, 6, 6, 3, 3, 1, 1, 2, 3},     // level 2 off (bc ≥ co)
                      Case{2, 8, 5, 5, 6, 1, 1, 0, 1, 3},     // 1×1: level 1 off
                      Case{1, 1, 5, 5, 2, 3, 1, 1, 1, 2}));   // both off: a free dense kernel

TEST(GconvGradient, MatchesFiniteDifferences) {
  Layer L(Case{2, 3, 6, 5, 4, 3, 2, 1, 2, 2});
  ASSERT_TRUE(L.g.level1 && L.g.level2);
  std::vector<float> t1(ist_gconv_t1_numel(&L.s, &L.g)), t2(ist_gconv_t2_numel(&L.s, &L.g)), y(L.yn());
  std::vector<float> ws(ist_gconv_ws_floats(&L.s, &L.g));
  auto r = randn(L.yn(), 9);
  auto loss = [&] {
    ist_cpu_gconv_forward(&L.s, &L.g, L.x.data(), L.wb.data(), L.u.data(), L.wc.data(), L.v.data(), t1.data(),
                          t2.data(), y.data(), ws.data());
    return dot(r, y.data());
  };
  loss();
  std::vector<float> dx(L.x.size()), dwb(L.wb.size(), 0.0f), du(L.u.size(), 0.0f), dv(L.v.size(), 0.0f);
  ist_cpu_gconv_backward(&L.s, &L.g, r.data(), L.x.data(), L.wb.data(), L.u.data(), L.wc.data(), L.v.data(),
                         t1.data(), t2.data(), dx.data(), dwb.data(), du.data(), nullptr, dv.data(), ws.data());
  expect_gradient(L.x, dx, loss, 1e-2, 1e-2, "dx");
  expect_gradient(L.wb, dwb, loss, 1e-2, 1e-2, "dWb");
  expect_gradient(L.u, du, loss, 1e-2, 1e-2, "dU");
  expect_gradient(L.v, dv, loss, 1e-2, 1e-2, "dV");
}

TEST(GconvCost, FactoredIsCheaperForSmallRanks) {
  ist_conv_shape s = {64, 32, 14, 14, 32, 5, 1, 2, 0, 0, 1};
  ASSERT_TRUE(ist_conv_shape_init(&s));
  ist_gen_shape g = ist_gen_shape_make(32, 32, 5, 2, 16);
  EXPECT_DOUBLE_EQ(ist_gconv_macs_materialized(&s, &g), 32.0 * 32 * 25);
  EXPECT_DOUBLE_EQ(ist_gconv_macs_factored(&s, &g), 16.0 * 2 * (32 + 25) + 32 * 16);  // 2336
}

}  // namespace
