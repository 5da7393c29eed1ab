// The generator of SPEC §2 in every case, the quantizer, the orthogonality penalty, the SVD and
// RAdam: values against naive formulas, gradients against finite differences.
#include <set>

#include "test_util.h"

namespace {

struct GenCase {
  const char *name;
  ist_gen_shape g;
};

void PrintTo(const GenCase &c, std::ostream *os) { *os << c.name; }

ist_gen_shape make(int co, int ci, int k2, int bi, int bc, int l1, int l2) {
  return ist_gen_shape{co, ci, k2, bi, bc, l1, l2, l2 ? bc : co};
}

// W[o][c][t] = Σ_j V[o][j] Σ_i U_j[c][i] Wb_j[i][t], written out with the levels' special cases.
std::vector<float> naive_generate(const ist_gen_shape &g, const float *wb, const float *u, const float *v,
                                  const float *wc_free) {
  const int kk = g.ci * g.k2;
  std::vector<float> wc((size_t)g.nb * kk), w((size_t)g.co * kk);
  for (int j = 0; j < g.nb; j++)
    for (int c = 0; c < g.ci; c++)
      for (int t = 0; t < g.k2; t++) {
        double s = 0;
        if (g.level1)
          for (int i = 0; i < g.bi; i++) s += (double)u[(j * g.ci + c) * g.bi + i] * wb[(j * g.bi + i) * g.k2 + t];
        else
          s = wc_free[j * kk + c * g.k2 + t];
        wc[j * kk + c * g.k2 + t] = (float)s;
      }
  for (int o = 0; o < g.co; o++)
    for (int p = 0; p < kk; p++) {
      double s = 0;
      if (g.level2)
        for (int j = 0; j < g.bc; j++) s += (double)v[o * g.bc + j] * wc[j * kk + p];
      else
        s = wc[o * kk + p];
      w[o * kk + p] = (float)s;
    }
  return w;
}

class Generator : public ::testing::TestWithParam<GenCase> {};

TEST_P(Generator, ForwardMatchesNaiveAndBackwardMatchesFiniteDifferences) {
  const ist_gen_shape g = GetParam().g;
  const int64_t kk = (int64_t)g.ci * g.k2, wn = g.co * kk;
  auto wb = randn(std::max<int64_t>(ist_gen_wb_numel(&g), 1), 1), u = randn(std::max<int64_t>(ist_gen_u_numel(&g), 1), 2),
       v = randn(std::max<int64_t>(ist_gen_v_numel(&g), 1), 3), wcf = randn(ist_gen_wc_numel(&g), 4),
       r = randn(wn, 5);
  std::vector<float> wc(ist_gen_wc_numel(&g)), w(wn);
  auto gen = [&] {
    if (!g.level1) wc = wcf;
    ist_cpu_generate_forward(&g, wb.data(), u.data(), v.data(), wc.data(), w.data());
  };
  gen();
  auto ref = naive_generate(g, wb.data(), u.data(), v.data(), wcf.data());
  EXPECT_LT(max_rel_diff(w.data(), ref.data(), wn), 1e-4);

  std::vector<float> dwb(wb.size(), 0.0f), du(u.size(), 0.0f), dv(v.size(), 0.0f), dwc(wc.size());
  gen();
  ist_cpu_generate_backward(&g, r.data(), wb.data(), u.data(), v.data(), wc.data(), dwb.data(), du.data(), dv.data(),
                            dwc.data());
  auto loss = [&] {
    gen();
    return dot(r, w.data());
  };
  if (g.level1) {
    expect_gradient(wb, dwb, loss, 1e-2, 1e-2, "dWb");
    expect_gradient(u, du, loss, 1e-2, 1e-2, "dU");
  } else {
    expect_gradient(wcf, dwc, loss, 1e-2, 1e-2, "dWc (free)");
  }
  if (g.level2) expect_gradient(v, dv, loss, 1e-2, 1e-2, "dV");
}

INSTANTIATE_TEST_SUITE_P(
    EveryCase, Generator,
    ::testing::Values(GenCase{"BothLevels", make(6, 4, 9, 2, 3, 1, 1)}, GenCase{"Level1Only", make(5, 4, 9, 2, 0, 1, 0)},
                      GenCase{"Level2Only", make(6, 3, 9, 0, 2, 0, 1)}, GenCase{"NeitherLevel", make(3, 2, 9, 0, 0, 0, 0)},
                      GenCase{"Pointwise1x1", make(8, 6, 1, 0, 3, 0, 1)},
                      GenCase{"Depthwise", make(1, 7, 9, 2, 0, 1, 0)}),
    [](const ::testing::TestParamInfo<GenCase> &i) { return std::string(i.param.name); });

TEST(Generator, BackwardAccumulatesIntoFactorGradients) {
  ist_gen_shape g = make(4, 3, 4, 2, 2, 1, 1);
  auto wb = randn(ist_gen_wb_numel(&g), 1), u = randn(ist_gen_u_numel(&g), 2), v = randn(ist_gen_v_numel(&g), 3),
       dw = randn(12 * 4, 4);
  std::vector<float> wc(ist_gen_wc_numel(&g)), w(48), dwc(wc.size());
  ist_cpu_generate_forward(&g, wb.data(), u.data(), v.data(), wc.data(), w.data());
  std::vector<float> dv1(v.size(), 0.0f), dv2(v.size(), 1.0f), du(u.size()), dwb(wb.size());
  ist_cpu_generate_backward(&g, dw.data(), wb.data(), u.data(), v.data(), wc.data(), dwb.data(), du.data(), dv1.data(), dwc.data());
  ist_cpu_generate_backward(&g, dw.data(), wb.data(), u.data(), v.data(), wc.data(), dwb.data(), du.data(), dv2.data(), dwc.data());
  for (size_t i = 0; i < v.size(); i++) EXPECT_NEAR(dv2[i], dv1[i] + 1.0f, 1e-5);
}

TEST(Quantizer, FourBitsGiveFifteenLevelsOnAGridThatKeepsTheScale) {
  auto x = randn(1000, 1, 0.05f);
  std::vector<float> y(x.size());
  float s = ist_cpu_quantize_forward((int64_t)x.size(), 4, x.data(), y.data());
  float mx = 0;
  for (float v : x) mx = std::max(mx, std::fabs(v));
  EXPECT_LE(s, mx);
  EXPECT_GE(s, 0.2f * mx) << "the clip is one of the candidates max·(1 − k/100), k ≤ 80";
  std::set<float> levels(y.begin(), y.end());
  EXPECT_LE(levels.size(), 15u);
  EXPECT_GE(levels.size(), 12u);
  double err = 0, err_maxabs = 0;
  for (size_t i = 0; i < x.size(); i++) {
    float code = y[i] / s * 7;
    EXPECT_NEAR(code, std::round(code), 1e-4) << "values lie on the grid";
    EXPECT_LE(std::fabs(code), 7.0f + 1e-4f);
    if (std::fabs(x[i]) <= s) {
      EXPECT_LE(std::fabs(y[i] - x[i]), s / 7 / 2 + 1e-7) << "within the clip: half a step";
    }
    err += std::pow(y[i] - x[i], 2);
    err_maxabs += std::pow(std::round(x[i] / mx * 7) * mx / 7 - x[i], 2);
  }
  EXPECT_LE(err, err_maxabs) << "the chosen clip is no worse than max-abs scaling";
  EXPECT_LT(std::sqrt(err / x.size()), 0.2 * 0.05) << "4-bit error is a fraction of the spread";
}

TEST(Quantizer, IsIdempotentOnItsOutput) {
  auto x = randn(200, 2);
  std::vector<float> y(200), z(200);
  for (int bits : {1, 2, 3, 8}) {
    ist_cpu_quantize_forward(200, bits, x.data(), y.data());
    ist_cpu_quantize_forward(200, bits, y.data(), z.data());
    EXPECT_LT(max_rel_diff(z.data(), y.data(), 200, 1e-6), 1e-5) << bits << " bits";
  }
}

TEST(Quantizer, ThirtyTwoBitsIsIdentityAndOneBitIsSignTimesMeanAbs) {
  std::vector<float> x = {0.5f, -1.5f, 2.0f, -0.2f}, y(4);
  ist_cpu_quantize_forward(4, 32, x.data(), y.data());
  EXPECT_EQ(y, x);
  ist_cpu_quantize_forward(4, 1, x.data(), y.data());
  EXPECT_EQ(y, (std::vector<float>{1.05f, -1.05f, 1.05f, -1.05f}));
}

TEST(Quantizer, StraightThroughBackwardPassesTheGradientInsideTheClip) {
  std::vector<float> x = {0.5f, -0.9f, 1.5f}, dy = {1, -2, 3}, dx = {1, 1, 1};
  ist_cpu_quantize_backward(3, 4, 1.0f, x.data(), dy.data(), dx.data());
  EXPECT_EQ(dx, (std::vector<float>{2, -1, 1})) << "1.5 lies beyond the clip 1.0";
  dx = {0, 0, 0};
  ist_cpu_quantize_backward(3, 32, 1.0f, x.data(), dy.data(), dx.data());
  EXPECT_EQ(dx, dy) << "unquantized: identity";
}

TEST(Ortho, ZeroForOrthonormalFactors) {
  // Wb rows orthonormal, U and V columns orthogonal (any norms: they are normalized).
  ist_gen_shape g = make(4, 2, 4, 2, 2, 1, 1);
  std::vector<float> wb = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
  std::vector<float> u = {3, 0, 0, 2, 0, 5, 1, 0};
  std::vector<float> v = {1, 0, 0, 1, 0, 0, 0, 0};
  EXPECT_NEAR(ist_cpu_ortho_forward(&g, wb.data(), u.data(), v.data()), 0.0, 1e-6);
}

TEST(Ortho, ValueAndGradientMatchFiniteDifferences) {
  ist_gen_shape g = make(5, 3, 4, 2, 3, 1, 1);
  auto wb = randn(ist_gen_wb_numel(&g), 1), u = randn(ist_gen_u_numel(&g), 2), v = randn(ist_gen_v_numel(&g), 3);
  // Naive value of one Wb term: ‖Wb_0·Wb_0ᵀ − I‖².
  double t = 0;
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++) {
      double d = 0;
      for (int k = 0; k < 4; k++) d += wb[i * 4 + k] * wb[j * 4 + k];
      t += std::pow(d - (i == j), 2);
    }
  EXPECT_GT(ist_cpu_ortho_forward(&g, wb.data(), u.data(), v.data()), t) << "the sum includes the Wb_0 term";
  std::vector<float> dwb(wb.size(), 0.0f), du(u.size(), 0.0f), dv(v.size(), 0.0f);
  ist_cpu_ortho_backward(1.0f, &g, wb.data(), u.data(), v.data(), dwb.data(), du.data(), dv.data());
  auto loss = [&] { return (double)ist_cpu_ortho_forward(&g, wb.data(), u.data(), v.data()); };
  expect_gradient(wb, dwb, loss, 1e-3, 2e-2, "dWb");
  expect_gradient(u, du, loss, 1e-3, 2e-2, "dU");
  expect_gradient(v, dv, loss, 1e-3, 2e-2, "dV");
}

using SvdFn = int (*)(int, int, const float *, float *, float *, float *);

// a = u·diag(s)·vt with s descending and orthonormal rows of vt, for tall and wide matrices.
void expect_valid_svd(SvdFn svd, const char *which) {
  for (auto mn : {std::pair<int, int>{7, 4}, std::pair<int, int>{3, 10}}) {
    int m = mn.first, n = mn.second, r = std::min(m, n);
    auto a = randn(m * n, 9);
    std::vector<float> u(m * r), s(r), vt(r * n);
    ASSERT_TRUE(svd(m, n, a.data(), u.data(), s.data(), vt.data())) << which;
    for (int i = 1; i < r; i++) EXPECT_GE(s[i - 1], s[i]) << which;
    for (int i = 0; i < m; i++)
      for (int j = 0; j < n; j++) {
        double x = 0;
        for (int k = 0; k < r; k++) x += (double)u[i * r + k] * s[k] * vt[k * n + j];
        EXPECT_NEAR(x, a[i * n + j], 1e-4) << which;
      }
    for (int p = 0; p < r; p++)
      for (int q = 0; q < r; q++) {
        double d = 0;
        for (int j = 0; j < n; j++) d += (double)vt[p * n + j] * vt[q * n + j];
        EXPECT_NEAR(d, p == q, 1e-4) << which << ": rows of vt are orthonormal";
      }
  }
}

TEST(Svd, LapackAndJacobiBothReconstructAndSort) {
  expect_valid_svd(ist_cpu_svd, "LAPACK");
  expect_valid_svd(ist_cpu_svd_ref, "Jacobi");
}

TEST(Svd, LapackMatchesTheJacobiReference) {
  const int m = 12, n = 30, r = 12;
  auto a = randn(m * n, 10);
  std::vector<float> u(m * r), s(r), vt(r * n), ur(m * r), sr(r), vtr(r * n);
  ASSERT_TRUE(ist_cpu_svd(m, n, a.data(), u.data(), s.data(), vt.data()));
  ASSERT_TRUE(ist_cpu_svd_ref(m, n, a.data(), ur.data(), sr.data(), vtr.data()));
  for (int k = 0; k < r; k++) {
    EXPECT_NEAR(s[k], sr[k], 1e-4 * sr[0]);
    const float sign = vt[k * n] * vtr[k * n] < 0 ? -1.0f : 1.0f;  // vectors agree up to sign
    for (int j = 0; j < n; j++) EXPECT_NEAR(vt[k * n + j], sign * vtr[k * n + j], 1e-3) << "vt row " << k;
    for (int i = 0; i < m; i++) EXPECT_NEAR(u[i * r + k], sign * ur[i * r + k], 1e-3) << "u column " << k;
  }
}

TEST(Radam, MatchesTheReferenceAlgorithm) {
  // PyTorch's RAdam written out in double for three steps with weight decay.
  std::vector<float> p = {0.5f, -1.0f}, m(2, 0.0f), v(2, 0.0f);
  std::vector<double> pr = {0.5, -1.0}, mr(2, 0), vr(2, 0);
  ist_radam_hparams h = {0.01f, 0.9f, 0.999f, 1e-8f, 0.1f};
  for (int step = 1; step <= 8; step++) {
    std::vector<float> g = {0.3f * step, -0.2f};
    ist_cpu_radam_update(2, p.data(), g.data(), m.data(), v.data(), step, &h);
    double rho_inf = 2 / (1 - 0.999) - 1, b2t = std::pow(0.999, step);
    double rho = rho_inf - 2 * step * b2t / (1 - b2t);
    for (int i = 0; i < 2; i++) {
      double gi = g[i] + 0.1 * pr[i];
      mr[i] = 0.9 * mr[i] + 0.1 * gi;
      vr[i] = 0.999 * vr[i] + 0.001 * gi * gi;
      double mh = mr[i] / (1 - std::pow(0.9, step));
      if (rho > 5) {
        double rect = std::sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho));
        pr[i] -= 0.01 * mh * rect * std::sqrt(1 - b2t) / (std::sqrt(vr[i]) + 1e-8);
      } else {
        pr[i] -= 0.01 * mh;
      }
      EXPECT_NEAR(p[i], pr[i], 1e-5) << "step " << step;
    }
  }
}

}  // namespace
