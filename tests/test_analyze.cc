// The low-rank analysis (paper's Figure 2): top-30% singular-value shares on matrices whose
// spectra are known.
#include "test_util.h"

extern "C" {
#include "train/analyze.h"
}

namespace {

TEST(Analyze, TopShareOfKnownSpectra) {
  std::vector<float> diag(16, 0.0f);  // diag(4, 3, 2, 1): top ⌈0.3·4⌉ = 2 values hold 7 of 10
  for (int i = 0; i < 4; i++) diag[i * 5] = (float)(4 - i);
  EXPECT_NEAR(ist_top_share(4, 4, diag.data(), 0.3), 0.7, 1e-5);
  std::vector<float> eye(100, 0.0f);  // 10 equal values: 3 of 10
  for (int i = 0; i < 10; i++) eye[i * 11] = 1;
  EXPECT_NEAR(ist_top_share(10, 10, eye.data(), 0.3), 0.3, 1e-5);
  std::vector<float> rank1(6 * 9);  // outer product: everything in the first value
  for (int i = 0; i < 6; i++)
    for (int j = 0; j < 9; j++) rank1[i * 9 + j] = (float)(i + 1) * (float)(j - 4);
  EXPECT_NEAR(ist_top_share(6, 9, rank1.data(), 0.3), 1.0, 1e-5);
}

TEST(Analyze, IntraKernelSharesAreAveragedOverKernels) {
  // Two 3×9 kernels: one rank 1 (share 1), one with three equal singular values (share 1/3).
  std::vector<float> w(2 * 27, 0.0f);
  for (int j = 0; j < 9; j++) w[j] = 1.0f;      // kernel 0: only its first row
  for (int i = 0; i < 3; i++) w[27 + i * 9 + i] = 1.0f;  // kernel 1: [I 0]
  ist_spectrum sp;
  ASSERT_EQ(ist_analyze_weight(2, 3, 9, w.data(), &sp), IST_OK);
  EXPECT_NEAR(sp.intra_mean, (1.0 + 1.0 / 3) / 2, 1e-5);
  EXPECT_NEAR(sp.intra_std, (1.0 - 1.0 / 3) / 2, 1e-5);
  EXPECT_GT(sp.cross, 0.0);
  EXPECT_LE(sp.cross, 1.0 + 1e-6);
}

}  // namespace
