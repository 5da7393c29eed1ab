// The CUDA twins of the compact networks' ops (kernels/cuda/activations.cu) against the CPU
// reference: the same inputs give the same outputs (element-wise ops within 1e-6 relative, the
// dropout masks and the quantizer's grid exactly, the SE scale's sums within 1e-5).
#include <cuda_runtime.h>

#include <limits>

#include "test_util.h"

#include "kernels/cuda/activations.h"
#include "kernels/cuda/cuda_common.h"

#include "cuda_test_util.h"

namespace {

// A device copy of a host vector (NaN-filled when only a size is given), freed with the object.
struct Dev {
  float *p = nullptr;
  size_t n;
  explicit Dev(const std::vector<float> &h) : n(h.size()) {
    EXPECT_EQ(cudaMalloc(&p, n * sizeof(float)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(p, h.data(), n * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  }
  explicit Dev(size_t k) : Dev(std::vector<float>(k, std::numeric_limits<float>::quiet_NaN())) {}
  Dev(const Dev &) = delete;
  ~Dev() { cudaFree(p); }
  std::vector<float> get() const {
    std::vector<float> h(n);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(h.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
  }
};

void expect_near_all(const std::vector<float> &got, const std::vector<float> &want, double rel, const char *what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); i++)
    ASSERT_NEAR(got[i], want[i], rel * (1 + std::fabs(want[i]))) << what << " element " << i;
}

void expect_no_failure(const char *what) {
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess) << what;
  const char *e = ist_cuda_error();
  EXPECT_EQ(e, nullptr) << what << ": " << (e ? e : "");
}

using CpuOp = void (*)(int64_t, const float *, float *);
using CpuGrad = void (*)(int64_t, const float *, const float *, float *);

void expect_unary_matches(CpuOp cf, CpuGrad cb, CpuOp gf, CpuGrad gb, bool grad_from_output, const char *what) {
  const int64_t n = 3000;  // more than one block's worth
  auto x = randn(n, 61, 3.0f), dy = randn(n, 62);
  std::vector<float> y(n), dx(n);
  cf(n, x.data(), y.data());
  cb(n, dy.data(), grad_from_output ? y.data() : x.data(), dx.data());
  Dev gx(x), gdy(dy), gy(n), gdx(n);
  gf(n, gx.p, gy.p);
  gb(n, gdy.p, grad_from_output ? gy.p : gx.p, gdx.p);
  expect_no_failure(what);
  expect_near_all(gy.get(), y, 1e-6, what);
  expect_near_all(gdx.get(), dx, 1e-6, what);
}

TEST(CudaActivations, HardswishMatchesCpu) {
  IST_REQUIRE_CUDA();
  expect_unary_matches(ist_cpu_hardswish_forward, ist_cpu_hardswish_backward, ist_cuda_hardswish_forward,
                       ist_cuda_hardswish_backward, false, "hardswish");
}

TEST(CudaActivations, HardsigmoidMatchesCpu) {
  IST_REQUIRE_CUDA();
  expect_unary_matches(ist_cpu_hardsigmoid_forward, ist_cpu_hardsigmoid_backward, ist_cuda_hardsigmoid_forward,
                       ist_cuda_hardsigmoid_backward, false, "hardsigmoid");
}

TEST(CudaActivations, SiluMatchesCpu) {
  IST_REQUIRE_CUDA();
  expect_unary_matches(ist_cpu_silu_forward, ist_cpu_silu_backward, ist_cuda_silu_forward, ist_cuda_silu_backward,
                       false, "silu");
}

TEST(CudaActivations, SigmoidMatchesCpu) {
  IST_REQUIRE_CUDA();
  expect_unary_matches(ist_cpu_sigmoid_forward, ist_cpu_sigmoid_backward, ist_cuda_sigmoid_forward,
                       ist_cuda_sigmoid_backward, true, "sigmoid");
}

TEST(CudaActivations, ChannelScaleMatchesCpu) {
  IST_REQUIRE_CUDA();
  const int n = 3, c = 5, hw = 300;
  auto x = randn((size_t)n * c * hw, 71), s = randn((size_t)n * c, 72), dy = randn(x.size(), 73);
  std::vector<float> y(x.size()), dx(x.size()), ds(s.size());
  ist_cpu_channel_scale_forward(n, c, hw, x.data(), s.data(), y.data());
  ist_cpu_channel_scale_backward(n, c, hw, dy.data(), x.data(), s.data(), dx.data(), ds.data());
  Dev gx(x), gs(s), gdy(dy), gy(x.size()), gdx(x.size()), gds(s.size());
  ist_cuda_channel_scale_forward(n, c, hw, gx.p, gs.p, gy.p);
  ist_cuda_channel_scale_backward(n, c, hw, gdy.p, gx.p, gs.p, gdx.p, gds.p);
  expect_no_failure("channel_scale");
  expect_near_all(gy.get(), y, 1e-6, "y");
  expect_near_all(gdx.get(), dx, 1e-6, "dx");
  expect_near_all(gds.get(), ds, 1e-5, "ds (float sums in another order)");
}

TEST(CudaActivations, ChannelBiasMatchesCpu) {
  IST_REQUIRE_CUDA();
  const int n = 4, c = 6, hw = 100;
  auto y0 = randn((size_t)n * c * hw, 74), b = randn(c, 75), dy = randn(y0.size(), 76), db0 = randn(c, 77);
  std::vector<float> y = y0, db = db0;
  ist_cpu_channel_bias_forward(n, c, hw, y.data(), b.data());
  ist_cpu_channel_bias_backward(n, c, hw, dy.data(), db.data());
  Dev gy(y0), gb(b), gdy(dy), gdb(db0);
  ist_cuda_channel_bias_forward(n, c, hw, gy.p, gb.p);
  ist_cuda_channel_bias_backward(n, c, hw, gdy.p, gdb.p);
  expect_no_failure("channel_bias");
  expect_near_all(gy.get(), y, 1e-6, "y");
  expect_near_all(gdb.get(), db, 1e-5, "db accumulated");
}

TEST(CudaActivations, DropoutDrawsTheCpuMaskExactly) {
  IST_REQUIRE_CUDA();
  const int64_t n = 5000;
  auto x = randn(n, 81);
  for (int64_t group : {(int64_t)1, (int64_t)250}) {
    std::vector<float> y(n), dx(n);
    ist_cpu_dropout_forward(n, group, 0.3f, 1234, x.data(), y.data());
    ist_cpu_dropout_backward(n, group, 0.3f, 1234, x.data(), dx.data());
    Dev gx(x), gy(n), gdx(n);
    ist_cuda_dropout_forward(n, group, 0.3f, 1234, gx.p, gy.p);
    ist_cuda_dropout_backward(n, group, 0.3f, 1234, gx.p, gdx.p);
    expect_no_failure("dropout");
    EXPECT_EQ(gy.get(), y) << "group " << group;
    EXPECT_EQ(gdx.get(), dx) << "group " << group;
  }
}

TEST(CudaActivations, ActQuantizeMatchesCpuInTrainingAndEval) {
  IST_REQUIRE_CUDA();
  const int64_t n = 4000;
  auto x = randn(n, 91, 2.0f), dy = randn(n, 92);
  for (int training : {1, 0}) {
    std::vector<float> y(n), dx(n), run = {-0.5f, 1.5f}, used(2);
    Dev gx(x), gdy(dy), gy(n), gdx(n), grun(run), gused(2);
    ist_cpu_act_quantize_forward(n, 8, x.data(), y.data(), run.data(), used.data(), 0.1f, training);
    ist_cpu_act_quantize_backward(n, 8, used.data(), x.data(), dy.data(), dx.data());
    ist_cuda_act_quantize_forward(n, 8, gx.p, gy.p, grun.p, gused.p, 0.1f, training);
    ist_cuda_act_quantize_backward(n, 8, gused.p, gx.p, gdy.p, gdx.p);
    expect_no_failure("act_quantize");
    EXPECT_EQ(gused.get(), used) << "training " << training;
    expect_near_all(grun.get(), run, 1e-7, "running range");
    expect_near_all(gy.get(), y, 1e-6, "y");
    EXPECT_EQ(gdx.get(), dx) << "training " << training;
  }
}

}  // namespace
