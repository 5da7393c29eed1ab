// The fused generated convolution (kernels/cuda/gconv_fused.cu) against the CPU reference: the
// materialized path (ist_cpu_generate_forward, then the direct conv), forward, backward-data and
// weight gradient, for every version and precision, both generation modes (W resident in shared
// memory for the CTA's life, or generated per K chunk), every combination of levels, odd shapes,
// and factors read as packed low-bit codes.
//
// Tolerances, as max |got − ref| ≤ tol · max |ref| over the tensor: FP32 1e-4 (summation order
// only); TF32 3e-3 (10-bit mantissa inputs, FP32 accumulation); BF16 2e-2 (7-bit mantissa inputs).
// The generation share of the kernel's time cannot be measured emulated: bench/fused_conv.cu.
#include <cmath>
#include <cstring>

#include "cuda_test_util.h"
#include "test_util.h"

extern "C" {
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/gconv_fused.h"
}

namespace {

struct Case {
  int n, ci, h, w, co, k, stride, pad, bi, bc;
};

void PrintTo(const Case &c, std::ostream *os) {
  *os << c.n << "x" << c.ci << "x" << c.h << "x" << c.w << " -> " << c.co << " k" << c.k << " s" << c.stride << " p"
      << c.pad << " " << c.bi << "-" << c.bc;
}

// A float device buffer holding a host vector (empty vector: no buffer, NULL).
struct DevFloats {
  float *p = nullptr;
  size_t n = 0;
  explicit DevFloats(const std::vector<float> &v) : n(v.size()) {
    if (!n) return;
    EXPECT_EQ(cudaMalloc(reinterpret_cast<void **>(&p), n * sizeof(float)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(p, v.data(), n * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  }
  DevFloats(const DevFloats &) = delete;
  DevFloats &operator=(const DevFloats &) = delete;
  ~DevFloats() {
    if (p) cudaFree(p);
  }
  // Waits for the stream (failing the test on a recorded CUDA failure) and downloads.
  std::vector<float> get() const {
    const ist_status st = ist_cuda_sync();
    EXPECT_EQ(st, IST_OK) << (ist_cuda_error() ? ist_cuda_error() : "");
    std::vector<float> v(n);
    if (n) {
      EXPECT_EQ(cudaMemcpy(v.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    }
    return v;
  }
};

struct DevBytes {
  uint8_t *p = nullptr;
  explicit DevBytes(const std::vector<uint8_t> &v) {
    if (v.empty()) return;
    EXPECT_EQ(cudaMalloc(reinterpret_cast<void **>(&p), v.size()), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(p, v.data(), v.size(), cudaMemcpyHostToDevice), cudaSuccess);
  }
  DevBytes(const DevBytes &) = delete;
  DevBytes &operator=(const DevBytes &) = delete;
  ~DevBytes() {
    if (p) cudaFree(p);
  }
};

// max |got − ref| / max |ref|.
double scaled_err(const std::vector<float> &got, const std::vector<float> &ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); i++) {
    const double d = std::fabs((double)got[i] - ref[i]);
    num = std::isnan(d) ? INFINITY : std::max(num, d);
    den = std::max(den, std::fabs((double)ref[i]));
  }
  return den > 0 ? num / den : num;
}

double tolerance(ist_fused_precision p) { return p == IST_PREC_FP32 ? 1e-4 : p == IST_PREC_TF32 ? 3e-3 : 2e-2; }

// One layer: shapes, seeded random factors and input, and the CPU reference W.
struct Layer {
  ist_conv_shape s;
  ist_gen_shape g;
  std::vector<float> x, wb, u, wc, v, w;
  explicit Layer(const Case &c) {
    s = {c.n, c.ci, c.h, c.w, c.co, c.k, c.stride, c.pad, 0, 0, 1};
    EXPECT_TRUE(ist_conv_shape_init(&s));
    g = ist_gen_shape_make(c.co, c.ci, c.k, c.bi, c.bc);
    x = randn((size_t)s.n * s.ci * s.h * s.w, 21);
    wb = randn(ist_gen_wb_numel(&g), 22, 0.5f);
    u = randn(ist_gen_u_numel(&g), 23, 0.5f);
    wc = g.level1 ? std::vector<float>() : randn(ist_gen_wc_numel(&g), 24, 0.3f);
    v = randn(ist_gen_v_numel(&g), 25, 0.5f);
    regenerate();
  }
  // W = generator(factors) on the CPU (SPEC §2).
  void regenerate() {
    std::vector<float> wcs = g.level1 ? std::vector<float>(ist_gen_wc_numel(&g)) : wc;
    w.assign((size_t)s.co * s.ci * s.k * s.k, 0.0f);
    ist_cpu_generate_forward(&g, wb.data(), u.data(), v.data(), wcs.data(), w.data());
  }
  size_t yn() const { return (size_t)s.n * s.co * s.ho * s.wo; }
  std::vector<float> forward_ref() const {
    std::vector<float> y(yn());
    ist_cpu_conv2d_forward_ref(&s, x.data(), w.data(), nullptr, y.data());
    return y;
  }
};

// Both levels on, odd sizes; k = 5 and stride 2; k = 1 (level 1 off); level 2 off; both off;
// several channel tiles each way; k = 7; stride 2 with no padding.
const Case kCases[] = {
    {2, 5, 7, 6, 7, 3, 1, 1, 2, 3},   {1, 3, 9, 8, 33, 5, 2, 2, 2, 4}, {2, 4, 6, 7, 5, 1, 1, 0, 0, 3},
    {1, 6, 5, 5, 9, 3, 2, 0, 2, 0},   {2, 3, 5, 6, 4, 3, 1, 1, 0, 0},  {1, 37, 4, 5, 70, 3, 1, 1, 3, 8},
    {1, 3, 9, 9, 3, 7, 1, 3, 2, 2},   {1, 8, 9, 7, 12, 3, 2, 1, 2, 5},
};

struct FusedRun {
  int version;
  ist_fused_precision precision;
  size_t resident_limit;  // 1: generate per K chunk; 0: the device's limit (resident when it fits)
};
const FusedRun kRuns[] = {
    {IST_FUSED_V1, IST_PREC_FP32, 0}, {IST_FUSED_V1, IST_PREC_FP32, 1}, {IST_FUSED_V2, IST_PREC_TF32, 0},
    {IST_FUSED_V2, IST_PREC_TF32, 1}, {IST_FUSED_V2, IST_PREC_BF16, 0}, {IST_FUSED_V2, IST_PREC_BF16, 1},
};
std::string run_name(const FusedRun &r) {
  return "v" + std::to_string(r.version) + (r.precision == IST_PREC_FP32 ? " fp32" : r.precision == IST_PREC_TF32 ? " tf32" : " bf16") +
         (r.resident_limit == 1 ? " chunked" : " resident");
}

class GconvFused : public ::testing::TestWithParam<Case> {};

TEST_P(GconvFused, ForwardMatchesCpuMaterializedConvForEveryVersion) {
  IST_REQUIRE_CUDA();
  const Layer L(GetParam());
  const auto ref = L.forward_ref();
  DevFloats x(L.x), wb(L.wb), u(L.u), wc(L.wc), v(L.v);
  const ist_fused_factors f = ist_fused_factors_f32(wb.p, u.p, wc.p, v.p);
  for (const FusedRun &r : kRuns) {
    ASSERT_TRUE(ist_cuda_gconv_fused_eligible(r.version, r.precision, &L.s, &L.g, nullptr));
    ist_cuda_gconv_fused_set_resident_limit(r.resident_limit);
    ist_fused_plan plan;
    ist_cuda_gconv_fused_plan(r.version, 0, &L.s, &L.g, &plan);
    EXPECT_EQ(plan.resident, r.resident_limit != 1) << run_name(r) << ": these small layers fit in shared memory";
    DevFloats y(std::vector<float>(L.yn(), NAN));
    ist_cuda_gconv_fused_forward(r.version, r.precision, &L.s, &L.g, &f, x.p, y.p);
    EXPECT_LT(scaled_err(y.get(), ref), tolerance(r.precision)) << run_name(r);
  }
  ist_cuda_gconv_fused_set_resident_limit(0);
}

TEST_P(GconvFused, BackwardDataMatchesCpuReferenceForEveryVersion) {
  IST_REQUIRE_CUDA();
  const Layer L(GetParam());
  const auto dy = randn(L.yn(), 26);
  std::vector<float> ref(L.x.size()), dw(L.w.size(), 0.0f);
  ist_cpu_conv2d_backward_ref(&L.s, dy.data(), L.x.data(), L.w.data(), ref.data(), dw.data(), nullptr);
  DevFloats d_dy(dy), wb(L.wb), u(L.u), wc(L.wc), v(L.v);
  const ist_fused_factors f = ist_fused_factors_f32(wb.p, u.p, wc.p, v.p);
  for (const FusedRun &r : kRuns) {
    ist_cuda_gconv_fused_set_resident_limit(r.resident_limit);
    ist_fused_plan plan;
    ist_cuda_gconv_fused_plan(r.version, 1, &L.s, &L.g, &plan);
    // (co × 64·k² floats need not fit: 33 × 64 · 25 does not, and is chunked either way.)
    if (r.resident_limit == 1) {
      EXPECT_FALSE(plan.resident) << run_name(r);
    }
    DevFloats dx(std::vector<float>(L.x.size(), NAN));
    ist_cuda_gconv_fused_backward_data(r.version, r.precision, &L.s, &L.g, &f, d_dy.p, dx.p);
    EXPECT_LT(scaled_err(dx.get(), ref), tolerance(r.precision)) << run_name(r);
  }
  ist_cuda_gconv_fused_set_resident_limit(0);
}

TEST_P(GconvFused, WeightGradientAccumulatesCpuFactorGradients) {
  IST_REQUIRE_CUDA();
  const Layer L(GetParam());
  const ist_conv_shape &s = L.s;
  const ist_gen_shape &g = L.g;
  const auto dy = randn(L.yn(), 27);
  // Reference: dW by the direct conv, then the CPU generator backward into gradients that already
  // hold values (the op accumulates).
  std::vector<float> dxr(L.x.size()), dw(L.w.size(), 0.0f);
  ist_cpu_conv2d_backward_ref(&s, dy.data(), L.x.data(), L.w.data(), dxr.data(), dw.data(), nullptr);
  const auto dwb0 = randn(L.wb.size(), 28, 0.1f), du0 = randn(L.u.size(), 29, 0.1f),
             dv0 = randn(L.v.size(), 30, 0.1f), dwc0 = randn(g.level1 ? 0 : L.wc.size(), 31, 0.1f);
  std::vector<float> dwbr = dwb0, dur = du0, dvr = dv0, dwcr(ist_gen_wc_numel(&g));
  std::vector<float> wcs = g.level1 ? std::vector<float>(ist_gen_wc_numel(&g)) : L.wc, wtmp(L.w.size());
  ist_cpu_generate_forward(&g, L.wb.data(), L.u.data(), L.v.data(), wcs.data(), wtmp.data());
  ist_cpu_generate_backward(&g, dw.data(), L.wb.data(), L.u.data(), L.v.data(), wcs.data(), dwbr.data(), dur.data(),
                            dvr.data(), dwcr.data());
  std::vector<float> dwc_free_ref = dwc0;
  for (size_t i = 0; i < dwc_free_ref.size(); i++) dwc_free_ref[i] += dwcr[i];

  DevFloats d_dy(dy), x(L.x), wb(L.wb), u(L.u), wc(L.wc), v(L.v);
  DevFloats dwb(dwb0), du(du0), dv(dv0), dwc(dwc0);
  DevFloats ws(std::vector<float>(ist_cuda_gconv_fused_ws_floats(&s, &g), NAN));
  ist_cuda_gconv_fused_backward_weights(&s, &g, d_dy.p, x.p, wb.p, u.p, wc.p, v.p, dwb.p, du.p, dwc.p, dv.p, ws.p);
  const double tol = tolerance(IST_PREC_FP32);
  if (g.level1) {
    EXPECT_LT(scaled_err(dwb.get(), dwbr), tol) << "dWb";
    EXPECT_LT(scaled_err(du.get(), dur), tol) << "dU";
  } else {
    EXPECT_LT(scaled_err(dwc.get(), dwc_free_ref), tol) << "dWc (free)";
  }
  if (g.level2) {
    EXPECT_LT(scaled_err(dv.get(), dvr), tol) << "dV";
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, GconvFused, ::testing::ValuesIn(kCases));

// ---- Packed codes (the `.compressed` format of models/compressed.c): q-bit codes packed bit by
// bit, value = (code − n)·scale/n with n = 2^(q−1) − 1, or ±scale for q = 1.

struct Packed {
  std::vector<uint8_t> codes;
  float scale = 0;
  std::vector<float> values;  // the dequantized tensor, what the CPU reference uses
};

Packed pack(const std::vector<float> &x, int bits) {
  Packed p;
  p.values.resize(x.size());
  p.scale = ist_cpu_quantize_forward((int64_t)x.size(), bits, x.data(), p.values.data());
  p.codes.assign((x.size() * bits + 7) / 8, 0);
  const int n = bits == 1 ? 0 : (1 << (bits - 1)) - 1;
  for (size_t i = 0; i < x.size(); i++) {
    const uint32_t code =
        bits == 1 ? (p.values[i] >= 0) : (uint32_t)((p.scale > 0 ? lrintf(p.values[i] / p.scale * n) : 0) + n);
    for (int b = 0; b < bits; b++)
      if (code >> b & 1u) p.codes[(i * bits + b) / 8] |= (uint8_t)(1u << ((i * bits + b) % 8));
    p.values[i] = bits == 1 ? (code ? p.scale : -p.scale) : ((int)code - n) * (p.scale / (float)n);
  }
  return p;
}

struct PackedCase {
  Case c;
  int qb, qu, qv;
};
void PrintTo(const PackedCase &p, std::ostream *os) {
  PrintTo(p.c, os);
  *os << " q" << p.qb << "-" << p.qu << "-" << p.qv;
}

class GconvFusedPacked : public ::testing::TestWithParam<PackedCase> {};

TEST_P(GconvFusedPacked, ForwardFromPackedCodesMatchesCpuOnDequantizedFactors) {
  IST_REQUIRE_CUDA();
  const PackedCase pc = GetParam();
  Layer L(pc.c);
  const Packed pwb = pack(L.wb, pc.qb), pu = pack(L.u, pc.qu), pwc = pack(L.wc, pc.qb), pv = pack(L.v, pc.qv);
  L.wb = pwb.values, L.u = pu.values, L.wc = pwc.values, L.v = pv.values;
  L.regenerate();
  const auto ref = L.forward_ref();
  DevFloats x(L.x), scales({pwb.scale, pu.scale, pwc.scale, pv.scale});
  DevBytes cwb(pwb.codes), cu(pu.codes), cwc(pwc.codes), cv(pv.codes);
  ist_fused_factors f = {};
  f.wb = {nullptr, cwb.p, pc.qb, scales.p + 0};
  f.u = {nullptr, cu.p, pc.qu, scales.p + 1};
  f.wc = {nullptr, cwc.p, pc.qb, scales.p + 2};
  f.v = {nullptr, cv.p, pc.qv, scales.p + 3};
  for (const FusedRun &r : kRuns) {
    if (r.resident_limit == 1) continue;
    DevFloats y(std::vector<float>(L.yn(), NAN));
    ist_cuda_gconv_fused_forward(r.version, r.precision, &L.s, &L.g, &f, x.p, y.p);
    EXPECT_LT(scaled_err(y.get(), ref), tolerance(r.precision)) << run_name(r);
  }
}

const PackedCase kPackedCases[] = {
    {{2, 5, 7, 6, 7, 3, 1, 1, 2, 3}, 3, 6, 3},
    {{1, 6, 5, 5, 9, 3, 2, 0, 2, 0}, 8, 8, 8},
    {{2, 4, 6, 7, 5, 1, 1, 0, 0, 3}, 1, 5, 2},
};
INSTANTIATE_TEST_SUITE_P(Settings, GconvFusedPacked, ::testing::ValuesIn(kPackedCases));

TEST(GconvFusedEligibility, GroupedConvAndWrongPrecisionAreRefusedWithAReason) {
  ist_conv_shape s = {1, 8, 6, 6, 8, 3, 1, 1, 0, 0, 8};
  ASSERT_TRUE(ist_conv_shape_init(&s));
  const ist_gen_shape g = ist_gen_shape_make(8, 8, 3, 2, 4);
  const char *why = nullptr;
  EXPECT_FALSE(ist_cuda_gconv_fused_eligible(IST_FUSED_V1, IST_PREC_FP32, &s, &g, &why));
  EXPECT_NE(why, nullptr);
  s.groups = 1;
  EXPECT_TRUE(ist_cuda_gconv_fused_eligible(IST_FUSED_V1, IST_PREC_FP32, &s, &g, &why));
  EXPECT_FALSE(ist_cuda_gconv_fused_eligible(IST_FUSED_V1, IST_PREC_TF32, &s, &g, &why));
  EXPECT_FALSE(ist_cuda_gconv_fused_eligible(IST_FUSED_V2, IST_PREC_FP32, &s, &g, &why));
  EXPECT_TRUE(ist_cuda_gconv_fused_eligible(IST_FUSED_V2, IST_PREC_BF16, &s, &g, &why));
}

}  // namespace
