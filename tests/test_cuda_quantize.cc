// The CUDA quantizer (kernels/cuda/quantize.cu) chooses the CPU's clip bit for bit (both compute the
// candidate errors in the one order of kernels/quantize_grid.h), so a checkpoint trained on a GPU
// evaluates the same on the CPU: the device scale equals the CPU's returned scale exactly and the
// outputs are identical (tolerance 0).
#include <cmath>
#include <cstring>

#include "tests/cuda_test_util.h"
#include "tests/test_util.h"

extern "C" {
#include "kernels/cuda/cuda_ops.h"
}

enum Kind { NORMAL, OUTLIERS, ON_GRID, ALL_EQUAL, ZEROS, KINDS };
static const char *kKindName[] = {"normal", "huge outliers", "already on a grid", "all equal", "zeros"};

static std::vector<float> tensor(Kind kind, size_t n, int bits, uint64_t seed) {
  std::vector<float> x = randn(n, seed, 0.3f);
  switch (kind) {
  case OUTLIERS:
    for (size_t i = 0; i < n; i += 97) x[i] *= 1000.0f;
    break;
  case ON_GRID: { /* a quantized tensor: the max-abs clip reproduces it, error 0 */
    std::vector<float> q(n);
    ist_cpu_quantize_forward((int64_t)n, bits, x.data(), q.data());
    x = q;
    break;
  }
  case ALL_EQUAL:
    for (auto &v : x) v = -0.37f;
    break;
  case ZEROS:
    for (auto &v : x) v = 0.0f;
    break;
  default:
    break;
  }
  return x;
}

static uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// Runs both quantizers on x; expects the same scale (bit pattern) and the same outputs.
static void expect_same_quantization(const std::vector<float> &x, int bits, const std::string &what) {
  const int64_t n = (int64_t)x.size();
  std::vector<float> y(n);
  ist_dev_buf<float> dx(x), dy(std::vector<float>(n, NAN)), dscale(std::vector<float>{NAN});
  ist_cuda_quantize_forward(n, bits, dx, dy, dscale);
  const float cpu_scale = ist_cpu_quantize_forward(n, bits, x.data(), y.data());
  const float gpu_scale = dscale.download()[0];
  EXPECT_EQ(bits_of(gpu_scale), bits_of(cpu_scale)) << what << ": scale " << gpu_scale << " vs CPU " << cpu_scale;
  EXPECT_TRUE(ist_expect_close(dy.download(), y, 0, 0, "quantized values")) << what;
}

TEST(CudaQuantize, ChoosesTheCpuClipBitForBitOnManyTensors) {
  IST_REQUIRE_CUDA();
  const size_t sizes[] = {1, 3, 8, 255, 256, 257, 1023, 5000};
  int seed = 0;
  for (int kind = 0; kind < KINDS; kind++)
    for (size_t n : sizes) {
      const int bits = 2 + seed % 7; /* 2..8 across the cases */
      seed++;
      expect_same_quantization(tensor((Kind)kind, n, bits, 200 + seed), bits,
                               std::string(kKindName[kind]) + ", n=" + std::to_string(n) + ", " +
                                   std::to_string(bits) + " bits");
    }
  EXPECT_EQ(ist_cuda_error(), nullptr);
}

TEST(CudaQuantize, ChoosesTheCpuClipForEveryBitWidthOfOneTensor) {
  IST_REQUIRE_CUDA();
  for (int bits = 2; bits <= 8; bits++)
    expect_same_quantization(tensor(NORMAL, 777, bits, 300), bits, std::to_string(bits) + " bits, n=777");
  EXPECT_EQ(ist_cuda_error(), nullptr);
}

TEST(CudaQuantize, OneBitIsSignTimesMeanAbsAndThirtyTwoBitsIsIdentityWithScaleOne) {
  IST_REQUIRE_CUDA();
  for (size_t n : {1, 300, 2049}) {
    expect_same_quantization(tensor(NORMAL, n, 1, 400 + n), 1, "1 bit, n=" + std::to_string(n));
    expect_same_quantization(tensor(NORMAL, n, 32, 500 + n), 32, "32 bits, n=" + std::to_string(n));
  }
  EXPECT_EQ(ist_cuda_error(), nullptr);
}

TEST(CudaQuantize, BackwardPassesTheGradientInsideTheDeviceScaleAsTheCpu) {
  IST_REQUIRE_CUDA();
  const int64_t n = 1000;
  for (int bits : {1, 3, 8, 32}) {
    std::vector<float> x = tensor(OUTLIERS, n, bits, 600), dy = randn(n, 601), dx = randn(n, 602), y(n);
    ist_dev_buf<float> d_x(x), d_y(std::vector<float>(n, NAN)), d_scale(std::vector<float>{NAN}), d_dy(dy),
        d_dx(dx);
    ist_cuda_quantize_forward(n, bits, d_x, d_y, d_scale);
    ist_cuda_quantize_backward(n, bits, d_scale, d_x, d_dy, d_dx);
    const float scale = ist_cpu_quantize_forward(n, bits, x.data(), y.data());
    ist_cpu_quantize_backward(n, bits, scale, x.data(), dy.data(), dx.data());
    EXPECT_TRUE(ist_expect_close(d_dx.download(), dx, 0, 0, "dx (accumulated)")) << bits << " bits";
  }
  EXPECT_EQ(ist_cuda_error(), nullptr);
}
