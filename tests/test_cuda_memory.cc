// The CUDA backend's data movement (kernels/cuda/memory.cu): uploads and downloads round-trip bytes,
// zero and copy touch exactly n floats.
#include <cstring>

#include "tests/cuda_test_util.h"
#include "tests/test_util.h"

extern "C" {
#include "kernels/cuda/cuda_ops.h"
}

static const float kPoison = NAN;

TEST(CudaMemory, UploadThenDownloadReturnsTheSameBytes) {
  IST_REQUIRE_CUDA();
  for (size_t n : {1, 7, 1000}) {
    std::vector<float> h = randn(n, 11 + n), back(n, kPoison);
    ist_dev_buf<float> d(n);
    ist_cuda_upload(d, h.data(), n * sizeof(float));
    ist_cuda_download(back.data(), d, n * sizeof(float));
    EXPECT_EQ(std::memcmp(h.data(), back.data(), n * sizeof(float)), 0) << "n=" << n;
  }
  EXPECT_EQ(ist_cuda_error(), nullptr);
}

TEST(CudaMemory, ZeroClearsExactlyNFloats) {
  IST_REQUIRE_CUDA();
  const int n = 37, guard = 5;
  std::vector<float> h = randn(n + guard, 12);
  ist_dev_buf<float> d(h);
  ist_cuda_zero(d, n);
  std::vector<float> got = d.download();
  for (int i = 0; i < n; i++) ASSERT_EQ(got[i], 0.0f) << i;
  for (int i = n; i < n + guard; i++) ASSERT_EQ(got[i], h[i]) << "past the end, " << i;
  EXPECT_EQ(ist_cuda_error(), nullptr);
}

TEST(CudaMemory, CopyCopiesExactlyNFloats) {
  IST_REQUIRE_CUDA();
  const int n = 53, guard = 3;
  std::vector<float> src = randn(n + guard, 13), dst = randn(n + guard, 14);
  ist_dev_buf<float> ds(src), dd(dst);
  ist_cuda_copy(dd, ds, n);
  std::vector<float> got = dd.download();
  for (int i = 0; i < n; i++) ASSERT_EQ(got[i], src[i]) << i;
  for (int i = n; i < n + guard; i++) ASSERT_EQ(got[i], dst[i]) << "past the end, " << i;
  EXPECT_EQ(ist_cuda_error(), nullptr);
}
