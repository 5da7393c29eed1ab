// The CUDA elementwise ops (kernels/cuda/elementwise.cu) against the CPU reference: the same
// expressions, so every output is bit for bit the CPU's (tolerance 0).
#include "tests/cuda_test_util.h"
#include "tests/test_util.h"

extern "C" {
#include "kernels/cuda/cuda_ops.h"
}

// Random values with some exactly at the activation's kinks (0, 6) and beyond the cap.
static std::vector<float> kinked(size_t n, uint64_t seed) {
  std::vector<float> v = randn(n, seed, 4.0f);
  for (size_t i = 0; i < n; i += 7) v[i] = (i / 7) % 3 == 0 ? 0.0f : (i / 7) % 3 == 1 ? 6.0f : -0.0f;
  return v;
}

TEST(CudaElementwise, CopyChannelsCopiesAndAccumulatesAsTheCpuOnOddShapes) {
  IST_REQUIRE_CUDA();
  struct {
    int n, hw, c, src_c, src_off, dst_c, dst_off;
  } cases[] = {{3, 5, 2, 7, 3, 4, 1}, {2, 1, 5, 5, 0, 9, 4}, {1, 13, 3, 3, 0, 3, 0}};
  for (auto k : cases)
    for (int acc = 0; acc < 2; acc++) {
      std::vector<float> src = randn((size_t)k.n * k.src_c * k.hw, 21), dst = randn((size_t)k.n * k.dst_c * k.hw, 22);
      ist_dev_buf<float> ds(src), dd(dst);
      ist_cuda_copy_channels(k.n, k.hw, k.c, ds, k.src_c, k.src_off, dd, k.dst_c, k.dst_off, acc);
      ist_cpu_copy_channels(k.n, k.hw, k.c, src.data(), k.src_c, k.src_off, dst.data(), k.dst_c, k.dst_off, acc);
      EXPECT_TRUE(ist_expect_close(dd.download(), dst, 0, 0, acc ? "accumulated" : "copied"))
          << "n=" << k.n << " hw=" << k.hw << " c=" << k.c;
    }
  EXPECT_EQ(ist_cuda_error(), nullptr);
}

TEST(CudaElementwise, AddAndScaleMatchTheCpuExactlyInPlaceToo) {
  IST_REQUIRE_CUDA();
  for (int64_t n : {1, 255, 1031}) {
    std::vector<float> a = randn(n, 31), b = randn(n, 32), y(n, NAN);
    ist_dev_buf<float> da(a), db(b), dy(y);
    ist_cuda_add(n, da, db, dy);
    ist_cpu_add(n, a.data(), b.data(), y.data());
    EXPECT_TRUE(ist_expect_close(dy.download(), y, 0, 0, "a + b")) << n;
    ist_cuda_add(n, da, db, da); /* y aliasing a */
    EXPECT_TRUE(ist_expect_close(da.download(), y, 0, 0, "a += b")) << n;
    ist_cuda_scale(n, 0.37f, db);
    ist_cpu_scale(n, 0.37f, b.data());
    EXPECT_TRUE(ist_expect_close(db.download(), b, 0, 0, "b *= 0.37")) << n;
  }
  EXPECT_EQ(ist_cuda_error(), nullptr);
}

TEST(CudaElementwise, ReluForwardAndBackwardMatchTheCpuExactlyOnOddSizes) {
  IST_REQUIRE_CUDA();
  for (int64_t n : {1, 33, 1000}) {
    std::vector<float> x = kinked(n, 41), dy = randn(n, 42), y(n), dx(n), poison(n, NAN);
    ist_dev_buf<float> dxin(x), ddy(dy), dyout(poison), ddx(poison);
    ist_cuda_relu_forward(n, dxin, dyout);
    ist_cpu_relu_forward(n, x.data(), y.data());
    EXPECT_TRUE(ist_expect_close(dyout.download(), y, 0, 0, "relu")) << n;
    ist_cuda_relu_backward(n, ddy, dyout, ddx);
    ist_cpu_relu_backward(n, dy.data(), y.data(), dx.data());
    EXPECT_TRUE(ist_expect_close(ddx.download(), dx, 0, 0, "relu backward")) << n;
  }
  EXPECT_EQ(ist_cuda_error(), nullptr);
}

TEST(CudaElementwise, Relu6ForwardAndBackwardMatchTheCpuExactlyAtBothKinks) {
  IST_REQUIRE_CUDA();
  for (int64_t n : {2, 77, 1000}) {
    std::vector<float> x = kinked(n, 51), dy = randn(n, 52), y(n), dx(n), poison(n, NAN);
    ist_dev_buf<float> dxin(x), ddy(dy), dyout(poison), ddx(poison);
    ist_cuda_relu6_forward(n, dxin, dyout);
    ist_cpu_relu6_forward(n, x.data(), y.data());
    EXPECT_TRUE(ist_expect_close(dyout.download(), y, 0, 0, "relu6")) << n;
    ist_cuda_relu6_backward(n, ddy, dyout, ddx);
    ist_cpu_relu6_backward(n, dy.data(), y.data(), dx.data());
    EXPECT_TRUE(ist_expect_close(ddx.download(), dx, 0, 0, "relu6 backward")) << n;
  }
  EXPECT_EQ(ist_cuda_error(), nullptr);
}
