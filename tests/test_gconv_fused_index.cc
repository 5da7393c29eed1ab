// The fused convolution's index arithmetic (kernels/cuda/gconv_fused_index.h), run on the CPU:
// the three implicit GEMMs it describes, evaluated element by element through it, equal the
// direct reference convolution on every small shape (k 1–5, stride 1–3, padding 0–2, odd sizes).
#include "test_util.h"

#include "kernels/cuda/gconv_fused_index.h"

namespace {

// Every shape with n ≤ 2, ci, co ≤ 3, h, w ≤ 6, k ∈ {1, 2, 3, 5}, stride ≤ 3, pad ≤ 2 that is
// a valid convolution.
std::vector<ist_conv_shape> small_shapes() {
  std::vector<ist_conv_shape> out;
  for (int n : {1, 2})
    for (int ci : {1, 3})
      for (int co : {1, 2})
        for (int h = 1; h <= 6; h++)
          for (int w : {1, 4, 5})
            for (int k : {1, 2, 3, 5})
              for (int stride = 1; stride <= 3; stride++)
                for (int pad = 0; pad <= 2; pad++) {
                  ist_conv_shape s = {n, ci, h, w, co, k, stride, pad, 0, 0, 1};
                  if (ist_conv_shape_init(&s)) out.push_back(s);
                }
  return out;
}

std::string name(const ist_conv_shape &s) {
  return std::to_string(s.n) + "x" + std::to_string(s.ci) + "x" + std::to_string(s.h) + "x" + std::to_string(s.w) +
         " -> " + std::to_string(s.co) + " k" + std::to_string(s.k) + " s" + std::to_string(s.stride) + " p" +
         std::to_string(s.pad);
}

// Results must equal the reference up to summation order: these sums are in double, the reference
// backward's in float (≤ 75 products of N(0,1) values). Errors are judged against the largest
// reference value, since an entry that cancels to near zero keeps no relative precision.
constexpr double kTol = 1e-4;
double largest_abs(const std::vector<float> &v) {
  double m = 0;
  for (float x : v) m = std::max(m, (double)std::fabs(x));
  return m;
}

TEST(GconvFusedIndex, PixelDecompositionEnumeratesImagesRowsColumnsInOrder) {
  for (int rows = 1; rows <= 5; rows++)
    for (int cols = 1; cols <= 5; cols++) {
      int m = 0;
      for (int b = 0; b < 3; b++)
        for (int r = 0; r < rows; r++)
          for (int q = 0; q < cols; q++, m++) {
            const ist_fused_pix p = ist_fused_pixel(m, rows, cols);
            ASSERT_EQ(p.b, b);
            ASSERT_EQ(p.r, r);
            ASSERT_EQ(p.q, q);
          }
    }
}

TEST(GconvFusedIndex, ForwardImplicitGemmEqualsDirectConvolutionOnEverySmallShape) {
  for (const ist_conv_shape &s : small_shapes()) {
    const auto x = randn((size_t)s.n * s.ci * s.h * s.w, 11);
    const auto w = randn((size_t)s.co * ist_fused_k(&s), 12);
    std::vector<float> ref((size_t)s.n * s.co * s.ho * s.wo), got(ref.size(), NAN);
    ist_cpu_conv2d_forward_ref(&s, x.data(), w.data(), nullptr, ref.data());
    for (int o = 0; o < s.co; o++)
      for (int m = 0; m < ist_fused_out_pixels(&s); m++) {
        double acc = 0;
        for (int kk = 0; kk < ist_fused_k(&s); kk++) {
          const int64_t xi = ist_fused_x_offset(&s, kk, m);
          if (xi >= 0) acc += (double)w[(size_t)o * ist_fused_k(&s) + kk] * x[xi];
        }
        got[ist_fused_y_offset(&s, m, o)] = (float)acc;
      }
    ASSERT_LT(max_rel_diff(got.data(), ref.data(), ref.size(), largest_abs(ref)), kTol) << name(s);
  }
}

TEST(GconvFusedIndex, BackwardDataTransposedGemmEqualsReferenceInputGradient) {
  for (const ist_conv_shape &s : small_shapes()) {
    const auto dy = randn((size_t)s.n * s.co * s.ho * s.wo, 13);
    const auto w = randn((size_t)s.co * ist_fused_k(&s), 14);
    const auto x = randn((size_t)s.n * s.ci * s.h * s.w, 15);
    std::vector<float> ref(x.size()), dw(w.size()), got(x.size(), NAN);
    ist_cpu_conv2d_backward_ref(&s, dy.data(), x.data(), w.data(), ref.data(), dw.data(), nullptr);
    const int k2 = s.k * s.k;
    for (int c = 0; c < s.ci; c++)
      for (int mi = 0; mi < ist_fused_in_pixels(&s); mi++) {
        double acc = 0;
        for (int o = 0; o < s.co; o++)
          for (int t = 0; t < k2; t++) {
            const int64_t di = ist_fused_dy_offset(&s, o, t, mi);
            if (di >= 0) acc += (double)w[(size_t)o * ist_fused_k(&s) + c * k2 + t] * dy[di];
          }
        got[ist_fused_dx_offset(&s, mi, c)] = (float)acc;
      }
    ASSERT_LT(max_rel_diff(got.data(), ref.data(), ref.size(), largest_abs(ref)), kTol) << name(s);
  }
}

TEST(GconvFusedIndex, WeightGradientGemmEqualsReferenceWeightGradient) {
  for (const ist_conv_shape &s : small_shapes()) {
    const auto dy = randn((size_t)s.n * s.co * s.ho * s.wo, 16);
    const auto w = randn((size_t)s.co * ist_fused_k(&s), 17);
    const auto x = randn((size_t)s.n * s.ci * s.h * s.w, 18);
    std::vector<float> dx(x.size()), ref(w.size(), 0.0f), got(w.size(), NAN);
    ist_cpu_conv2d_backward_ref(&s, dy.data(), x.data(), w.data(), dx.data(), ref.data(), nullptr);
    for (int o = 0; o < s.co; o++)
      for (int kk = 0; kk < ist_fused_k(&s); kk++) {
        double acc = 0;
        for (int m = 0; m < ist_fused_out_pixels(&s); m++) {
          const int64_t xi = ist_fused_x_offset(&s, kk, m);
          if (xi >= 0) acc += (double)dy[ist_fused_y_offset(&s, m, o)] * x[xi];
        }
        got[(size_t)o * ist_fused_k(&s) + kk] = (float)acc;
      }
    ASSERT_LT(max_rel_diff(got.data(), ref.data(), ref.size(), largest_abs(ref)), kTol) << name(s);
  }
}

TEST(GconvFusedIndex, EveryBackwardTapMatchesExactlyOneForwardTap) {
  // The transposed map is the forward map's inverse: (o, t, input pixel) → output pixel exactly
  // when the forward reads that input pixel through tap t at that output pixel.
  for (const ist_conv_shape &s : small_shapes()) {
    if (s.co != 1) continue;
    const int k2 = s.k * s.k;
    std::vector<int> hits((size_t)s.n * s.ci * s.h * s.w * k2, 0);
    for (int m = 0; m < ist_fused_out_pixels(&s); m++)
      for (int kk = 0; kk < ist_fused_k(&s); kk++) {
        const int64_t xi = ist_fused_x_offset(&s, kk, m);
        if (xi < 0) continue;
        const int c = kk / k2, t = kk % k2;
        const int64_t plane = (int64_t)s.h * s.w;
        const int mi = (int)((xi / (plane * s.ci)) * plane + xi % plane);
        ASSERT_EQ(ist_fused_dx_offset(&s, mi, c), xi) << name(s);
        ASSERT_EQ(ist_fused_dy_offset(&s, 0, t, mi), ist_fused_y_offset(&s, m, 0)) << name(s);
        hits[(size_t)xi * k2 + t]++;
      }
    for (int mi = 0; mi < ist_fused_in_pixels(&s); mi++)
      for (int t = 0; t < k2; t++) {
        const int64_t xi = ist_fused_dx_offset(&s, mi, 0);
        ASSERT_EQ(hits[(size_t)xi * k2 + t], ist_fused_dy_offset(&s, 0, t, mi) >= 0 ? 1 : 0) << name(s);
      }
  }
}

}  // namespace
