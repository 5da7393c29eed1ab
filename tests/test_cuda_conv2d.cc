// The CUDA convolution (kernels/cuda/conv2d.cu) against the CPU backend: dense, grouped and
// depthwise, forward and backward, on odd shapes (k = 1, 3, 5, 7; stride 1, 2; padding 0–3),
// with and without bias, with dx NULL, gradients accumulating into non-zero dw and dbias; our own
// kernels always, cuDNN as well on a GPU. Plus an exhaustive CPU check of the index helpers.
#include <string>

#include "cuda_conv_test_util.h"
#include "cuda_test_util.h"

#include "kernels/cuda/conv2d.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/conv_index.h"

namespace {

struct Case {
  int n, ci, h, w, co, k, stride, pad, groups;
  bool bias, dx;
};

void PrintTo(const Case &c, std::ostream *os) {
  *os << c.n << "x" << c.ci << "x" << c.h << "x" << c.w << " -> " << c.co << " k" << c.k << " s" << c.stride << " p"
      << c.pad << " g" << c.groups << (c.bias ? " bias" : "") << (c.dx ? "" : " no-dx");
}

// The implementations to check here: ours always, cuDNN where the build runs on a GPU.
std::vector<ist_conv_impl> impls() {
  std::vector<ist_conv_impl> v = {IST_CONV_OWN};
  ist_cuda_set_conv_impl(IST_CONV_CUDNN);
  if (ist_cuda_conv_impl() == IST_CONV_CUDNN) v.push_back(IST_CONV_CUDNN);
  return v;
}
const char *impl_name(ist_conv_impl i) { return i == IST_CONV_CUDNN ? "cuDNN" : "own kernels"; }

class CudaConv2d : public ::testing::TestWithParam<Case> {};

TEST_P(CudaConv2d, ForwardAndBackwardMatchCpu) {
  IST_REQUIRE_CUDA();
  const Case c = GetParam();
  ist_conv_shape s = {c.n, c.ci, c.h, c.w, c.co, c.k, c.stride, c.pad, 0, 0, c.groups};
  ASSERT_TRUE(ist_conv_shape_init(&s));
  const size_t xn = (size_t)s.n * s.ci * s.h * s.w, wn = (size_t)ist_conv_weight_numel(&s),
               yn = (size_t)s.n * s.co * s.ho * s.wo;
  const auto x = randn(xn, 11), w = randn(wn, 12, 0.3f), bias = randn(s.co, 13), dy = randn(yn, 14);
  const auto dw0 = randn(wn, 15), db0 = randn(s.co, 16); // gradients accumulate into these

  const ist_backend *cpu = ist_backend_cpu();
  std::vector<float> cws(ist_conv_ws_floats(&s)), y(yn), dx(xn), dw = dw0, db = db0;
  cpu->conv2d_forward(&s, x.data(), w.data(), c.bias ? bias.data() : nullptr, y.data(), cws.data());
  cpu->conv2d_backward(&s, dy.data(), x.data(), w.data(), c.dx ? dx.data() : nullptr, dw.data(),
                       c.bias ? db.data() : nullptr, cws.data());

  for (ist_conv_impl impl : impls()) {
    ist_cuda_set_conv_impl(impl);
    SCOPED_TRACE(impl_name(impl));
    DevVec gx(x), gw(w), gbias(bias), gdy(dy), gy = DevVec::poisoned(yn), gdx = DevVec::poisoned(xn);
    DevVec gdw(dw0), gdb(db0), ws = DevVec::poisoned(ist_cuda_conv_ws_floats(&s));
    ist_cuda_conv2d_forward(&s, gx.p, gw.p, c.bias ? gbias.p : nullptr, gy.p, ws.p);
    ist_cuda_conv2d_backward(&s, gdy.p, gx.p, gw.p, c.dx ? gdx.p : nullptr, gdw.p, c.bias ? gdb.p : nullptr, ws.p);
    expect_no_cuda_failure("conv2d");
    expect_close(gy.get(), y, "y");
    if (c.dx) expect_close(gdx.get(), dx, "dx");
    expect_close(gdw.get(), dw, "dw accumulated");
    if (c.bias) expect_close(gdb.get(), db, "dbias accumulated");
    else expect_close(gdb.get(), db0, "dbias untouched without bias");
  }
  ist_cuda_set_conv_impl(IST_CONV_CUDNN); // back to the default
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CudaConv2d,
    ::testing::Values(Case{2, 3, 7, 9, 5, 1, 1, 0, 1, true, true},      // 1×1
                      Case{2, 4, 9, 7, 6, 3, 1, 1, 1, false, true},     // 3×3, same padding
                      Case{1, 3, 11, 10, 4, 5, 2, 2, 1, true, true},    // 5×5, stride 2
                      Case{1, 2, 9, 9, 3, 7, 1, 3, 1, true, false},     // 7×7, padding 3, no dx
                      Case{2, 3, 8, 7, 5, 3, 2, 0, 1, true, true},      // stride 2, no padding
                      Case{1, 2, 6, 6, 3, 3, 1, 2, 1, false, true},     // padding beyond the kernel's half
                      Case{2, 5, 6, 6, 70, 3, 2, 0, 1, true, true},     // co past one 64-wide tile
                      Case{1, 70, 5, 5, 8, 3, 1, 1, 1, false, true},    // K = 630, many K steps
                      Case{3, 2, 28, 28, 3, 3, 1, 1, 1, true, true},    // 2352 pixels: split backward-filter
                      Case{1, 6, 12, 11, 6, 3, 1, 1, 6, true, true},    // depthwise
                      Case{2, 8, 9, 8, 8, 3, 2, 1, 8, false, true},     // depthwise, stride 2
                      Case{1, 4, 9, 9, 4, 5, 1, 2, 4, true, false},     // depthwise 5×5, no dx
                      Case{2, 4, 7, 6, 6, 3, 1, 0, 2, true, true},      // 2 groups of 2 → 3
                      Case{1, 6, 8, 8, 12, 5, 2, 2, 3, false, true},    // 3 groups, stride 2
                      Case{2, 6, 7, 7, 3, 3, 1, 1, 3, true, true},      // 3 groups of 2 → 1 (direct)
                      Case{1, 3, 7, 7, 6, 3, 1, 1, 3, true, true}));    // channel multiplier 2

// The index helpers against naive loops over every (pixel, column) of small shapes: im2col reads the
// input the direct convolution reads, and col2im finds exactly the output that read each input.
TEST(ConvIndex, HelpersMatchNaiveLoopsExhaustively) {
  long checked = 0;
  for (int k : {1, 2, 3, 5})
    for (int stride : {1, 2, 3})
      for (int pad : {0, 1, 2, 3})
        for (int h : {1, 4, 7})
          for (int w : {3, 6})
            for (int groups : {1, 2}) {
              ist_conv_shape s = {2, 2 * groups, h, w, 2 * groups, k, stride, pad, 0, 0, groups};
              if (!ist_conv_shape_init(&s)) continue;
              const int cig = s.ci / groups, cog = s.co / groups;
              for (int grp = 0; grp < groups; grp++)
                for (int b = 0; b < s.n; b++)
                  for (int oy = 0; oy < s.ho; oy++)
                    for (int ox = 0; ox < s.wo; ox++)
                      for (int c = 0; c < cig; c++)
                        for (int ky = 0; ky < k; ky++)
                          for (int kx = 0; kx < k; kx++) {
                            const int m = (b * s.ho + oy) * s.wo + ox, kk = (c * k + ky) * k + kx;
                            const int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                            const bool in = iy >= 0 && iy < h && ix >= 0 && ix < w;
                            const int64_t want = in ? (((int64_t)b * s.ci + grp * cig + c) * h + iy) * w + ix : -1;
                            ASSERT_EQ(ist_conv_im2col_offset(&s, grp, m, kk), want) << m << " " << kk;
                            checked++;
                          }
              for (int grp = 0; grp < groups; grp++)
                for (int b = 0; b < s.n; b++)
                  for (int iy = 0; iy < h; iy++)
                    for (int ix = 0; ix < w; ix++)
                      for (int o = 0; o < cog; o++)
                        for (int ky = 0; ky < k; ky++)
                          for (int kx = 0; kx < k; kx++) {
                            int64_t want = -1;
                            for (int oy = 0; oy < s.ho; oy++)
                              for (int ox = 0; ox < s.wo; ox++)
                                if (oy * stride - pad + ky == iy && ox * stride - pad + kx == ix)
                                  want = (((int64_t)b * s.co + grp * cog + o) * s.ho + oy) * s.wo + ox;
                            const int m = (b * h + iy) * w + ix, kk = (o * k + ky) * k + kx;
                            ASSERT_EQ(ist_conv_col2im_offset(&s, grp, m, kk), want) << m << " " << kk;
                            checked++;
                          }
            }
  EXPECT_GT(checked, 100000);
}

TEST(ConvIndex, PixelAndTapDecompositionsRoundTrip) {
  for (int m = 0; m < 3 * 5 * 7; m++) {
    const ist_conv_pixel p = ist_conv_pixel_of(m, 5, 7);
    EXPECT_EQ((p.b * 5 + p.y) * 7 + p.x, m);
    EXPECT_TRUE(p.y < 5 && p.x < 7 && p.b < 3);
  }
  for (int kk = 0; kk < 4 * 9; kk++) {
    const ist_conv_tap t = ist_conv_tap_of(kk, 3);
    EXPECT_EQ((t.c * 3 + t.ky) * 3 + t.kx, kk);
  }
  EXPECT_EQ(ist_conv_out_coord(4, 1, 2, 1, 10), 2);  // 2·2 − 1 + 1 = 4
  EXPECT_EQ(ist_conv_out_coord(3, 1, 2, 1, 10), -1); // odd offset: no output at stride 2
  EXPECT_EQ(ist_conv_out_coord(0, 2, 1, 0, 10), -1); // before the first output
  EXPECT_EQ(ist_conv_out_coord(9, 0, 1, 0, 5), -1);  // beyond the last output
}

} // namespace
