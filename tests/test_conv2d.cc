// Convolution: the fast im2col+GEMM path against the direct reference, and gradient checks.
#include "test_util.h"

namespace {

struct Case {
  int n, ci, h, w, co, k, stride, pad, groups = 1;
};

void PrintTo(const Case &c, std::ostream *os) {
  *os << c.n << "x" << c.ci << "x" << c.h << "x" << c.w << " -> " << c.co << " k" << c.k << " s" << c.stride << " p" << c.pad
      << " g" << c.groups;
}

class Conv2d : public ::testing::TestWithParam<Case> {};

// Both sum in float, in different orders: agreement to 3e-4 relative (1e-3 floor).
constexpr double kTol = 3e-4;

TEST_P(Conv2d, FastMatchesReferenceForwardAndBackward) {
  Case c = GetParam();
  ist_conv_shape s = {c.n, c.ci, c.h, c.w, c.co, c.k, c.stride, c.pad, 0, 0, c.groups};
  ASSERT_TRUE(ist_conv_shape_init(&s));
  size_t xn = (size_t)s.n * s.ci * s.h * s.w, wn = (size_t)s.co * (s.ci / s.groups) * s.k * s.k, yn = (size_t)s.n * s.co * s.ho * s.wo;
  auto x = randn(xn, 1), w = randn(wn, 2, 0.3f), bias = randn(s.co, 3), dy = randn(yn, 4);
  std::vector<float> y(yn), yr(yn), ws(ist_conv_ws_floats(&s));
  ist_cpu_conv2d_forward(&s, x.data(), w.data(), bias.data(), y.data(), ws.data());
  ist_cpu_conv2d_forward_ref(&s, x.data(), w.data(), bias.data(), yr.data());
  EXPECT_LT(max_rel_diff(y.data(), yr.data(), yn), kTol);

  std::vector<float> dx(xn), dw(wn, 0.5f), db(s.co, 0.25f), dxr(xn), dwr(wn, 0.5f), dbr(s.co, 0.25f);
  ist_cpu_conv2d_backward(&s, dy.data(), x.data(), w.data(), dx.data(), dw.data(), db.data(), ws.data());
  ist_cpu_conv2d_backward_ref(&s, dy.data(), x.data(), w.data(), dxr.data(), dwr.data(), dbr.data());
  EXPECT_LT(max_rel_diff(dx.data(), dxr.data(), xn), kTol) << "dx";
  EXPECT_LT(max_rel_diff(dw.data(), dwr.data(), wn), kTol) << "dw accumulates";
  EXPECT_LT(max_rel_diff(db.data(), dbr.data(), s.co), kTol) << "dbias accumulates";
}

INSTANTIATE_TEST_SUITE_P(Shapes, Conv2d,
                         ::testing::Values(Case{2, 1, 28, 28, 4, 5, 2, 2}, Case{3, 5, 7, 9, 6, 3, 1, 1},
                                           Case{1, 3, 8, 8, 2, 1, 1, 0}, Case{2, 4, 11, 6, 3, 3, 2, 0},
                                           Case{2, 2, 5, 5, 3, 5, 1, 2},
                                           Case{2, 6, 9, 7, 6, 3, 1, 1, 6},    // depthwise
                                           Case{2, 8, 9, 8, 8, 3, 2, 1, 8},    // depthwise, stride 2
                                           Case{3, 4, 7, 6, 6, 3, 1, 0, 2},    // 2 groups of 2 → 3
                                           Case{2, 6, 8, 8, 12, 5, 2, 2, 3},   // 3 groups, stride 2
                                           Case{4, 32, 16, 16, 32, 3, 1, 1, 32}));

TEST(Conv2dReference, GradientsMatchFiniteDifferences) {
  for (ist_conv_shape s : {ist_conv_shape{2, 2, 5, 4, 3, 3, 2, 1, 0, 0, 1}, ist_conv_shape{2, 4, 5, 4, 6, 3, 2, 1, 0, 0, 2}}) {
    ASSERT_TRUE(ist_conv_shape_init(&s));
    size_t xn = (size_t)s.n * s.ci * s.h * s.w, wn = (size_t)s.co * (s.ci / s.groups) * s.k * s.k,
           yn = (size_t)s.n * s.co * s.ho * s.wo;
    auto x = randn(xn, 5), w = randn(wn, 6), b = randn(s.co, 7), r = randn(yn, 8);
    std::vector<float> y(yn), dx(xn), dw(wn, 0.0f), db(s.co, 0.0f);
    ist_cpu_conv2d_backward_ref(&s, r.data(), x.data(), w.data(), dx.data(), dw.data(), db.data());
    auto loss = [&] {
      ist_cpu_conv2d_forward_ref(&s, x.data(), w.data(), b.data(), y.data());
      return dot(r, y.data());
    };
    expect_gradient(x, dx, loss, 1e-2, 1e-2, "dx");
    expect_gradient(w, dw, loss, 1e-2, 1e-2, "dw");
    expect_gradient(b, db, loss, 1e-2, 1e-2, "dbias");
  }
}

TEST(Conv2dShape, RejectsKernelLargerThanPaddedInput) {
  ist_conv_shape s = {1, 1, 3, 3, 1, 7, 1, 1, 0, 0, 1};
  EXPECT_FALSE(ist_conv_shape_init(&s));
}

TEST(Conv2dShape, RejectsGroupsThatDoNotDivideTheChannels) {
  ist_conv_shape s = {1, 6, 5, 5, 4, 3, 1, 1, 0, 0, 3};
  EXPECT_FALSE(ist_conv_shape_init(&s)) << "4 outputs in 3 groups";
  s.co = 6;
  EXPECT_TRUE(ist_conv_shape_init(&s));
}

}  // namespace
