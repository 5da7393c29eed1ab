// The baseline conv types of SPEC §6: their built weights convolve exactly like their usual
// two-step forms, have the stated structure, and their backward matches finite differences.
#include "test_util.h"

extern "C" {
#include "models/model.h"
#include "train/optimizer.h"
#include "train/report.h"
}

namespace {

struct Built {
  ist_base_shape b;
  std::vector<float> p1, p2, w;
  Built(ist_base_type type, int co, int ci, int k2) {
    b = {type, co, ci, k2};
    p1 = randn(ist_base_p1_numel(&b), 1);
    p2 = randn(ist_base_p2_numel(&b), 2);
    w.resize((size_t)co * ci * k2);
    ist_cpu_baseline_forward(&b, p1.data(), p2.data(), w.data());
  }
};

std::vector<float> conv(const ist_conv_shape &shape, const std::vector<float> &x, const std::vector<float> &w) {
  ist_conv_shape s = shape;
  EXPECT_TRUE(ist_conv_shape_init(&s));
  std::vector<float> y((size_t)s.n * s.co * s.ho * s.wo);
  ist_cpu_conv2d_forward_ref(&s, x.data(), w.data(), nullptr, y.data());
  return y;
}

TEST(Baselines, DsconvIsDepthwiseThenPointwise) {
  const int n = 2, ci = 3, co = 5, h = 7, k = 3;
  Built d(IST_BASE_DSCONV, co, ci, k * k);
  auto x = randn((size_t)n * ci * h * h, 3);
  auto y = conv({n, ci, h, h, co, k, 2, 1, 0, 0, 1}, x, d.w);
  auto t = conv({n, ci, h, h, ci, k, 2, 1, 0, 0, ci}, x, d.p1);        // depthwise
  auto y2 = conv({n, ci, 4, 4, co, 1, 1, 0, 0, 0, 1}, t, d.p2);        // pointwise
  EXPECT_LT(max_rel_diff(y.data(), y2.data(), y.size()), 1e-4);
}

TEST(Baselines, BsconvIsPointwiseThenDepthwise) {
  const int n = 2, ci = 3, co = 4, h = 6, k = 3;
  Built d(IST_BASE_BSCONV, co, ci, k * k);
  auto x = randn((size_t)n * ci * h * h, 3);
  auto y = conv({n, ci, h, h, co, k, 1, 1, 0, 0, 1}, x, d.w);
  auto t = conv({n, ci, h, h, co, 1, 1, 0, 0, 0, 1}, x, d.p2);         // pointwise
  auto y2 = conv({n, co, h, h, co, k, 1, 1, 0, 0, co}, t, d.p1);       // depthwise
  EXPECT_LT(max_rel_diff(y.data(), y2.data(), y.size()), 1e-4);
}

TEST(Baselines, PenniKernelsCombineTwoSharedBases) {
  Built d(IST_BASE_PENNI, 3, 2, 9);
  for (int o = 0; o < 3; o++)
    for (int c = 0; c < 2; c++)
      for (int t = 0; t < 9; t++) {
        const float *coef = &d.p2[(o * 2 + c) * 2];
        EXPECT_NEAR(d.w[(o * 2 + c) * 9 + t], coef[0] * d.p1[t] + coef[1] * d.p1[9 + t], 1e-6);
      }
}

TEST(Baselines, CircnnBlocksAreCirculant) {
  const int co = 8, ci = 4, k2 = 9;
  Built d(IST_BASE_CIRCNN, co, ci, k2);
  EXPECT_EQ(d.p1.size(), (size_t)co * ci * k2 / 4);
  for (int o = 0; o < co; o++)
    for (int c = 0; c < ci; c++)
      for (int t = 0; t < k2; t++) {
        // Moving one step down the diagonal of a 4×4 block leaves the value unchanged.
        int o2 = o / 4 * 4 + (o % 4 + 1) % 4, c2 = c / 4 * 4 + (c % 4 + 1) % 4;
        EXPECT_EQ(d.w[(o * ci + c) * k2 + t], d.w[(o2 * ci + c2) * k2 + t]);
      }
}

TEST(Baselines, BackwardMatchesFiniteDifferences) {
  for (ist_base_type type : {IST_BASE_DSCONV, IST_BASE_BSCONV, IST_BASE_PENNI, IST_BASE_CIRCNN}) {
    Built d(type, 4, 4, 9);
    auto r = randn(d.w.size(), 7);
    std::vector<float> dp1(d.p1.size(), 0.0f), dp2(d.p2.size(), 0.0f);
    ist_cpu_baseline_backward(&d.b, r.data(), d.p1.data(), d.p2.data(), dp1.data(), dp2.data());
    auto loss = [&] {
      ist_cpu_baseline_forward(&d.b, d.p1.data(), d.p2.data(), d.w.data());
      return dot(r, d.w.data());
    };
    SCOPED_TRACE(type);
    expect_gradient(d.p1, dp1, loss, 1e-2, 1e-2, "dp1");
    if (!d.p2.empty()) expect_gradient(d.p2, dp2, loss, 1e-2, 1e-2, "dp2");
  }
}

ist_status make_cnn3(const char *layers, ist_model *m) {
  ist_model_config cfg{};
  EXPECT_EQ(ist_setting_parse("dense", &cfg.global), IST_OK);
  EXPECT_EQ(ist_config_parse_overrides(layers, &cfg), IST_OK);
  return ist_model_create("cnn3", ist_backend_cpu(), 4, &cfg, m);
}

TEST(Baselines, ParameterCountsInTheReport) {
  ist_model m;
  ASSERT_EQ(make_cnn3("conv2=dsconv,conv3=penni", &m), IST_OK) << ist_last_error();
  EXPECT_DOUBLE_EQ(ist_conv_ratio(m.convs[1]).params, 32 * 25 + 32 * 32) << "depthwise + pointwise";
  EXPECT_DOUBLE_EQ(ist_conv_ratio(m.convs[2]).params, 2 * 25 + 32 * 32 * 2) << "2 bases + 2 coefficients per kernel";
  ist_model_destroy(&m);
  ASSERT_EQ(make_cnn3("conv2=bsconv,conv3=circnn", &m), IST_OK) << ist_last_error();
  EXPECT_DOUBLE_EQ(ist_conv_ratio(m.convs[1]).params, 32 * 32 + 32 * 25);
  EXPECT_DOUBLE_EQ(ist_conv_ratio(m.convs[2]).params, 32 * 32 * 25 / 4.0);
  ist_model_destroy(&m);
}

TEST(Baselines, CircnnNeedsChannelsDivisibleByTheBlock) {
  ist_model m;
  EXPECT_NE(make_cnn3("conv1=circnn", &m), IST_OK);
  EXPECT_NE(std::string(ist_last_error()).find("conv1"), std::string::npos) << ist_last_error();
}

TEST(Baselines, Cnn3WithEveryBaselineLearnsAFixedBatch) {
  ist_model m;
  ASSERT_EQ(make_cnn3("conv1=dsconv,conv2=penni,conv3=circnn", &m), IST_OK) << ist_last_error();
  ist_model_init_params(&m, 3);
  auto x = randn(4 * 784, 4);
  std::vector<int32_t> y = {1, 4, 7, 2};
  ist_model_set_batch(&m, 4, x.data(), y.data());
  ist_radam opt;
  ASSERT_EQ(ist_radam_create(&opt, &m, 0.01f, 1.0f, 0.0f), IST_OK);
  double first = 0, last = 0;
  for (int s = 0; s < 40; s++) {
    ist_model_zero_grad(&m);
    m.forward(&m, 4, 1);
    last = model_cross_entropy(&m, 4, m.dlogits);
    if (!s) first = last;
    m.backward(&m, 4);
    ist_radam_step(&opt, &m);
  }
  ist_radam_destroy(&opt);
  ist_model_destroy(&m);
  EXPECT_LT(last, 0.5 * first) << "first " << first << " last " << last;
}

}  // namespace
