// Activation quantization (--act-bits, SPEC §3's A8) in the models: what the convs and the
// classifier read, the running range, checkpoints, the report and the flag's bad values.
#include "program_util.h"
#include "test_util.h"

#include <cstring>
#include <set>

extern "C" {
#include "models/model.h"
}

namespace {

struct Cnn3 {
  ist_model m{};
  explicit Cnn3(int act_bits, int batch = 4) {
    ist_model_config cfg{};
    EXPECT_EQ(ist_setting_parse("2-16-32-32-32", &cfg.global), IST_OK);
    cfg.act_bits = act_bits;
    EXPECT_EQ(ist_model_create("cnn3", ist_backend_cpu(), batch, &cfg, &m), IST_OK) << ist_last_error();
    ist_model_init_params(&m, 3);
    auto x = randn((size_t)batch * 28 * 28, 4);
    std::vector<int32_t> y(batch, 1);
    ist_model_set_batch(&m, batch, x.data(), y.data());
  }
  ~Cnn3() { ist_model_destroy(&m); }
  const float *range(const char *name) { return ist_model_find(&m, name)->data; }
};

// conv2 reads conv1's ReLU output quantized over the batch's [0, max]: every value is on the
// 255-step grid of that range, the maximum is a grid point, and much of the grid is used.
TEST(ActQuant, EightBitsPutWhatConv2ReadsOnTheGridOfTheBatchRange) {
  Cnn3 a(8);
  a.m.forward(&a.m, 4, 1);
  const ist_conv_layer *conv2 = a.m.convs[1];
  const int64_t n = 4LL * conv2->shape.ci * conv2->shape.h * conv2->shape.w;
  // conv1's ReLU output (bn1 → ReLU) is what the quantizer received; conv2 read its codes.
  ist_param *r = ist_model_find(&a.m, "conv2.act_range");
  ASSERT_NE(r, nullptr);
  ASSERT_NE(conv2->x, nullptr);
  const float *q = conv2->x;  // what the conv read: the quantized codes' values
  const float hi = r->data[1];
  EXPECT_EQ(r->data[0], 0.0f) << "ReLU outputs: the range starts at 0";
  EXPECT_GT(hi, 0.0f);
  float qmax = 0;
  for (int64_t i = 0; i < n; i++) qmax = std::max(qmax, q[i]);
  EXPECT_FLOAT_EQ(qmax, hi) << "the batch maximum is a grid point";
  const double step = hi / 255.0;
  std::set<long> codes;
  for (int64_t i = 0; i < n; i++) {
    const double k = q[i] / step;
    ASSERT_NEAR(k, std::round(k), 1e-3) << i;
    codes.insert(std::lround(k));
  }
  EXPECT_GT(codes.size(), 64u) << "the values use much of the 256 codes";
  EXPECT_LE(codes.size(), 256u);
}

TEST(ActQuant, QuantizedInputsAreWithinHalfAStepOfTheFullPrecisionOnes) {
  // The same parameters with and without A8: conv2's inputs differ by at most half a step, and
  // the logits move a little but not by nothing.
  Cnn3 a(8), f(32);
  for (int i = 0; i < f.m.nparams; i++) {
    ist_param *p = &f.m.params[i], *q = ist_model_find(&a.m, p->name);
    ASSERT_NE(q, nullptr);
    memcpy(q->data, p->data, sizeof(float) * (size_t)p->numel);
  }
  a.m.forward(&a.m, 4, 1);
  f.m.forward(&f.m, 4, 1);
  const ist_conv_layer *qa = a.m.convs[2], *qf = f.m.convs[2];
  const int64_t n = 4LL * qa->shape.ci * qa->shape.h * qa->shape.w;
  const float hi = ist_model_find(&a.m, "conv3.act_range")->data[1];
  double worst = 0, logit_diff = 0;
  for (int64_t i = 0; i < n; i++) worst = std::max(worst, (double)std::fabs(qa->x[i] - qf->x[i]));
  for (int i = 0; i < 4 * 10; i++) logit_diff = std::max(logit_diff, (double)std::fabs(a.m.logits[i] - f.m.logits[i]));
  // conv3's inputs also carry conv2's quantization, so allow a few steps.
  EXPECT_LE(worst, 8 * hi / 255.0);
  EXPECT_GT(worst, 0.0);
  EXPECT_GT(logit_diff, 0.0);
  EXPECT_LT(logit_diff, 0.1);
}

TEST(ActQuant, EvalUsesTheRunningRangeAndClips) {
  Cnn3 a(8);
  a.m.forward(&a.m, 4, 1);
  ist_param *r = ist_model_find(&a.m, "fc.act_range");
  ASSERT_NE(r, nullptr);
  r->data[1] *= 0.5f;  // a running range narrower than this batch
  const float hi = r->data[1];
  a.m.forward(&a.m, 4, 0);
  EXPECT_EQ(r->data[1], hi) << "eval leaves the running range alone";
  // cnn3's classifier input is the pooled map: every value ≤ the clipped range.
  ist_param *r2 = ist_model_find(&a.m, "conv2.act_range");
  const ist_conv_layer *conv2 = a.m.convs[1];
  const int64_t n = 4LL * conv2->shape.ci * conv2->shape.h * conv2->shape.w;
  for (int64_t i = 0; i < n; i++) ASSERT_LE(conv2->x[i], r2->data[1] + 1e-6f);
}

TEST(ActQuant, ThirtyTwoBitsAddsNothing) {
  Cnn3 f(32);
  EXPECT_EQ(ist_model_find(&f.m, "conv2.act_range"), nullptr);
  EXPECT_EQ(ist_model_find(&f.m, "conv1.act_range"), nullptr) << "the first conv reads the image";
  Cnn3 a(8);
  EXPECT_EQ(ist_model_find(&a.m, "conv1.act_range"), nullptr) << "the first conv reads the image";
  EXPECT_NE(ist_model_find(&a.m, "conv3.act_range"), nullptr);
  EXPECT_NE(ist_model_find(&a.m, "fc.act_range"), nullptr);
}

TEST(ActQuant, CompactNetworksQuantizeSeAndClassifierInputs) {
  ist_model_config cfg{};
  cfg.act_bits = 8;
  ist_model m;
  ASSERT_EQ(ist_model_create("mobilenetv3-small-cifar", ist_backend_cpu(), 1, &cfg, &m), IST_OK) << ist_last_error();
  for (const char *name : {"features.1.block.1.fc1.act_range", "features.1.block.1.fc2.act_range",
                           "features.1.block.2.0.act_range", "classifier.0.act_range", "classifier.3.act_range"})
    EXPECT_NE(ist_model_find(&m, name), nullptr) << name;
  ist_model_destroy(&m);
}

TEST(ActQuant, DenseNetRefusesIt) {
  ist_model_config cfg{};
  cfg.act_bits = 8;
  ist_model m;
  ASSERT_NE(ist_model_create("densenet121-cifar", ist_backend_cpu(), 1, &cfg, &m), IST_OK);
  EXPECT_NE(std::string(ist_last_error()).find("--act-bits"), std::string::npos) << ist_last_error();
}

TEST(ActQuant, CheckpointsKeepTheRangesAndRefuseAModelWithoutThem) {
  const std::string path = testing::TempDir() + "a8_cnn3.safetensors";
  float hi;
  {
    Cnn3 a(8);
    a.m.forward(&a.m, 4, 1);
    hi = ist_model_find(&a.m, "conv2.act_range")->data[1];
    ASSERT_EQ(ist_model_save(&a.m, path.c_str(), "test"), IST_OK);
  }
  Cnn3 b(8);
  ASSERT_EQ(ist_model_load(&b.m, path.c_str()), IST_OK) << ist_last_error();
  EXPECT_EQ(ist_model_find(&b.m, "conv2.act_range")->data[1], hi);
  Cnn3 f(32);
  ASSERT_NE(ist_model_load(&f.m, path.c_str()), IST_OK);
  const std::string err = ist_last_error();
  EXPECT_NE(err.find("--act-bits"), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
}

TEST(ActQuant, BadFlagValuesAndAnA8CheckpointWithoutA8FailWithOneLine) {
  expect_one_line_error(run("report --act-bits 0"), "--act-bits: 0 is not 1..32");
  expect_one_line_error(run("report --act-bits 33"), "--act-bits: 33 is not 1..32");
  const std::string path = testing::TempDir() + "a8_cnn3_cli.safetensors";
  {
    Cnn3 a(8);
    ASSERT_EQ(ist_model_save(&a.m, path.c_str(), "test"), IST_OK);
  }
  expect_one_line_error(run("export --checkpoint " + path + " --to " + testing::TempDir() + "x.safetensors"),
                        "pass --act-bits");
  Result ok = run("export --act-bits 8 --checkpoint " + path + " --to " + testing::TempDir() + "x.safetensors");
  EXPECT_EQ(ok.code, 0) << ok.out;
}

TEST(ActQuant, ReportPrintsTheActivationMemory) {
  Result r = run("report --model cnn3 --setting 2-16-4-4-4 --act-bits 8");
  ASSERT_EQ(r.code, 0) << r.out;
  // cnn3's largest activation: conv1's output, 32 × 14 × 14 = 6272 values.
  EXPECT_NE(r.out.find("6272 values, 25088 bytes at fp32, 6272 bytes at 8 bits"), std::string::npos) << r.out;
}

}  // namespace
