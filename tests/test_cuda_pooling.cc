// The CUDA pooling ops (kernels/cuda/pooling.cu) against the CPU reference: the same sums in the
// same order, so outputs, indices and gradients are bit for bit the CPU's (tolerance 0).
#include <cmath>

#include "tests/cuda_test_util.h"
#include "tests/test_util.h"

extern "C" {
#include "kernels/cuda/cuda_ops.h"
}

TEST(CudaPooling, AdaptiveAvgPoolForwardAndBackwardMatchTheCpuExactly) {
  IST_REQUIRE_CUDA();
  struct {
    int n, c, h, w, oh, ow;
  } cases[] = {{2, 3, 7, 5, 3, 2}, {1, 2, 8, 8, 3, 3}, {2, 1, 5, 9, 5, 4}, {1, 3, 4, 4, 1, 1}, {1, 2, 3, 2, 5, 4}};
  for (auto k : cases) {
    const size_t nx = (size_t)k.n * k.c * k.h * k.w, ny = (size_t)k.n * k.c * k.oh * k.ow;
    std::vector<float> x = randn(nx, 61), dy = randn(ny, 62), y(ny), dx(nx);
    ist_dev_buf<float> dxin(x), ddy(dy), dyout(std::vector<float>(ny, NAN)), ddx(std::vector<float>(nx, NAN));
    ist_cuda_avgpool_forward(k.n, k.c, k.h, k.w, k.oh, k.ow, dxin, dyout);
    ist_cpu_avgpool_forward(k.n, k.c, k.h, k.w, k.oh, k.ow, x.data(), y.data());
    EXPECT_TRUE(ist_expect_close(dyout.download(), y, 0, 0, "avgpool"))
        << k.h << "x" << k.w << " -> " << k.oh << "x" << k.ow;
    ist_cuda_avgpool_backward(k.n, k.c, k.h, k.w, k.oh, k.ow, ddy, ddx);
    ist_cpu_avgpool_backward(k.n, k.c, k.h, k.w, k.oh, k.ow, dy.data(), dx.data());
    EXPECT_TRUE(ist_expect_close(ddx.download(), dx, 0, 0, "avgpool backward"))
        << k.h << "x" << k.w << " -> " << k.oh << "x" << k.ow;
  }
  EXPECT_EQ(ist_cuda_error(), nullptr);
}

// Values on a coarse grid, so windows hold ties (the first in scan order wins, as on the CPU).
static std::vector<float> with_ties(size_t n, uint64_t seed) {
  std::vector<float> v = randn(n, seed, 2.0f);
  for (auto &x : v) x = std::round(x);
  return v;
}

TEST(CudaPooling, MaxPoolMatchesTheCpuExactlyWithTiesPaddingAndStrides) {
  IST_REQUIRE_CUDA();
  struct {
    int n, c, h, w, k, stride, pad;
  } cases[] = {{2, 3, 7, 6, 3, 2, 1}, {1, 2, 5, 5, 2, 2, 0}, {1, 2, 9, 7, 3, 1, 1}, {2, 1, 6, 5, 5, 2, 2},
               {1, 3, 4, 4, 1, 1, 0}, {1, 1, 8, 8, 7, 3, 3}};
  for (auto k : cases) {
    const int oh = ist_pool_out(k.h, k.k, k.stride, k.pad), ow = ist_pool_out(k.w, k.k, k.stride, k.pad);
    const size_t nx = (size_t)k.n * k.c * k.h * k.w, ny = (size_t)k.n * k.c * oh * ow;
    std::vector<float> x = with_ties(nx, 71), dy = randn(ny, 72), y(ny), dx(nx);
    std::vector<int32_t> idx(ny);
    ist_dev_buf<float> dxin(x), ddy(dy), dyout(std::vector<float>(ny, NAN)), ddx(std::vector<float>(nx, NAN));
    ist_dev_buf<int32_t> didx(std::vector<int32_t>(ny, -7));
    ist_cuda_maxpool_forward(k.n, k.c, k.h, k.w, k.k, k.stride, k.pad, dxin, dyout, didx);
    ist_cpu_maxpool_forward(k.n, k.c, k.h, k.w, k.k, k.stride, k.pad, x.data(), y.data(), idx.data());
    EXPECT_TRUE(ist_expect_close(dyout.download(), y, 0, 0, "maxpool")) << "k=" << k.k << " stride=" << k.stride;
    EXPECT_EQ(didx.download(), idx) << "winner offsets, k=" << k.k << " stride=" << k.stride << " pad=" << k.pad;
    ist_cuda_maxpool_backward(k.n, k.c, k.h, k.w, oh, ow, ddy, didx, ddx);
    ist_cpu_maxpool_backward(k.n, k.c, k.h, k.w, oh, ow, dy.data(), idx.data(), dx.data());
    EXPECT_TRUE(ist_expect_close(ddx.download(), dx, 0, 0, "maxpool backward")) << "k=" << k.k;
  }
  EXPECT_EQ(ist_cuda_error(), nullptr);
}
