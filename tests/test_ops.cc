// BatchNorm, ReLU, pooling, linear, losses: values against naive formulas, gradients against
// finite differences (tolerances in each test).
#include "test_util.h"

namespace {

TEST(BatchNorm, TrainingNormalizesAndUpdatesRunningStats) {
  const int n = 3, c = 2, hw = 5;
  auto x = randn(n * c * hw, 1, 2.0f), gamma = randn(c, 2), beta = randn(c, 3);
  std::vector<float> y(x.size()), mean(c), rstd(c), rm(c, 0.0f), rv(c, 1.0f);
  ist_cpu_batchnorm_forward(n, c, hw, x.data(), gamma.data(), beta.data(), y.data(), mean.data(), rstd.data(), rm.data(),
                            rv.data(), 0.1f, 1e-5f, 1, nullptr);
  for (int ch = 0; ch < c; ch++) {
    double s = 0, ss = 0;
    for (int b = 0; b < n; b++)
      for (int p = 0; p < hw; p++) s += x[(b * c + ch) * hw + p];
    double m = s / (n * hw);
    for (int b = 0; b < n; b++)
      for (int p = 0; p < hw; p++) ss += std::pow(x[(b * c + ch) * hw + p] - m, 2);
    double var = ss / (n * hw);
    EXPECT_NEAR(mean[ch], m, 1e-5);
    EXPECT_NEAR(rm[ch], 0.1 * m, 1e-5);
    EXPECT_NEAR(rv[ch], 0.9 + 0.1 * ss / (n * hw - 1), 1e-5) << "running variance is unbiased";
    for (int b = 0; b < n; b++)
      for (int p = 0; p < hw; p++) {
        int i = (b * c + ch) * hw + p;
        EXPECT_NEAR(y[i], gamma[ch] * (x[i] - m) / std::sqrt(var + 1e-5) + beta[ch], 1e-4);
      }
  }
}

TEST(BatchNorm, EvalUsesRunningStats) {
  std::vector<float> x = {1, 2, 3, 4}, y(4), g = {2}, b = {1}, rm = {1}, rv = {4}, m(1), r(1);
  ist_cpu_batchnorm_forward(1, 1, 4, x.data(), g.data(), b.data(), y.data(), m.data(), r.data(), rm.data(), rv.data(), 0.1f,
                            0.0f, 0, nullptr);
  for (int i = 0; i < 4; i++) EXPECT_NEAR(y[i], 2 * (x[i] - 1) / 2 + 1, 1e-6);
  EXPECT_EQ(rm[0], 1.0f) << "eval leaves running stats alone";
}

// Synchronized BatchNorm with a stand-in for a second rank holding the same batch (the reducer
// doubles every sum) equals plain BatchNorm over the batch stacked twice, forward and backward;
// its dgamma/dbeta stay this rank's share.
TEST(BatchNorm, SynchronizedOverRanksEqualsOneBigBatch) {
  const int n = 2, c = 3, hw = 5;
  auto x = randn(n * c * hw, 31), gamma = randn(c, 32), beta = randn(c, 33), dy = randn(n * c * hw, 34);
  std::vector<float> x2(x), dy2(dy);
  x2.insert(x2.end(), x.begin(), x.end());
  dy2.insert(dy2.end(), dy.begin(), dy.end());
  ist_reducer twice = {[](void *, double *buf, int k) { for (int i = 0; i < k; i++) buf[i] *= 2; }, nullptr, 2, nullptr};
  std::vector<float> y(x.size()), y2(x2.size()), m(c), r(c), m2(c), r2(c), rm(c, 0), rv(c, 1), rm2(c, 0), rv2(c, 1);
  ist_cpu_batchnorm_forward(n, c, hw, x.data(), gamma.data(), beta.data(), y.data(), m.data(), r.data(), rm.data(),
                            rv.data(), 0.1f, 1e-5f, 1, &twice);
  ist_cpu_batchnorm_forward(2 * n, c, hw, x2.data(), gamma.data(), beta.data(), y2.data(), m2.data(), r2.data(),
                            rm2.data(), rv2.data(), 0.1f, 1e-5f, 1, nullptr);
  for (size_t i = 0; i < y.size(); i++) EXPECT_NEAR(y[i], y2[i], 1e-5);
  for (int ch = 0; ch < c; ch++) EXPECT_NEAR(rv[ch], rv2[ch], 1e-6) << "unbiased over both ranks' count";
  std::vector<float> dx(x.size()), dx2(x2.size()), dg(c, 0), db(c, 0), dg2(c, 0), db2(c, 0);
  ist_cpu_batchnorm_backward(n, c, hw, dy.data(), x.data(), gamma.data(), m.data(), r.data(), dx.data(), dg.data(),
                             db.data(), 1, &twice);
  ist_cpu_batchnorm_backward(2 * n, c, hw, dy2.data(), x2.data(), gamma.data(), m2.data(), r2.data(), dx2.data(),
                             dg2.data(), db2.data(), 1, nullptr);
  for (size_t i = 0; i < dx.size(); i++) EXPECT_NEAR(dx[i], dx2[i], 1e-5);
  for (int ch = 0; ch < c; ch++) {
    EXPECT_NEAR(2 * dg[ch], dg2[ch], 1e-4);
    EXPECT_NEAR(2 * db[ch], db2[ch], 1e-4);
  }
}

TEST(BatchNorm, BackwardMatchesFiniteDifferencesInBothModes) {
  const int n = 2, c = 3, hw = 4;
  for (int training : {1, 0}) {
    auto x = randn(n * c * hw, 4), gamma = randn(c, 5), beta = randn(c, 6), r = randn(n * c * hw, 7);
    std::vector<float> y(x.size()), mean(c), rstd(c), rm = {0.1f, -0.2f, 0.3f}, rv = {0.5f, 1.5f, 2.0f};
    std::vector<float> dx(x.size()), dg(c, 0.0f), db(c, 0.0f);
    // Eval mode keeps the running statistics fixed; training mode updates them, which the loss
    // below must not see, so it runs on copies.
    auto forward = [&] {
      auto rm2 = rm, rv2 = rv;
      ist_cpu_batchnorm_forward(n, c, hw, x.data(), gamma.data(), beta.data(), y.data(), mean.data(), rstd.data(),
                                rm2.data(), rv2.data(), 0.1f, 1e-5f, training, nullptr);
    };
    forward();
    ist_cpu_batchnorm_backward(n, c, hw, r.data(), x.data(), gamma.data(), mean.data(), rstd.data(), dx.data(),
                               dg.data(), db.data(), training, nullptr);
    auto loss = [&] {
      forward();
      return dot(r, y.data());
    };
    SCOPED_TRACE(training ? "training" : "eval");
    expect_gradient(x, dx, loss, 1e-2, 2e-2, "dx");
    expect_gradient(gamma, dg, loss, 1e-2, 1e-2, "dgamma");
    expect_gradient(beta, db, loss, 1e-2, 1e-2, "dbeta");
  }
}

TEST(Relu, ForwardClampsAndBackwardMasks) {
  std::vector<float> x = {-1, 0, 2, -3, 4}, y(5), dy = {1, 1, 1, 1, 1}, dx(5);
  ist_cpu_relu_forward(5, x.data(), y.data());
  ist_cpu_relu_backward(5, dy.data(), y.data(), dx.data());
  EXPECT_EQ(y, (std::vector<float>{0, 0, 2, 0, 4}));
  EXPECT_EQ(dx, (std::vector<float>{0, 0, 1, 0, 1}));
}

TEST(Relu6, ForwardClampsToZeroSixAndBackwardMasksBoth) {
  std::vector<float> x = {-1, 0.5f, 6, 7, 3}, y(5), dy = {1, 1, 1, 1, 1}, dx(5);
  ist_cpu_relu6_forward(5, x.data(), y.data());
  ist_cpu_relu6_backward(5, dy.data(), y.data(), dx.data());
  EXPECT_EQ(y, (std::vector<float>{0, 0.5f, 6, 6, 3}));
  EXPECT_EQ(dx, (std::vector<float>{0, 1, 0, 0, 1}));
}

TEST(AvgPool, AdaptiveBinsFollowPyTorch) {
  // 5 → 3: bins [0,2), [1,4), [3,5) (floor(i·5/3), ceil((i+1)·5/3)).
  std::vector<float> x(25), y(9);
  for (int i = 0; i < 25; i++) x[i] = (float)i;
  ist_cpu_avgpool_forward(1, 1, 5, 5, 3, 3, x.data(), y.data());
  EXPECT_NEAR(y[0], (0 + 1 + 5 + 6) / 4.0, 1e-6);
  EXPECT_NEAR(y[4], (6 + 7 + 8 + 11 + 12 + 13 + 16 + 17 + 18) / 9.0, 1e-5);
  EXPECT_NEAR(y[8], (18 + 19 + 23 + 24) / 4.0, 1e-6);
}

TEST(AvgPool, BackwardMatchesFiniteDifferences) {
  auto x = randn(2 * 3 * 14 * 14, 1), r = randn(2 * 3 * 9, 2);
  std::vector<float> y(r.size()), dx(x.size());
  ist_cpu_avgpool_backward(2, 3, 14, 14, 3, 3, r.data(), dx.data());
  auto loss = [&] {
    ist_cpu_avgpool_forward(2, 3, 14, 14, 3, 3, x.data(), y.data());
    return dot(r, y.data());
  };
  expect_gradient(x, dx, loss, 1e-2, 1e-2, "dx");
}

TEST(Add, SumsElementwiseInPlace) {
  std::vector<float> a = {1, 2, 3}, b = {10, 20, -3};
  ist_cpu_add(3, a.data(), b.data(), a.data());
  EXPECT_EQ(a, (std::vector<float>{11, 22, 0}));
}

TEST(Scale, MultipliesInPlace) {
  std::vector<float> a = {1, -2, 4};
  ist_cpu_scale(3, 0.5f, a.data());
  EXPECT_EQ(a, (std::vector<float>{0.5f, -1, 2}));
}

TEST(CopyChannels, CopiesAndAccumulatesChannelSlicesOfEveryImage) {
  // 2 images of 3 channels × 2 values → channels 1..2 into channels 0..1 of 2 images of 4 channels.
  std::vector<float> src = {0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15}, dst(16, 100.0f);
  ist_cpu_copy_channels(2, 2, 2, src.data(), 3, 1, dst.data(), 4, 0, 0);
  EXPECT_EQ(dst, (std::vector<float>{2, 3, 4, 5, 100, 100, 100, 100, 12, 13, 14, 15, 100, 100, 100, 100}));
  ist_cpu_copy_channels(2, 2, 1, src.data(), 3, 0, dst.data(), 4, 3, 1);
  EXPECT_EQ(dst[6], 100.0f);
  EXPECT_EQ(dst[7], 101.0f);
  EXPECT_EQ(dst[14], 110.0f);
}

// Naive max over each window, padding cells excluded.
float window_max(const std::vector<float> &x, int h, int w, int i, int j, int k, int s, int p) {
  float m = -1e30f;
  for (int ky = 0; ky < k; ky++)
    for (int kx = 0; kx < k; kx++) {
      int iy = i * s - p + ky, ix = j * s - p + kx;
      if (iy >= 0 && iy < h && ix >= 0 && ix < w) m = std::max(m, x[iy * w + ix]);
    }
  return m;
}

TEST(MaxPool, ForwardTakesTheWindowMaximumPaddingNeverWins) {
  const int h = 7, w = 6, k = 3, s = 2, p = 1;
  const int oh = ist_pool_out(h, k, s, p), ow = ist_pool_out(w, k, s, p);
  ASSERT_EQ(oh, 4);
  ASSERT_EQ(ow, 3);
  auto x = randn(h * w, 3);
  for (auto &v : x) v = -std::fabs(v);  // all negative: a zero pad would win if it counted
  std::vector<float> y(oh * ow);
  std::vector<int32_t> idx(oh * ow);
  ist_cpu_maxpool_forward(1, 1, h, w, k, s, p, x.data(), y.data(), idx.data());
  for (int i = 0; i < oh; i++)
    for (int j = 0; j < ow; j++) {
      EXPECT_EQ(y[i * ow + j], window_max(x, h, w, i, j, k, s, p)) << i << "," << j;
      EXPECT_EQ(x[idx[i * ow + j]], y[i * ow + j]);
    }
}

TEST(MaxPool, BackwardMatchesFiniteDifferences) {
  const int n = 2, c = 3, h = 9, w = 8, k = 3, s = 2, p = 1;
  const int oh = ist_pool_out(h, k, s, p), ow = ist_pool_out(w, k, s, p);
  auto x = randn(n * c * h * w, 4), r = randn(n * c * oh * ow, 5);
  std::vector<float> y(r.size()), dx(x.size());
  std::vector<int32_t> idx(r.size());
  ist_cpu_maxpool_forward(n, c, h, w, k, s, p, x.data(), y.data(), idx.data());
  ist_cpu_maxpool_backward(n, c, h, w, oh, ow, r.data(), idx.data(), dx.data());
  auto loss = [&] {
    ist_cpu_maxpool_forward(n, c, h, w, k, s, p, x.data(), y.data(), idx.data());
    return dot(r, y.data());
  };
  expect_gradient(x, dx, loss, 1e-3, 1e-2, "dx");  // random values: no ties within ±1e-3
}

TEST(Linear, ForwardAndBackward) {
  const int n = 3, in = 4, out = 2;
  auto x = randn(n * in, 1), w = randn(out * in, 2), b = randn(out, 3), r = randn(n * out, 4);
  std::vector<float> y(n * out), dx(n * in), dw(out * in, 0.0f), db(out, 0.0f);
  ist_cpu_linear_forward(n, in, out, x.data(), w.data(), b.data(), y.data());
  for (int i = 0; i < n; i++)
    for (int o = 0; o < out; o++) {
      double s = b[o];
      for (int k = 0; k < in; k++) s += x[i * in + k] * w[o * in + k];
      EXPECT_NEAR(y[i * out + o], s, 1e-5);
    }
  ist_cpu_linear_backward(n, in, out, r.data(), x.data(), w.data(), dx.data(), dw.data(), db.data());
  auto loss = [&] {
    ist_cpu_linear_forward(n, in, out, x.data(), w.data(), b.data(), y.data());
    return dot(r, y.data());
  };
  expect_gradient(x, dx, loss, 1e-2, 1e-2, "dx");
  expect_gradient(w, dw, loss, 1e-2, 1e-2, "dw");
  expect_gradient(b, db, loss, 1e-2, 1e-2, "db");
}

TEST(CrossEntropy, ValueAccuracyAndGradient) {
  const int n = 4, c = 5;
  auto z = randn(n * c, 1, 2.0f);
  std::vector<int32_t> y = {0, 3, 4, 1};
  std::vector<float> dz(n * c);
  int correct;
  float loss = ist_cpu_cross_entropy(n, c, z.data(), y.data(), dz.data(), &correct);
  double ref = 0;
  int hits = 0;
  for (int i = 0; i < n; i++) {
    double zmax = -1e30, s = 0;
    int arg = 0;
    for (int j = 0; j < c; j++)
      if (z[i * c + j] > zmax) zmax = z[i * c + j], arg = j;
    for (int j = 0; j < c; j++) s += std::exp(z[i * c + j] - zmax);
    ref += -(z[i * c + y[i]] - zmax - std::log(s));
    hits += arg == y[i];
  }
  EXPECT_NEAR(loss, ref / n, 1e-5);
  EXPECT_EQ(correct, hits);
  expect_gradient(z, dz, [&] { return (double)ist_cpu_cross_entropy(n, c, z.data(), y.data(), nullptr, nullptr); },
                  1e-2, 1e-2, "dlogits");
}

TEST(KdLoss, MatchesFormulaAndGradient) {
  const int n = 3, c = 4;
  const float beta = 0.9f, t = 3.0f;
  auto s = randn(n * c, 1, 2.0f), te = randn(n * c, 2, 2.0f);
  std::vector<int32_t> y = {1, 0, 3};
  std::vector<float> ds(n * c);
  float loss = ist_cpu_kd_loss(n, c, s.data(), te.data(), y.data(), beta, t, ds.data(), nullptr);
  double kl = 0;
  for (int i = 0; i < n; i++) {
    std::vector<float> q(c), p(c);
    ist_cpu_softmax_row(c, &te[i * c], t, q.data());
    ist_cpu_softmax_row(c, &s[i * c], t, p.data());
    for (int j = 0; j < c; j++) kl += q[j] * std::log(q[j] / p[j]);
  }
  double ce = ist_cpu_cross_entropy(n, c, s.data(), y.data(), nullptr, nullptr);
  EXPECT_NEAR(loss, beta * t * t * kl / n + (1 - beta) * ce, 1e-4);
  expect_gradient(s, ds, [&] { return (double)ist_cpu_kd_loss(n, c, s.data(), te.data(), y.data(), beta, t, nullptr, nullptr); },
                  1e-2, 1e-2, "dstudent");
}

TEST(KdLoss, IsCrossEntropyWhenBetaIsZero) {
  auto s = randn(8, 1), te = randn(8, 2);
  std::vector<int32_t> y = {1, 0};
  EXPECT_NEAR(ist_cpu_kd_loss(2, 4, s.data(), te.data(), y.data(), 0.0f, 3.0f, nullptr, nullptr),
              ist_cpu_cross_entropy(2, 4, s.data(), y.data(), nullptr, nullptr), 1e-6);
}

}  // namespace
