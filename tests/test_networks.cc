// The larger architectures (ResNet-18, MobileNetV2, DenseNet-121): standard parameter counts, torchvision names,
// gradients through residual blocks, shortcuts, the max-pool stem, depthwise convs and ReLU6, and
// learning on a fixed batch.
#include "net_fixture.h"

extern "C" {
#include "models/model.h"
#include "train/optimizer.h"
#include "train/trainer.h"
}

namespace {


// RAdam (lr 0.01) with the orthogonality penalty on the fixed batch halves the loss in `steps`.
void expect_learns(Net &n, int steps) {
  ist_radam opt;
  ASSERT_EQ(ist_radam_create(&opt, &n.m, 0.01f, 1.0f, 0.0f), IST_OK);
  double first = n.loss(1), last = first;
  for (int s = 0; s < steps; s++) {
    last = n.loss(1);
    ist_ortho_total(&n.m, 0.01f);
    ist_radam_step(&opt, &n.m);
  }
  ist_radam_destroy(&opt);
  EXPECT_LT(last, 0.5 * first) << "first " << first << " last " << last;
}

// PyTorch's parameter counts (sum of p.numel() over model.parameters()): torchvision's
// resnet18(num_classes=1000) has 11,689,512; the CIFAR variant (3×3 stem, no max-pool) has
// 11,173,962 with 10 classes and 11,220,132 with 100.
// Each named parameter exists with the given shape.
struct NamedShape {
  const char *name;
  std::vector<int64_t> shape;
};
void expect_shapes(Net &n, const std::vector<NamedShape> &want) {
  for (auto &w : want) {
    ist_param *p = ist_model_find(&n.m, w.name);
    ASSERT_NE(p, nullptr) << w.name;
    EXPECT_EQ(std::vector<int64_t>(p->shape, p->shape + p->ndim), w.shape) << w.name;
  }
}

TEST(ResNet18, DenseParameterCountsMatchTheStandardModels) {
  auto count = [](const char *arch, int classes) {
    Net n(arch, "dense", 1, 32, classes);
    return ist_model_param_floats(&n.m);
  };
  EXPECT_EQ(count("resnet18", 0), 11689512);
  EXPECT_EQ(count("resnet18-cifar", 0), 11173962);
  EXPECT_EQ(count("resnet18-cifar", 100), 11220132);
}

TEST(ResNet18, ParameterNamesAndShapesFollowTorchvision) {
  Net n("resnet18", "dense", 1, 32);
  expect_shapes(n, {{"conv1.weight", {64, 3, 7, 7}},
              {"bn1.running_var", {64}},
              {"layer1.1.conv2.weight", {64, 64, 3, 3}},
              {"layer2.0.downsample.0.weight", {128, 64, 1, 1}},
              {"layer2.0.downsample.1.bias", {128}},
              {"layer4.1.bn2.weight", {512}},
              {"fc.weight", {1000, 512}},
              {"fc.bias", {1000}}});
  EXPECT_EQ(ist_model_find(&n.m, "layer1.0.downsample.0.weight"), nullptr) << "no shortcut conv where shapes agree";
  EXPECT_EQ(n.m.nconvs, 20);
}

TEST(ResNet18, GeneratedShortcutsFollowTheLevelRules) {
  Net n("resnet18-cifar", "2-44-8-8-8", 1, 8);
  const ist_conv_layer *stem = n.m.convs[0];
  EXPECT_TRUE(stem->gen.level1) << "3→64, 3×3: Bi = 2 < min(3, 9)";
  EXPECT_FALSE(stem->gen.level2) << "Bc = 44 ≥ min(64, 27)";
  const ist_conv_layer *ds = nullptr;
  for (int i = 0; i < n.m.nconvs; i++)
    if (!strcmp(n.m.convs[i]->name, "layer3.0.downsample.0")) ds = n.m.convs[i];
  ASSERT_NE(ds, nullptr);
  EXPECT_FALSE(ds->gen.level1) << "1×1";
  EXPECT_TRUE(ds->gen.level2) << "Bc = 44 < min(256, 128)";
}

// Central differences on chosen entries of tensors spread over the network (unquantized
// generated convs, BN in training mode), against the analytic gradient.
void check_gradients(Net &n, const std::vector<const char *> &names) {
  for (const char *name : names) {
    ist_param *p = ist_model_find(&n.m, name);
    ASSERT_NE(p, nullptr) << name;
    n.loss(1);  // the finite differences below zero the gradients again
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

TEST(ResNet18, CifarGradientsMatchFiniteDifferences) {
  Net n("resnet18-cifar", "2-8-32-32-32", 4, 16);
  check_gradients(n, {"conv1.u", "bn1.weight", "layer1.0.conv1.wb", "layer1.1.conv2.v", "layer2.0.downsample.0.wc",
                      "layer2.0.downsample.1.bias", "layer3.1.bn2.weight", "layer4.1.conv2.u", "fc.weight"});
}

TEST(ResNet18, ImagenetStemGradientsMatchFiniteDifferences) {
  Net n("resnet18", "dense", 4, 64, 5);  // layer4 at 2×2: BN over 16 values per channel
  check_gradients(n, {"conv1.weight", "bn1.bias", "layer1.0.conv1.weight", "fc.bias"});
}

TEST(ResNet18, QuantizedStudentLearnsAFixedBatch) {
  Net n("resnet18-cifar", "2-8-4-4-4", 8, 8);
  expect_learns(n, 25);
}

TEST(ResNet18, DefaultsAreTheDataSetsOfEachVariant) {
  ist_model_config cfg{};
  ist_model m;
  ASSERT_EQ(ist_model_create("resnet18-cifar", ist_backend_cpu(), 1, &cfg, &m), IST_OK);
  EXPECT_EQ(m.in_h * 1000 + m.classes, 32 * 1000 + 10);
  ist_model_destroy(&m);
  ASSERT_EQ(ist_model_create("resnet18", ist_backend_cpu(), 1, &cfg, &m), IST_OK);
  EXPECT_EQ(m.in_h * 1000 + m.classes, 224 * 1000 + 1000);
  ist_model_destroy(&m);
}

// torchvision's mobilenet_v2() has 3,504,872 parameters; with 10 classes the classifier shrinks
// by 1281·990, to 2,236,682 (the CIFAR variant differs only in strides).
TEST(MobileNetV2, DenseParameterCountsMatchTorchvision) {
  auto count = [](const char *arch, int classes) {
    Net n(arch, "dense", 1, 32, classes);
    return ist_model_param_floats(&n.m);
  };
  EXPECT_EQ(count("mobilenetv2", 0), 3504872);
  EXPECT_EQ(count("mobilenetv2-cifar", 0), 2236682);
}

TEST(MobileNetV2, NamesFollowTorchvisionAndDepthwiseUsesLevelOneOnly) {
  Net n("mobilenetv2-cifar", "2-16-8-8-8", 1, 32);
  for (const char *name : {"features.0.0.wb", "features.1.conv.0.0.wb", "features.1.conv.1.wc", "features.1.conv.2.bias",
                           "features.2.conv.1.0.u", "features.2.conv.3.running_mean", "features.18.1.weight",
                           "classifier.1.weight"})
    EXPECT_NE(ist_model_find(&n.m, name), nullptr) << name;
  const ist_conv_layer *dw = nullptr, *pw = nullptr;
  for (int i = 0; i < n.m.nconvs; i++) {
    if (!strcmp(n.m.convs[i]->name, "features.4.conv.1.0")) dw = n.m.convs[i];
    if (!strcmp(n.m.convs[i]->name, "features.4.conv.2")) pw = n.m.convs[i];
  }
  ASSERT_TRUE(dw && pw);
  EXPECT_EQ(dw->shape.groups, 144);
  EXPECT_TRUE(dw->gen.level1 && !dw->gen.level2) << "depthwise: W = U·Wb over its 144 channels";
  EXPECT_EQ(ist_model_find(&n.m, "features.4.conv.1.0.u")->numel, 144 * 2);
  EXPECT_TRUE(!pw->gen.level1 && pw->gen.level2) << "pointwise 144→32: level 2";
}

// torchvision's densenet121() has 7,978,856 parameters; the CIFAR variant's 3×3 stem has 7,680
// fewer and 10 classes 1,014,750 fewer: 6,956,426.
TEST(DenseNet121, DenseParameterCountsMatchTorchvision) {
  auto count = [](const char *arch) {
    Net n(arch, "dense", 1, 32);
    return ist_model_param_floats(&n.m);
  };
  EXPECT_EQ(count("densenet121"), 7978856);
  EXPECT_EQ(count("densenet121-cifar"), 6956426);
}

TEST(DenseNet121, NamesFollowTorchvision) {
  Net n("densenet121", "dense", 1, 32);
  expect_shapes(n, {{"features.conv0.weight", {64, 3, 7, 7}},
              {"features.denseblock1.denselayer1.norm1.weight", {64}},
              {"features.denseblock1.denselayer6.conv1.weight", {128, 224, 1, 1}},
              {"features.denseblock3.denselayer24.conv2.weight", {32, 128, 3, 3}},
              {"features.transition3.conv.weight", {512, 1024, 1, 1}},
              {"features.norm5.running_var", {1024}},
              {"classifier.weight", {1000, 1024}}});
  EXPECT_EQ(n.m.nconvs, 120);
}

TEST(DenseNet121, GradientsMatchFiniteDifferences) {
  Net n("densenet121-cifar", "2-8-32-32-32", 4, 16);
  check_gradients(n, {"features.conv0.u", "features.norm0.weight", "features.denseblock1.denselayer1.norm1.weight",
                      "features.denseblock1.denselayer1.conv1.v", "features.denseblock1.denselayer6.conv2.wb",
                      "features.transition1.conv.wc", "features.transition1.norm.bias",
                      "features.denseblock4.denselayer16.conv2.u", "features.norm5.weight", "classifier.weight"});
}

TEST(DenseNet121, OddMapsBeforeATransitionAreAClearError) {
  ist_model_config cfg{};
  cfg.in_h = cfg.in_w = 12;  // 12 → 6 → 3: odd before the third transition
  ist_model m;
  EXPECT_NE(ist_model_create("densenet121-cifar", ist_backend_cpu(), 1, &cfg, &m), IST_OK);
  EXPECT_NE(std::string(ist_last_error()).find("transition 3"), std::string::npos) << ist_last_error();
}

TEST(DenseNet121, QuantizedStudentLearnsAFixedBatch) {
  Net n("densenet121-cifar", "2-8-4-4-4", 4, 8);
  expect_learns(n, 20);
}

// MobileNetV2's backward is checked through its parts (conv, depthwise, ReLU6, BN in both modes,
// add: each against finite differences) and by learning below. Whole-network central differences
// did not converge on it: at initialization its loss is so curved along single parameters that
// differences still moved at steps where float32 rounding of the loss takes over (measured on the
// stem's dense weight with frozen BN: 7.5 at 1e-2, 10.0 at 1e-3, 10.95 at 3e-5, analytic 11.0;
// generated: 8.8, 8.0, 3.96 against 3.17, then noise).
TEST(MobileNetV2, QuantizedStudentLearnsAFixedBatch) {
  Net n("mobilenetv2-cifar", "2-8-4-4-4", 8, 8);
  expect_learns(n, 30);
}

}  // namespace
