// Every model's training step on the CUDA backend against the same step on the CPU backend: the
// same parameters (the initialization is computed on the host for either), the same batch, then
// the loss, the hits, every gradient, the BatchNorm running statistics and the parameters after
// one RAdam step. Runs on a GPU and under the CPU execution check (small batches and inputs; the
// big networks only on a GPU or when INSITU_EMU_ALL_MODELS is set, as emulation runs them slowly).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "models/model.h"
#include "tests/cuda_test_util.h"
#include "tests/test_util.h"
#include "train/optimizer.h"
#include "train/project.h"
#include "train/trainer.h"

namespace {

// Whole-tensor relative error ‖got − want‖ / ‖want‖: the GPU sums in other orders (and its convs
// may use TF32 tensor cores: 10-bit mantissas), so single elements of a gradient that nearly
// cancels can differ far more than the tensor does. 2e-2 is TF32's error over a few layers.
constexpr double kTensorRelTol = 2e-2;
// The loss is a mean over the batch: the same bound.
constexpr double kLossRelTol = 2e-2;

struct Case {
  const char *arch, *setting;
  int batch, size;  // input size (0: the architecture's)
  int classes;      // 0: the architecture's
  ist_conv_exec exec;
  bool slow;        // emulated only with INSITU_EMU_ALL_MODELS
};

std::string case_name(const ::testing::TestParamInfo<Case> &i) {
  std::string s = std::string(i.param.arch) + "_" + i.param.setting + "_" +
                  (i.param.exec == IST_EXEC_FACTORED ? "factored" : i.param.exec == IST_EXEC_MATERIALIZE ? "materialized" : "auto");
  for (char &c : s)
    if (!isalnum((unsigned char)c)) c = '_';
  return s;
}

double rel_err(const std::vector<float> &got, const float *want, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    const double d = (double)got[i] - want[i];
    num += d * d;
    den += (double)want[i] * want[i];
  }
  if (std::isnan(num)) return INFINITY;
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

struct Model {
  ist_model m;
  bool ok = false;
  Model(const Case &c, const ist_backend *be) {
    ist_model_config cfg = {};
    EXPECT_EQ(ist_setting_parse(c.setting, &cfg.global), IST_OK);
    cfg.exec = c.exec;
    cfg.in_h = cfg.in_w = c.size;
    cfg.classes = c.classes;
    ok = ist_model_create(c.arch, be, c.batch, &cfg, &m) == IST_OK;
    EXPECT_TRUE(ok) << be->name << ": " << ist_last_error();
    if (ok) {
      EXPECT_EQ(ist_model_init_params(&m, 17), IST_OK) << ist_last_error();
    }
  }
  ~Model() {
    if (ok) ist_model_destroy(&m);
  }
  // One training step's forward, loss and backward (with the orthogonality penalty's gradient).
  void step(const std::vector<float> &x, const std::vector<int32_t> &y) {
    ist_model_set_batch(&m, m.batch, x.data(), y.data());
    m.be->zero(m.scalars, IST_MODEL_SCALARS);
    ist_model_zero_grad(&m);
    m.forward(&m, m.batch, 1);
    m.be->cross_entropy(m.batch, m.classes, m.logits, m.labels, m.dlogits, m.loss_sum, m.hits);
    m.backward(&m, m.batch);
    ist_ortho_total(&m, 0.01f);
  }
  std::vector<float> block(const ist_arena &a) const {
    std::vector<float> h(a.used / sizeof(float));
    if (!h.empty()) m.be->download(h.data(), a.base, a.used);
    return h;
  }
};

class CudaModels : public ::testing::TestWithParam<Case> {};

TEST_P(CudaModels, TrainingStepMatchesCpu) {
  IST_REQUIRE_CUDA();
  const Case c = GetParam();
  if (c.slow && std::string(ist_test_cuda_mode()) == "emulated" && !getenv("INSITU_EMU_ALL_MODELS"))
    GTEST_SKIP() << c.arch << ": too slow emulated (set INSITU_EMU_ALL_MODELS=1 to run it)";
  Model cpu(c, ist_backend_cpu()), gpu(c, ist_backend_cuda());
  ASSERT_TRUE(cpu.ok && gpu.ok);
  ASSERT_EQ(cpu.m.params_arena.used, gpu.m.params_arena.used);
  ASSERT_EQ(cpu.m.grads_arena.used, gpu.m.grads_arena.used);
  EXPECT_EQ(cpu.block(cpu.m.params_arena), gpu.block(gpu.m.params_arena)) << "the initialization is the host's: identical";

  const size_t in = (size_t)c.batch * cpu.m.in_c * cpu.m.in_h * cpu.m.in_w;
  auto x = randn(in, 23);
  std::vector<int32_t> y(c.batch);
  for (int i = 0; i < c.batch; i++) y[i] = (i * 3 + 1) % cpu.m.classes;
  cpu.step(x, y);
  gpu.step(x, y);
  ASSERT_EQ(gpu.m.be->sync(), IST_OK) << ist_last_error();

  float sc[IST_MODEL_SCALARS], sg[IST_MODEL_SCALARS];
  cpu.m.be->download(sc, cpu.m.scalars, sizeof sc);
  gpu.m.be->download(sg, gpu.m.scalars, sizeof sg);
  EXPECT_NEAR(sg[0], sc[0], kLossRelTol * std::fabs(sc[0])) << "loss";
  EXPECT_NEAR(sg[1], sc[1], kLossRelTol * std::fabs(sc[1]) + 1e-6) << "orthogonality penalty";

  const auto gc = cpu.block(cpu.m.grads_arena), gg = gpu.block(gpu.m.grads_arena);
  for (int i = 0; i < cpu.m.nparams; i++) {
    const ist_param *p = &cpu.m.params[i];
    const size_t off = p->grad ? (size_t)(p->grad - (const float *)cpu.m.grads_arena.base)
                               : (size_t)(p->data - (const float *)cpu.m.params_arena.base);
    if (p->grad) {
      std::vector<float> got(gg.begin() + off, gg.begin() + off + p->numel);
      EXPECT_LE(rel_err(got, gc.data() + off, p->numel), kTensorRelTol) << "gradient of " << p->name;
    }
  }
  // The running statistics moved with the batch; the parameters after one RAdam step.
  ist_radam oc, og;
  ASSERT_EQ(ist_radam_create(&oc, &cpu.m, 0.01f, 1.0f, 5e-4f), IST_OK);
  ASSERT_EQ(ist_radam_create(&og, &gpu.m, 0.01f, 1.0f, 5e-4f), IST_OK) << ist_last_error();
  ist_radam_step(&oc, &cpu.m);
  ist_radam_step(&og, &gpu.m);
  ASSERT_EQ(gpu.m.be->sync(), IST_OK) << ist_last_error();
  const auto pc = cpu.block(cpu.m.params_arena), pg = gpu.block(gpu.m.params_arena);
  for (int i = 0; i < cpu.m.nparams; i++) {
    const ist_param *p = &cpu.m.params[i];
    const size_t off = (size_t)(p->data - (const float *)cpu.m.params_arena.base);
    std::vector<float> got(pg.begin() + off, pg.begin() + off + p->numel);
    EXPECT_LE(rel_err(got, pc.data() + off, p->numel), kTensorRelTol) << p->name << " after one step";
  }
  ist_radam_destroy(&oc);
  ist_radam_destroy(&og);
}

INSTANTIATE_TEST_SUITE_P(
    EveryModel, CudaModels,
    ::testing::Values(Case{"cnn3", "dense", 2, 0, 0, IST_EXEC_AUTO, false},
                      Case{"cnn3", "2-16-32-32-32", 2, 0, 0, IST_EXEC_MATERIALIZE, false},
                      Case{"cnn3", "2-16-32-32-32", 2, 0, 0, IST_EXEC_FACTORED, false},
                      Case{"cnn3", "2-16-4-4-4", 2, 0, 0, IST_EXEC_AUTO, false},
                      Case{"cnn3", "dsconv", 2, 0, 0, IST_EXEC_AUTO, false},
                      Case{"resnet18-cifar", "2-16-4-4-4", 2, 8, 10, IST_EXEC_AUTO, true},
                      Case{"mobilenetv2-cifar", "2-16-4-4-4", 2, 8, 10, IST_EXEC_AUTO, true},
                      Case{"densenet121-cifar", "2-16-4-4-4", 2, 8, 10, IST_EXEC_AUTO, true},
                      Case{"resnet18", "dense", 2, 32, 10, IST_EXEC_AUTO, true}),
    case_name);

// The ℓ2 projection runs its iterations on the backend (generate, sq_diff, RAdam): the same fit
// as on the CPU, up to the GPU's summation order.
TEST(CudaProjection, L2ProjectionMatchesCpu) {
  IST_REQUIRE_CUDA();
  const Case c{"cnn3", "2-8-4-4-4", 1, 0, 0, IST_EXEC_MATERIALIZE, false};
  const int kIters = 60;
  Model cpu(c, ist_backend_cpu()), gpu(c, ist_backend_cuda());
  ASSERT_TRUE(cpu.ok && gpu.ok);
  ist_conv_layer *lc = cpu.m.convs[1], *lg = gpu.m.convs[1];
  const int64_t wn = ist_conv_weight_numel(&lc->shape);
  auto w = randn((size_t)wn, 5, 0.05f);
  ist_dev_buf<float> dw(w);
  const float ec = ist_project_l2(cpu.m.be, lc, w.data(), kIters, 0.02f);
  const float eg = ist_project_l2(gpu.m.be, lg, dw, kIters, 0.02f);
  ASSERT_EQ(gpu.m.be->sync(), IST_OK) << ist_last_error();
  EXPECT_NEAR(eg, ec, 0.02 * ec) << "relative projection error after " << kIters << " iterations";
}

}  // namespace
