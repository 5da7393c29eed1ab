// The compact networks' ops (kernels/cpu/activations.c): values against naive formulas written
// here from PyTorch's definitions, gradients against finite differences (tolerances stated).
#include "test_util.h"

namespace {

double relu6(double x) { return std::min(std::max(x, 0.0), 6.0); }

// Inputs spread over [−6, 6] but kept 0.05 away from the kinks at ±3 (finite differences there
// would straddle them).
std::vector<float> spread(size_t n, uint64_t seed) {
  auto x = randn(n, seed, 3.0f);
  for (auto &v : x)
    if (std::fabs(std::fabs(v) - 3.0f) < 0.05f) v += 0.1f;
  return x;
}

using Op = void (*)(int64_t, const float *, float *);
using Grad = void (*)(int64_t, const float *, const float *, float *);

void expect_activation(Op fwd, Grad bwd, double (*ref)(double), bool grad_from_output, const char *what) {
  const int n = 24;
  auto x = spread(n, 11), r = randn(n, 12);
  std::vector<float> y(n), dx(n);
  fwd(n, x.data(), y.data());
  for (int i = 0; i < n; i++) EXPECT_NEAR(y[i], ref(x[i]), 1e-6 * (1 + std::fabs(ref(x[i])))) << what << " x=" << x[i];
  bwd(n, r.data(), grad_from_output ? y.data() : x.data(), dx.data());
  expect_gradient(
      x, dx,
      [&] {
        std::vector<float> yy(n);
        fwd(n, x.data(), yy.data());
        return dot(r, yy.data());
      },
      1e-3, 2e-3, what);
}

TEST(Hardswish, IsXTimesRelu6OfXPlus3Over6AndBackwardMatchesFiniteDifferences) {
  expect_activation(ist_cpu_hardswish_forward, ist_cpu_hardswish_backward,
                    [](double x) { return x * relu6(x + 3) / 6; }, false, "hardswish");
}

TEST(Hardsigmoid, IsRelu6OfXPlus3Over6AndBackwardMatchesFiniteDifferences) {
  expect_activation(ist_cpu_hardsigmoid_forward, ist_cpu_hardsigmoid_backward,
                    [](double x) { return relu6(x + 3) / 6; }, false, "hardsigmoid");
}

TEST(Silu, IsXTimesSigmoidAndBackwardMatchesFiniteDifferences) {
  expect_activation(ist_cpu_silu_forward, ist_cpu_silu_backward, [](double x) { return x / (1 + std::exp(-x)); },
                    false, "silu");
}

TEST(Sigmoid, IsLogisticAndBackwardFromOutputMatchesFiniteDifferences) {
  expect_activation(ist_cpu_sigmoid_forward, ist_cpu_sigmoid_backward, [](double x) { return 1 / (1 + std::exp(-x)); },
                    true, "sigmoid");
}

TEST(ChannelScale, ScalesEveryPlaneByItsGateAndBackwardMatchesFiniteDifferences) {
  const int n = 2, c = 3, hw = 5;
  auto x = randn(n * c * hw, 21), s = randn(n * c, 22), r = randn(n * c * hw, 23);
  std::vector<float> y(x.size()), dx(x.size()), ds(s.size());
  ist_cpu_channel_scale_forward(n, c, hw, x.data(), s.data(), y.data());
  for (int i = 0; i < n * c * hw; i++) EXPECT_FLOAT_EQ(y[i], x[i] * s[i / hw]);
  ist_cpu_channel_scale_backward(n, c, hw, r.data(), x.data(), s.data(), dx.data(), ds.data());
  auto loss = [&] {
    std::vector<float> yy(x.size());
    ist_cpu_channel_scale_forward(n, c, hw, x.data(), s.data(), yy.data());
    return dot(r, yy.data());
  };
  expect_gradient(x, dx, loss, 1e-3, 1e-3, "dx");
  expect_gradient(s, ds, loss, 1e-3, 1e-3, "ds");
}

TEST(ChannelBias, AddsPerChannelAndBackwardAccumulatesFiniteDifferences) {
  const int n = 3, c = 4, hw = 2;
  auto x = randn(n * c * hw, 24), b = randn(c, 25), r = randn(n * c * hw, 26);
  std::vector<float> y = x;
  ist_cpu_channel_bias_forward(n, c, hw, y.data(), b.data());
  for (int i = 0; i < n * c * hw; i++) EXPECT_FLOAT_EQ(y[i], x[i] + b[(i / hw) % c]);
  std::vector<float> db(c, 1.0f);
  ist_cpu_channel_bias_backward(n, c, hw, r.data(), db.data());
  for (auto &v : db) v -= 1.0f;  // accumulated onto 1
  expect_gradient(
      b, db,
      [&] {
        std::vector<float> yy = x;
        ist_cpu_channel_bias_forward(n, c, hw, yy.data(), b.data());
        return dot(r, yy.data());
      },
      1e-3, 1e-3, "db");
}

TEST(Dropout, ZeroesAboutPAndScalesTheRestAndBackwardUsesTheSameMask) {
  const int64_t n = 100000;
  const float p = 0.2f;
  std::vector<float> x(n, 1.0f), y(n), dx(n);
  ist_cpu_dropout_forward(n, 1, p, 7, x.data(), y.data());
  int64_t zeros = 0;
  for (int64_t i = 0; i < n; i++) {
    if (y[i] == 0.0f) zeros++;
    else EXPECT_FLOAT_EQ(y[i], 1.0f / (1.0f - p));
  }
  EXPECT_NEAR((double)zeros / n, p, 0.01) << "share dropped (±0.01 at 100k draws)";
  ist_cpu_dropout_backward(n, 1, p, 7, x.data(), dx.data());
  for (int64_t i = 0; i < n; i++) ASSERT_EQ(dx[i], y[i]) << "same mask, same scale (dy = 1)";
  std::vector<float> y2(n);
  ist_cpu_dropout_forward(n, 1, p, 8, x.data(), y2.data());
  EXPECT_NE(y, y2) << "another seed, another mask";
}

TEST(Dropout, GroupedMaskDropsWholeImagesForStochasticDepth) {
  const int images = 400, per = 30;
  const float p = 0.25f;
  std::vector<float> x = randn((size_t)images * per, 31), y(x.size());
  ist_cpu_dropout_forward((int64_t)images * per, per, p, 99, x.data(), y.data());
  int dropped = 0;
  for (int b = 0; b < images; b++) {
    const bool kept = y[(size_t)b * per] != 0.0f;
    dropped += !kept;
    for (int i = 0; i < per; i++)
      ASSERT_FLOAT_EQ(y[(size_t)b * per + i], kept ? x[(size_t)b * per + i] / (1 - p) : 0.0f) << "image " << b;
  }
  EXPECT_NEAR(dropped / (double)images, p, 0.07) << "share of images dropped (±0.07 at 400 draws)";
}

TEST(ActQuantize, EightBitsPutsEveryValueOnThe255StepGridOfTheBatchRange) {
  const int n = 1000;
  auto x = randn(n, 41, 2.0f);
  for (auto &v : x) v = std::max(v, 0.0f);  // a ReLU output
  std::vector<float> y(n), run = {0, 0}, used(2);
  ist_cpu_act_quantize_forward(n, 8, x.data(), y.data(), run.data(), used.data(), 0.1f, 1);
  const float hi = *std::max_element(x.begin(), x.end());
  EXPECT_EQ(used[0], 0.0f);
  EXPECT_EQ(used[1], hi);
  EXPECT_EQ(run[0], 0.0f) << "the first batch sets the running range";
  EXPECT_EQ(run[1], hi);
  const double step = hi / 255.0;
  for (int i = 0; i < n; i++) {
    EXPECT_LE(std::fabs(y[i] - x[i]), step / 2 + 1e-6) << "within half a step";
    const double k = y[i] / step;
    EXPECT_NEAR(k, std::round(k), 1e-3) << "on the grid";
    if (x[i] == 0.0f) {
      EXPECT_EQ(y[i], 0.0f) << "zeros stay exact";
    }
  }
  std::vector<float> dy = randn(n, 42), dx(n);
  ist_cpu_act_quantize_backward(n, 8, used.data(), x.data(), dy.data(), dx.data());
  EXPECT_EQ(dx, dy) << "straight-through: the batch range holds every element";
}

TEST(ActQuantize, EvalUsesTheRunningRangeAndClipsWithoutGradientOutsideIt) {
  std::vector<float> x = {-1.0f, 0.0f, 0.5f, 0.9f, 3.0f}, y(5), run = {0.0f, 2.0f}, used(2);
  ist_cpu_act_quantize_forward(5, 2, x.data(), y.data(), run.data(), used.data(), 0.1f, 0);
  // 2 bits over [0, 2]: steps of 2/3.
  const std::vector<float> want = {0.0f, 0.0f, 2.0f / 3, 2.0f / 3, 2.0f};
  for (int i = 0; i < 5; i++) EXPECT_NEAR(y[i], want[i], 1e-6) << i;
  EXPECT_EQ(run[0], 0.0f) << "eval leaves the running range alone";
  EXPECT_EQ(run[1], 2.0f);
  std::vector<float> dy(5, 1.0f), dx(5);
  ist_cpu_act_quantize_backward(5, 2, used.data(), x.data(), dy.data(), dx.data());
  EXPECT_EQ(dx, (std::vector<float>{0, 1, 1, 1, 0}));
}

TEST(ActQuantize, RunningRangeFollowsBatchesWithMomentum) {
  std::vector<float> a = {0.0f, 4.0f}, b = {-2.0f, 2.0f}, y(2), run = {0, 0}, used(2);
  ist_cpu_act_quantize_forward(2, 8, a.data(), y.data(), run.data(), used.data(), 0.1f, 1);
  ist_cpu_act_quantize_forward(2, 8, b.data(), y.data(), run.data(), used.data(), 0.1f, 1);
  EXPECT_NEAR(run[0], 0.9 * 0 + 0.1 * -2, 1e-6);
  EXPECT_NEAR(run[1], 0.9 * 4 + 0.1 * 2, 1e-6);
}

TEST(ActQuantize, ThirtyTwoBitsIsTheIdentity) {
  auto x = randn(50, 51);
  std::vector<float> y(50), run = {0, 0}, used(2);
  ist_cpu_act_quantize_forward(50, 32, x.data(), y.data(), run.data(), used.data(), 0.1f, 1);
  EXPECT_EQ(x, y);
}

}  // namespace
