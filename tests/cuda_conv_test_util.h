// Helpers of the conv-family CUDA tests (test_cuda_conv2d/linear/generator/gconv/baselines), on top of
// tests/cuda_test_util.h: NaN-poisoned device outputs, the FP32 comparison they all state, and a
// check that no op recorded a CUDA failure.
#pragma once
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "cuda_test_util.h"
#include "test_util.h"

// n floats of NaN on the device: an output, so that any element the op does not write shows.
inline ist_dev_buf<float> poisoned(size_t n) {
  return ist_dev_buf<float>(std::vector<float>(n, std::numeric_limits<float>::quiet_NaN()));
}

// FP32 agreement: every |got − ref| ≤ tol · max|ref| (NaN never passes); both sides sum in float,
// in different orders, so the error scales with the largest values, not with each element.
constexpr double kFp32Tol = 1e-4;
inline void expect_close(const std::vector<float> &got, const std::vector<float> &ref, const char *what,
                         double tol = kFp32Tol) {
  double scale = 0;
  for (float r : ref) scale = std::max(scale, std::fabs((double)r));
  EXPECT_TRUE(ist_expect_close(got, ref, 0.0, tol * (scale > 0 ? scale : 1.0), what))
      << "(tolerance " << tol << " × max|ref| " << scale << ")";
}

// The ops left no recorded CUDA failure (ops are void: the first failure is kept until a sync).
inline void expect_no_cuda_failure(const char *what) {
  EXPECT_EQ(ist_cuda_sync(), IST_OK) << what << ": " << ist_last_error();
  ist_cuda_clear_error();
}
