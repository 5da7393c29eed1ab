// MobileNetV3-Small and EfficientNet-B0: torchvision's parameter counts and names, generation at
// the levels SPEC §2 gives depthwise, pointwise and SE convs, gradients through SE, hardswish,
// SiLU, dropout and stochastic depth against finite differences, and learning on a fixed batch.
#include "net_fixture.h"

#include <cstring>

extern "C" {
#include "models/mbconv.h"
#include "models/model.h"
#include "train/optimizer.h"
#include "train/trainer.h"
}

namespace {


int64_t dense_count(const char *arch, int classes) {
  Net n(arch, "dense", 1, 32, classes);
  return ist_model_param_floats(&n.m);
}

// torchvision 0.14: sum(p.numel() for p in mobilenet_v3_small().parameters()) = 2,542,856; with
// 10 classes the last Linear (1024 → classes) shrinks by 1025·990 to 1,528,106.
TEST(MobileNetV3Small, DenseParameterCountsMatchTorchvision) {
  EXPECT_EQ(dense_count("mobilenetv3-small", 0), 2542856);
  EXPECT_EQ(dense_count("mobilenetv3-small-cifar", 0), 1528106);
}

// torchvision 0.14: efficientnet_b0() has 5,288,548 parameters; with 10 classes the classifier
// (1280 → classes) shrinks by 1281·990 to 4,020,358.
TEST(EfficientNetB0, DenseParameterCountsMatchTorchvision) {
  EXPECT_EQ(dense_count("efficientnet-b0", 0), 5288548);
  EXPECT_EQ(dense_count("efficientnet-b0-cifar", 0), 4020358);
}

void expect_shape(Net &n, const char *name, std::vector<int64_t> shape) {
  ist_param *p = ist_model_find(&n.m, name);
  ASSERT_NE(p, nullptr) << name;
  EXPECT_EQ(std::vector<int64_t>(p->shape, p->shape + p->ndim), shape) << name;
}

TEST(MobileNetV3Small, NamesAndShapesFollowTorchvision) {
  Net n("mobilenetv3-small", "dense", 1, 32);
  expect_shape(n, "features.0.0.weight", {16, 3, 3, 3});
  expect_shape(n, "features.1.block.0.0.weight", {16, 1, 3, 3});  // no expansion in the first block
  expect_shape(n, "features.1.block.1.fc1.weight", {8, 16, 1, 1});
  expect_shape(n, "features.1.block.1.fc1.bias", {8});
  expect_shape(n, "features.1.block.2.0.weight", {16, 16, 1, 1});
  expect_shape(n, "features.2.block.0.0.weight", {72, 16, 1, 1});
  expect_shape(n, "features.2.block.2.1.running_var", {24});  // no SE: project is block.2
  expect_shape(n, "features.4.block.1.0.weight", {96, 1, 5, 5});
  expect_shape(n, "features.4.block.2.fc2.weight", {96, 24, 1, 1});
  expect_shape(n, "features.11.block.2.fc1.weight", {144, 576, 1, 1});
  expect_shape(n, "features.12.0.weight", {576, 96, 1, 1});
  expect_shape(n, "classifier.0.weight", {1024, 576});
  expect_shape(n, "classifier.3.weight", {1000, 1024});
  EXPECT_EQ(n.m.nconvs, 52);
}

TEST(EfficientNetB0, NamesAndShapesFollowTorchvision) {
  Net n("efficientnet-b0", "dense", 1, 32);
  expect_shape(n, "features.0.0.weight", {32, 3, 3, 3});
  expect_shape(n, "features.1.0.block.0.0.weight", {32, 1, 3, 3});
  expect_shape(n, "features.1.0.block.1.fc1.weight", {8, 32, 1, 1});
  expect_shape(n, "features.1.0.block.2.0.weight", {16, 32, 1, 1});
  expect_shape(n, "features.2.0.block.0.0.weight", {96, 16, 1, 1});
  expect_shape(n, "features.2.0.block.2.fc1.weight", {4, 96, 1, 1});
  expect_shape(n, "features.3.1.block.1.0.weight", {240, 1, 5, 5});
  expect_shape(n, "features.6.3.block.2.fc2.bias", {1152});
  expect_shape(n, "features.7.0.block.3.1.weight", {320});
  expect_shape(n, "features.8.0.weight", {1280, 320, 1, 1});
  expect_shape(n, "classifier.1.weight", {1000, 1280});
  EXPECT_EQ(n.m.nconvs, 81);
}

TEST(CompactNetworks, DepthwiseGeneratedAtLevelOnePointwiseAndSeAtLevelTwo) {
  for (const char *arch : {"mobilenetv3-small-cifar", "efficientnet-b0-cifar"}) {
    Net n(arch, "2-4-8-8-8", 1, 32);
    const bool v3 = arch[0] == 'm';
    const ist_conv_layer *dw = n.conv(v3 ? "features.4.block.1.0" : "features.3.0.block.1.0");
    const ist_conv_layer *pw = n.conv(v3 ? "features.4.block.0.0" : "features.3.0.block.0.0");
    const ist_conv_layer *se = n.conv(v3 ? "features.4.block.2.fc1" : "features.3.0.block.2.fc1");
    ASSERT_TRUE(dw && pw && se) << arch;
    EXPECT_EQ(dw->shape.groups, v3 ? 96 : 144) << arch;
    EXPECT_TRUE(dw->set.generated && dw->gen.level1 && !dw->gen.level2) << arch << ": depthwise W = U·Wb";
    EXPECT_TRUE(pw->set.generated && !pw->gen.level1 && pw->gen.level2) << arch << ": pointwise 24→96/144, Bc = 4";
    EXPECT_TRUE(se->set.generated && !se->gen.level1 && se->gen.level2) << arch << ": SE 96→24 / 144→6, Bc = 4";
  }
}

TEST(CompactNetworks, PerLayerOverrideKeepsAnSeConvDense) {
  ist_model_config cfg{};
  ASSERT_EQ(ist_setting_parse("2-16-8-8-8", &cfg.global), IST_OK);
  ASSERT_EQ(ist_config_parse_overrides("features.4.block.2.fc1=dense", &cfg), IST_OK);
  ist_model m;
  ASSERT_EQ(ist_model_create("mobilenetv3-small-cifar", ist_backend_cpu(), 1, &cfg, &m), IST_OK) << ist_last_error();
  EXPECT_NE(ist_model_find(&m, "features.4.block.2.fc1.weight"), nullptr);
  EXPECT_NE(ist_model_find(&m, "features.4.block.2.fc2.wc"), nullptr);
  ist_model_destroy(&m);
}

// Central differences on entries spread over the network (unquantized generated convs, BN in
// training mode, dropout and stochastic-depth masks held fixed), against the analytic gradient.
void check_gradients(Net &n, const std::vector<const char *> &names) {
  ASSERT_TRUE(ist_drop_hold(&n.m, 0));
  n.loss(0);  // draw the masks once, then hold them
  ist_drop_hold(&n.m, 1);
  for (const char *name : names) {
    ist_param *p = ist_model_find(&n.m, name);
    ASSERT_NE(p, nullptr) << name;
    n.loss(1);
    std::vector<float> g(p->grad, p->grad + p->numel);
    double gmax = 0;
    for (float v : g) gmax = std::max(gmax, (double)std::fabs(v));
    for (int64_t k : {p->numel / 2, p->numel - 1}) {
      float keep = p->data[k];
      const float eps = 1e-2f * std::max(1e-1f, std::fabs(keep));
      p->data[k] = keep + eps;
      double up = n.loss(0);
      p->data[k] = keep - eps;
      double dn = n.loss(0);
      p->data[k] = keep;
      double fd = (up - dn) / (2 * eps);
      EXPECT_NEAR(g[k], fd, 0.05 * (std::fabs(fd) + gmax) + 1e-4) << name << "[" << k << "]";
    }
  }
}

TEST(MobileNetV3Small, GradientsMatchFiniteDifferences) {
  Net n("mobilenetv3-small-cifar", "2-8-32-32-32", 4, 16);
  check_gradients(n, {"features.0.0.u", "features.1.block.1.fc1.wc", "features.1.block.1.fc2.bias",
                      "features.4.block.1.0.wb", "features.4.block.2.fc2.v", "features.5.block.3.1.weight",
                      "features.12.0.v", "classifier.0.weight", "classifier.3.bias"});
}

TEST(EfficientNetB0, GradientsMatchFiniteDifferencesThroughStochasticDepth) {
  Net n("efficientnet-b0-cifar", "2-8-32-32-32", 4, 32);
  check_gradients(n, {"features.0.0.u", "features.1.0.block.1.fc1.bias", "features.2.1.block.2.fc2.wc",
                      "features.6.3.block.3.0.v", "classifier.1.weight"});
}

TEST(EfficientNetB0, StochasticDepthDropsWholeImagesOfAResidualBranchInTrainingOnly) {
  // With every mask held the training forward is a function of the parameters; releasing the
  // masks draws new ones, so the loss changes while an eval forward does not.
  Net n("efficientnet-b0-cifar", "dense", 4, 16);
  n.m.bn_momentum = 0.0f;  // training forwards leave the running statistics alone
  n.m.forward(&n.m, 4, 0);
  std::vector<float> e1(n.m.logits, n.m.logits + 4 * n.m.classes);
  const double a = n.loss(0), b = n.loss(0);
  n.m.forward(&n.m, 4, 0);
  std::vector<float> e2(n.m.logits, n.m.logits + 4 * n.m.classes);
  EXPECT_NE(a, b) << "new masks at each training step";
  EXPECT_EQ(e1, e2) << "eval: no dropout, no stochastic depth";
}

TEST(CompactNetworks, QuantizedStudentsLearnAFixedBatch) {
  for (const char *arch : {"mobilenetv3-small-cifar", "efficientnet-b0-cifar"}) {
    Net n(arch, "2-8-4-4-4", 4, 16);
    ist_drop_hold(&n.m, 1);  // a fixed batch with fixed masks: the loss is a function to minimize
    ist_radam opt;
    ASSERT_EQ(ist_radam_create(&opt, &n.m, 0.01f, 1.0f, 0.0f), IST_OK);
    double first = n.loss(1), last = first;
    for (int s = 0; s < 15; s++) {
      last = n.loss(1);
      ist_radam_step(&opt, &n.m);
    }
    ist_radam_destroy(&opt);
    EXPECT_LT(last, 0.5 * first) << arch << ": first " << first << " last " << last;
  }
}

}  // namespace
