// cnn3 as a whole: gradients through generation and quantization, learning on a fixed batch,
// checkpoints (plain and compressed), the ratio accounting of SPEC §2 and the projections.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>

#include "test_util.h"

extern "C" {
#include "models/model.h"
#include "train/optimizer.h"
#include "train/project.h"
#include "train/report.h"
#include "train/trainer.h"
}

namespace {

struct Net {
  ist_model m{};
  explicit Net(const char *setting, int batch = 4, const char *layers = nullptr,
               ist_conv_exec exec = IST_EXEC_AUTO) {
    ist_model_config cfg{};
    cfg.exec = exec;
    EXPECT_EQ(ist_setting_parse(setting, &cfg.global), IST_OK);
    if (layers) {
      EXPECT_EQ(ist_config_parse_overrides(layers, &cfg), IST_OK);
    }
    EXPECT_EQ(ist_model_create("cnn3", ist_backend_cpu(), batch, &cfg, &m), IST_OK) << ist_last_error();
    ist_model_init_params(&m, 5);
  }
  ~Net() { ist_model_destroy(&m); }
};

void fill_batch(ist_model *m, std::vector<int32_t> &labels, uint64_t seed) {
  auto x = randn((size_t)m->batch * 784, seed);
  labels.resize(m->batch);
  for (int i = 0; i < m->batch; i++) labels[i] = (int32_t)((i * 7 + seed) % 10);
  ist_model_set_batch(m, m->batch, x.data(), labels.data());
}

double loss_of(ist_model *m, const std::vector<int32_t> &y, int backward) {
  ist_model_zero_grad(m);
  m->forward(m, m->batch, 1);
  (void)y;  // the labels were set with the batch
  float l = model_cross_entropy(m, m->batch, m->dlogits);
  if (backward) m->backward(m, m->batch);
  return l;
}

// Whole-network finite differences on a few entries of every trainable tensor (unquantized, so
// the loss is smooth; BN in training mode).
void check_model_gradients(const char *setting, ist_conv_exec exec = IST_EXEC_AUTO) {
  Net n(setting, 4, nullptr, exec);
  std::vector<int32_t> y;
  fill_batch(&n.m, y, 3);
  loss_of(&n.m, y, 1);
  std::vector<std::vector<float>> grads;
  for (int i = 0; i < n.m.nparams; i++)
    if (n.m.params[i].grad) grads.emplace_back(n.m.params[i].grad, n.m.params[i].grad + n.m.params[i].numel);
  int gi = 0;
  for (int i = 0; i < n.m.nparams; i++) {
    ist_param *p = &n.m.params[i];
    if (!p->grad) continue;
    const auto &g = grads[gi++];
    double gmax = 0;
    for (float v : g) gmax = std::max(gmax, (double)std::fabs(v));
    for (int64_t k : {(int64_t)0, p->numel / 3, p->numel - 1}) {
      float keep = p->data[k];
      const float eps = 2e-2f * std::max(1e-1f, std::fabs(keep));
      p->data[k] = keep + eps;
      double up = loss_of(&n.m, y, 0);
      p->data[k] = keep - eps;
      double dn = loss_of(&n.m, y, 0);
      p->data[k] = keep;
      double fd = (up - dn) / (2 * eps);
      EXPECT_NEAR(g[k], fd, 0.05 * (std::fabs(fd) + gmax) + 1e-4) << setting << " " << p->name << "[" << k << "]";
    }
  }
}

TEST(Cnn3, DenseGradientsMatchFiniteDifferences) { check_model_gradients("dense"); }
TEST(Cnn3, GeneratedGradientsMatchFiniteDifferencesMaterialized) {
  check_model_gradients("2-8-32-32-32", IST_EXEC_MATERIALIZE);
}
TEST(Cnn3, GeneratedGradientsMatchFiniteDifferencesFactored) {
  check_model_gradients("2-8-32-32-32", IST_EXEC_FACTORED);
}

TEST(Cnn3, AutoExecutionFactorsOnlyWhereItSavesWork) {
  Net n("2-16-4-4-4");
  EXPECT_FALSE(n.m.convs[0]->factored) << "conv1: 16·25 + 32·16 MACs per pixel vs 800 materialized";
  EXPECT_TRUE(n.m.convs[1]->factored) << "conv2: 2336 vs 25600";
  EXPECT_TRUE(n.m.convs[2]->factored);
}

// The quantized student run factored and run on a materialized W: same logits, same gradients.
TEST(Cnn3, FactoredAndMaterializedExecutionAgree) {
  Net a("2-8-4-4-4", 4, nullptr, IST_EXEC_MATERIALIZE), b("2-8-4-4-4", 4, nullptr, IST_EXEC_FACTORED);
  std::vector<int32_t> y;
  fill_batch(&a.m, y, 4);
  fill_batch(&b.m, y, 4);
  EXPECT_NEAR(loss_of(&a.m, y, 1), loss_of(&b.m, y, 1), 1e-5);
  EXPECT_LT(max_rel_diff(b.m.logits, a.m.logits, 40), 1e-4);
  for (int i = 0; i < a.m.nparams; i++) {
    if (!a.m.params[i].grad) continue;
    const ist_param &pa = a.m.params[i], &pb = b.m.params[i];
    double gmax = 0;
    for (int64_t k = 0; k < pa.numel; k++) gmax = std::max(gmax, (double)std::fabs(pa.grad[k]));
    for (int64_t k = 0; k < pa.numel; k++)
      ASSERT_NEAR(pb.grad[k], pa.grad[k], 1e-4 * gmax + 1e-7) << pa.name << "[" << k << "]";
  }
}

TEST(Cnn3, QuantizedStudentLearnsAFixedBatch) {
  Net n("2-8-4-4-4", 16);
  std::vector<int32_t> y;
  fill_batch(&n.m, y, 9);
  ist_radam opt;
  ASSERT_EQ(ist_radam_create(&opt, &n.m, 0.01f, 1.0f, 0.0f), IST_OK);
  double first = loss_of(&n.m, y, 1), last = first;
  for (int s = 0; s < 60; s++) {
    last = loss_of(&n.m, y, 1);
    ist_ortho_total(&n.m, 0.01f);
    ist_radam_step(&opt, &n.m);
  }
  ist_radam_destroy(&opt);
  EXPECT_LT(last, 0.5 * first) << "first " << first << " last " << last;
}

TEST(Cnn3, SettingsDescriptionNamesOnlyTheExceptionsAndParsesBack) {
  Net n("2-16-4-4-4", 1, "conv1=dense");
  char buf[256];
  ist_model_describe(&n.m, buf, sizeof buf);
  EXPECT_STREQ(buf, "*=2-16-4-4-4;conv1=dense");
  std::string list(buf);
  std::replace(list.begin(), list.end(), ';', ',');
  ist_model_config cfg{};
  ASSERT_EQ(ist_config_parse_overrides(list.c_str(), &cfg), IST_OK);
  EXPECT_EQ(cfg.global.bc, 16);
  ASSERT_EQ(cfg.noverride, 1);
  EXPECT_FALSE(ist_config_for(&cfg, "conv1")->generated);
  EXPECT_TRUE(ist_config_for(&cfg, "conv3")->generated);
}

TEST(Cnn3, LevelsFollowTheConstraints) {
  Net n("2-16-4-4-4");
  // conv1 is 32×1×5×5: Bi = 2 ≥ min(Ci = 1, 25) switches level 1 off; Bc = 16 < min(32, 25) keeps level 2.
  EXPECT_FALSE(n.m.convs[0]->gen.level1);
  EXPECT_TRUE(n.m.convs[0]->gen.level2);
  EXPECT_TRUE(n.m.convs[1]->gen.level1);
  EXPECT_TRUE(n.m.convs[1]->gen.level2);
  Net wide("2-32-4-4-4");  // Bc = 32 ≥ min(Co = 32, K) switches level 2 off everywhere
  for (int i = 0; i < 3; i++) EXPECT_FALSE(wide.m.convs[i]->gen.level2);
  EXPECT_EQ(wide.m.convs[1]->gen.nb, 32);
}

TEST(Cnn3, BnRecalibrationConvergesToTheDataStatistics) {
  Net n("2-8-4-4-4", 8);
  auto x = randn(8 * 784, 21);
  std::vector<int32_t> y(8, 1);
  ist_dataset d{8, 1, 28, 28, 10, x.data(), nullptr, y.data(), {0, 0, 0, 0}, {1, 1, 1, 1}};
  ist_bn_recalibrate(&n.m, &d, 100);  // the same batch 100 times: running stats → its statistics
  ist_param *rm = ist_model_find(&n.m, "bn2.running_mean"), *rv = ist_model_find(&n.m, "bn2.running_var");
  std::vector<float> mean(rm->data, rm->data + 32), var(rv->data, rv->data + 32);
  double moved = 0;
  for (int c = 0; c < 32; c++) moved += std::fabs(mean[c]) + std::fabs(var[c] - 1.0f);
  EXPECT_GT(moved, 0.1) << "the statistics left their initial values (0 and 1)";
  // One more training forward on that batch leaves converged statistics where they are.
  ist_model_set_batch(&n.m, 8, x.data(), y.data());
  n.m.forward(&n.m, 8, 1);
  for (int c = 0; c < 32; c++) EXPECT_NEAR(mean[c], rm->data[c], 1e-3 * (1 + std::fabs(mean[c]))) << "channel " << c;
  // The running variance is unbiased: with n·hw = 8·196 values per channel, var·N/(N−1).
  for (int c = 0; c < 32; c++) EXPECT_NEAR(var[c], rv->data[c], 1e-3 * (1 + var[c])) << "channel " << c;
}

TEST(Report, RatiosMatchHandComputedValues) {
  Net n("2-16-4-4-4", 1);
  // conv2: Wb 16·2·25 = 800, U 16·32·2 = 1024, V 32·16 = 512 → P = 2336 = (32 + 2·25 + 32·2)·16.
  ist_ratio r = ist_conv_ratio(n.m.convs[1]);
  EXPECT_DOUBLE_EQ(r.params, 2336);
  EXPECT_DOUBLE_EQ(r.param_ratio, 2336.0 / 25600);
  EXPECT_DOUBLE_EQ(r.memory_ratio, (4.0 * 2336 + 3 * 32) / (32.0 * 25600)) << "4-bit factors plus 3 fp32 scales";
  // conv1 (level 1 off): free Wc 16×25 and V 32×16.
  EXPECT_DOUBLE_EQ(ist_conv_ratio(n.m.convs[0]).params, 16 * 25 + 32 * 16);
  // Whole model: BN γβ 3·64 fp32, FC 2890 at 8 bits; dense denominator all fp32.
  ist_ratio t = ist_model_ratio(&n.m);
  double dense = 800 + 2 * 25600 + 3 * 64 + 2890;
  double bits = (4.0 * 912 + 2 * 32) + 2 * (4.0 * 2336 + 3 * 32) + 32.0 * 192 + 8.0 * 2890;
  EXPECT_DOUBLE_EQ(t.dense_params, dense);
  EXPECT_DOUBLE_EQ(t.params, 912 + 2 * 2336 + 192 + 2890);
  EXPECT_DOUBLE_EQ(t.memory_ratio, bits / (32 * dense));
  Net d("dense", 1);
  EXPECT_DOUBLE_EQ(ist_model_ratio(&d.m).memory_ratio, 1.0);
}

TEST(Checkpoint, RoundTripGivesTheSameLogits) {
  Net a("2-8-4-4-4"), b("2-8-4-4-4");
  std::vector<int32_t> y;
  fill_batch(&a.m, y, 1);
  std::copy(a.m.input, a.m.input + 4 * 784, b.m.input);
  std::string p = std::string(::testing::TempDir()) + "insitu_ck.safetensors";
  ASSERT_EQ(ist_model_save(&a.m, p.c_str(), "test"), IST_OK) << ist_last_error();
  ist_model_init_params(&b.m, 99);
  ASSERT_EQ(ist_model_load(&b.m, p.c_str()), IST_OK) << ist_last_error();
  a.m.forward(&a.m, 4, 0);
  b.m.forward(&b.m, 4, 0);
  for (int i = 0; i < 40; i++) EXPECT_EQ(a.m.logits[i], b.m.logits[i]);
}

TEST(Checkpoint, MismatchedSettingIsRejectedAndLeavesTheModelUnchanged) {
  Net a("2-8-4-4-4"), b("2-16-4-4-4");
  std::string p = std::string(::testing::TempDir()) + "insitu_mm.safetensors";
  ASSERT_EQ(ist_model_save(&a.m, p.c_str(), "test"), IST_OK);
  std::vector<float> before(b.m.params[0].data, b.m.params[0].data + b.m.params[0].numel);
  EXPECT_EQ(ist_model_load(&b.m, p.c_str()), IST_ERR_STATE);
  EXPECT_NE(std::string(ist_last_error()).find("conv1"), std::string::npos) << ist_last_error();
  for (size_t i = 0; i < before.size(); i++) EXPECT_EQ(b.m.params[0].data[i], before[i]);
}

TEST(Checkpoint, CompressedFileIsSmallAndReproducesTheQuantizedModel) {
  Net a("2-16-4-4-4"), b("2-16-4-4-4");
  std::vector<int32_t> y;
  fill_batch(&a.m, y, 2);
  std::copy(a.m.input, a.m.input + 4 * 784, b.m.input);
  std::string p = std::string(::testing::TempDir()) + "insitu_c.compressed.safetensors";
  ASSERT_EQ(ist_model_save_compressed(&a.m, p.c_str()), IST_OK) << ist_last_error();
  ASSERT_EQ(ist_model_load_compressed(&b.m, p.c_str()), IST_OK) << ist_last_error();
  a.m.forward(&a.m, 4, 0);
  b.m.forward(&b.m, 4, 0);
  for (int i = 0; i < 40; i++) EXPECT_NEAR(a.m.logits[i], b.m.logits[i], 1e-4 * (1 + std::fabs(a.m.logits[i])));
  std::ifstream f(p, std::ios::binary | std::ios::ate);
  double bytes = (double)f.tellg();
  ist_ratio r = ist_model_ratio(&a.m);
  // The payload is what the ratio counts, plus the running stats (2·96 floats) and the header.
  EXPECT_LT(bytes, r.bits / 8 + 4 * 192 + 4096);
  Net d("dense");
  EXPECT_EQ(ist_model_load_compressed(&d.m, p.c_str()), IST_ERR_STATE);
}

// With one level on, truncated SVD is the optimal projection, so it recovers a weight of exactly
// that structure. (With both levels it is not exact: the rank-Bc row space of W is spanned by
// mixtures of the Wc_j, whose Ci×k² reshapes have rank above Bi — which is why ℓ2 init exists.)
TEST(Projection, SvdIsExactOnAWeightWithOneLevel) {
  for (const char *setting : {"25-8-32-32-32", "2-32-32-32-32"}) {
    Net t(setting), s(setting);
    ist_conv_layer *lt = t.m.convs[1], *ls = s.m.convs[1];
    ASSERT_NE(lt->gen.level1, lt->gen.level2) << setting;
    ist_conv_layer_generate(t.m.be, lt);
    std::vector<float> w(lt->w, lt->w + 32 * 800);
    EXPECT_LT(ist_project_svd(s.m.be, ls, w.data()), 1e-3) << setting;
  }
}

TEST(Projection, L2BeatsSvdWithBothLevelsOnAStructuredWeight) {
  Net t("2-8-32-32-32"), s("2-8-32-32-32");
  ist_conv_layer_generate(t.m.be, t.m.convs[1]);
  std::vector<float> w(t.m.convs[1]->w, t.m.convs[1]->w + 32 * 800);
  float svd = ist_project_svd(s.m.be, s.m.convs[1], w.data());
  float l2 = ist_project_l2(s.m.be, s.m.convs[1], w.data(), 1500, 0.02f);
  EXPECT_LT(l2, svd) << "svd " << svd << " l2 " << l2;
}

TEST(Projection, L2ReachesAtLeastTheSvdErrorOnARandomWeight) {
  Net s("2-8-32-32-32");
  ist_conv_layer *l = s.m.convs[1];
  auto w = randn(32 * 800, 4, 0.05f);
  float svd = ist_project_svd(s.m.be, l, w.data());
  float l2 = ist_project_l2(s.m.be, l, w.data(), 1500, 0.02f);
  EXPECT_LT(svd, 1.0f);
  EXPECT_LT(l2, svd * 1.01f) << "svd " << svd << " l2 " << l2;
}

}  // namespace
