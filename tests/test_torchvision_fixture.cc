// insitu against real torchvision without torch: tests/data/torchvision_logits.safetensors holds
// the logits torchvision 0.14 computed (models/torchvision_check.py --fixture) for resnet18,
// mobilenet_v2, mobilenet_v3_small, efficientnet_b0 and densenet121 (10 classes, eval mode) on two
// 32×32 inputs, with weights and inputs built from a hash of each tensor's name (the script's
// fixture_tensor, reproduced here). insitu builds the same weights under its (torchvision's)
// names and must give the same logits within 1e-4.
#include "test_util.h"

#include <cstring>
#include <string>

extern "C" {
#include "host/safetensors.h"
#include "models/model.h"
}

namespace {

const int kImages = 2, kSize = 32, kClasses = 10;

std::string fixture_path() {
  std::string f = __FILE__;
  return f.substr(0, f.find_last_of('/')) + "/data/torchvision_logits.safetensors";
}

// u in [0, 1) for element i of tensor `name` (models/torchvision_check.py: fixture_uniform).
float fixture_uniform(const char *name, int64_t i) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (const char *c = name; *c; c++) h = (h ^ (uint8_t)*c) * 0x100000001B3ull;
  uint64_t z = h + 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (float)(z >> 40) * (1.0f / 16777216.0f);
}

bool ends_with(const char *s, const char *tail) {
  size_t a = strlen(s), b = strlen(tail);
  return a >= b && !strcmp(s + a - b, tail);
}

// models/torchvision_check.py: fixture_tensor.
std::vector<float> fixture_tensor(const char *name, int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) n *= shape[d];
  std::vector<float> v(n);
  const volatile float fan_scale = std::sqrt(3.0f / (float)(n / shape[0]));
  for (int64_t i = 0; i < n; i++) {
    const float u = fixture_uniform(name, i);
    if (ends_with(name, "running_var")) v[i] = 0.5f + u;
    else if (ends_with(name, "running_mean")) v[i] = 0.2f * (u - 0.5f);
    else if (ndim == 1 && ends_with(name, ".weight")) v[i] = 1.0f + 0.2f * (u - 0.5f);
    else if (ndim == 1) v[i] = 0.2f * (u - 0.5f);
    else v[i] = (2.0f * u - 1.0f) * fan_scale;
  }
  return v;
}

void expect_matches_torchvision(const char *arch) {
  ist_safetensors f;
  ASSERT_EQ(ist_st_read(fixture_path().c_str(), &f), IST_OK) << ist_last_error();
  const ist_st_tensor *want = ist_st_find(&f, arch);
  ASSERT_NE(want, nullptr) << arch;
  ASSERT_EQ(want->shape[0] * want->shape[1], kImages * kClasses);
  ist_model_config cfg{};
  cfg.classes = kClasses;
  cfg.in_h = cfg.in_w = kSize;
  ist_model m;
  ASSERT_EQ(ist_model_create(arch, ist_backend_cpu(), kImages, &cfg, &m), IST_OK) << ist_last_error();
  for (int i = 0; i < m.nparams; i++) {
    const ist_param *p = &m.params[i];
    auto v = fixture_tensor(p->name, p->ndim, p->shape);
    m.be->upload(p->data, v.data(), sizeof(float) * v.size());
  }
  std::vector<float> x;
  const int64_t img_shape[3] = {3, kSize, kSize};
  for (int i = 0; i < kImages; i++) {
    auto xi = fixture_tensor(("input" + std::to_string(i)).c_str(), 3, img_shape);
    for (float &e : xi) e *= 4.0f;
    x.insert(x.end(), xi.begin(), xi.end());
  }
  std::vector<int32_t> y(kImages, 0);
  ist_model_set_batch(&m, kImages, x.data(), y.data());
  m.forward(&m, kImages, 0);
  std::vector<float> got(kImages * kClasses);
  m.be->download(got.data(), m.logits, sizeof(float) * got.size());
  const float *ref = (const float *)want->data;
  double diff = 0, scale = 0;
  for (int i = 0; i < kImages * kClasses; i++) {
    diff = std::max(diff, std::fabs((double)got[i] - ref[i]));
    scale = std::max(scale, std::fabs((double)ref[i]));
  }
  EXPECT_LE(diff, 1e-4) << arch << ": largest |logit| " << scale;
  EXPECT_GT(scale, 1e-2) << arch << ": logits large enough for the comparison to mean something";
  char measured[32];
  snprintf(measured, sizeof measured, "%.3g", diff);
  ::testing::Test::RecordProperty(std::string(arch) + "_max_logit_diff", measured);
  ist_model_destroy(&m);
  ist_st_free(&f);
}

TEST(TorchvisionFixture, ResNet18LogitsMatch) { expect_matches_torchvision("resnet18"); }
TEST(TorchvisionFixture, MobileNetV2LogitsMatch) { expect_matches_torchvision("mobilenetv2"); }
TEST(TorchvisionFixture, MobileNetV3SmallLogitsMatch) { expect_matches_torchvision("mobilenetv3-small"); }
TEST(TorchvisionFixture, EfficientNetB0LogitsMatch) { expect_matches_torchvision("efficientnet-b0"); }
TEST(TorchvisionFixture, DenseNet121LogitsMatch) { expect_matches_torchvision("densenet121"); }

// A torchvision state_dict (no insitu metadata) of one network loaded into another: one line
// naming the first tensor the model needs and the file lacks.
TEST(TorchvisionFixture, CheckpointOfTheWrongNetworkFailsWithOneLine) {
  ist_model_config cfg{};
  cfg.classes = kClasses;
  ist_model v3, eff;
  ASSERT_EQ(ist_model_create("mobilenetv3-small", ist_backend_cpu(), 1, &cfg, &v3), IST_OK);
  ASSERT_EQ(ist_model_create("efficientnet-b0", ist_backend_cpu(), 1, &cfg, &eff), IST_OK);
  std::vector<ist_st_tensor> t(v3.nparams);
  for (int i = 0; i < v3.nparams; i++) {
    const ist_param *p = &v3.params[i];
    t[i] = ist_st_tensor{};
    snprintf(t[i].name, sizeof t[i].name, "%s", p->name);
    t[i].dtype = IST_F32;
    t[i].ndim = p->ndim;
    memcpy(t[i].shape, p->shape, sizeof p->shape);
    t[i].data = p->data;
    t[i].nbytes = sizeof(float) * (size_t)p->numel;
  }
  const std::string path = testing::TempDir() + "tv_mobilenet_v3_small.safetensors";
  ASSERT_EQ(ist_st_write(path.c_str(), t.data(), (int)t.size(), nullptr, 0), IST_OK);
  ASSERT_NE(ist_model_load(&eff, path.c_str()), IST_OK);
  const std::string err = ist_last_error();
  EXPECT_NE(err.find("features.0.0.weight"), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos) << "one line: " << err;
  ist_model_destroy(&v3);
  ist_model_destroy(&eff);
}

}  // namespace
