// The CUDA orthogonality penalty (kernels/cuda/ortho.cu) against the CPU reference: the same sums per
// entry; the total over factors is added in another order, so 1e-5 relative.
#include "tests/cuda_test_util.h"
#include "tests/test_util.h"

extern "C" {
#include "kernels/cuda/cuda_ops.h"
}

static const double kRtol = 1e-5, kAtol = 1e-6;
static const float kLossBefore = 0.5f;

struct OrthoCase {
  int co, ci, k, bi, bc;
};
// Both levels, level 1 only (bc ≥ co), level 2 only (1×1), a depthwise-like layer, odd sizes.
static const OrthoCase kCases[] = {{12, 10, 3, 2, 4}, {6, 5, 3, 3, 8}, {20, 7, 1, 0, 5}, {9, 33, 3, 2, 3}};

static std::vector<float> factor(int64_t n, uint64_t seed) { return n ? randn(n, seed, 0.4f) : std::vector<float>{0}; }

TEST(CudaOrtho, ForwardAddsTheCpuPenaltyToTheDeviceLoss) {
  IST_REQUIRE_CUDA();
  for (auto k : kCases) {
    const ist_gen_shape g = ist_gen_shape_make(k.co, k.ci, k.k, k.bi, k.bc);
    std::vector<float> wb = factor(ist_gen_wb_numel(&g), 1100), u = factor(ist_gen_u_numel(&g), 1101),
                       v = factor(ist_gen_v_numel(&g), 1102);
    ist_dev_buf<float> dwb(wb), du(u), dv(v), dloss(std::vector<float>{kLossBefore});
    ist_cuda_ortho_forward(&g, dwb, du, dv, dloss);
    const float cpu = ist_cpu_ortho_forward(&g, wb.data(), u.data(), v.data());
    EXPECT_TRUE(ist_expect_close(dloss.download(), {kLossBefore + cpu}, kRtol, kAtol, "penalty"))
        << "co=" << k.co << " ci=" << k.ci << " k=" << k.k << " levels " << g.level1 << g.level2;
  }
  EXPECT_EQ(ist_cuda_error(), nullptr);
}

TEST(CudaOrtho, BackwardAddsTheCpuScaledGradients) {
  IST_REQUIRE_CUDA();
  const float scale = 0.03f;
  for (auto k : kCases) {
    const ist_gen_shape g = ist_gen_shape_make(k.co, k.ci, k.k, k.bi, k.bc);
    std::vector<float> wb = factor(ist_gen_wb_numel(&g), 1200), u = factor(ist_gen_u_numel(&g), 1201),
                       v = factor(ist_gen_v_numel(&g), 1202);
    std::vector<float> gwb = factor(ist_gen_wb_numel(&g), 1203), gu = factor(ist_gen_u_numel(&g), 1204),
                       gv = factor(ist_gen_v_numel(&g), 1205);
    ist_dev_buf<float> dwb(wb), du(u), dv(v), dgwb(gwb), dgu(gu), dgv(gv);
    ist_cuda_ortho_backward(scale, &g, dwb, du, dv, dgwb, dgu, dgv);
    ist_cpu_ortho_backward(scale, &g, wb.data(), u.data(), v.data(), gwb.data(), gu.data(), gv.data());
    EXPECT_TRUE(ist_expect_close(dgwb.download(), gwb, kRtol, kAtol, "dWb (accumulated)")) << "co=" << k.co;
    EXPECT_TRUE(ist_expect_close(dgu.download(), gu, kRtol, kAtol, "dU (accumulated)")) << "co=" << k.co;
    EXPECT_TRUE(ist_expect_close(dgv.download(), gv, kRtol, kAtol, "dV (accumulated)")) << "co=" << k.co;
  }
  EXPECT_EQ(ist_cuda_error(), nullptr);
}
