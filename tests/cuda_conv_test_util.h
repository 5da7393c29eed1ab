// Helpers of the conv-family CUDA tests (test_cuda_conv2d/linear/generator/gconv/baselines):
// device copies of host vectors, NaN-poisoned outputs, and the FP32 comparison they all use.
#pragma once
#include <cuda_runtime.h>

#include <cmath>
#include <limits>
#include <vector>

#include "test_util.h"

// A device copy of a float vector (freed with the object); an empty vector gives nullptr.
struct DevVec {
  float *p = nullptr;
  size_t n = 0;
  explicit DevVec(const std::vector<float> &h) : n(h.size()) {
    if (!n) return;
    EXPECT_EQ(cudaMalloc(&p, n * sizeof(float)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(p, h.data(), n * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  }
  // n floats of NaN: an output, so that any element the op does not write shows.
  static DevVec poisoned(size_t n) { return DevVec(std::vector<float>(n, std::numeric_limits<float>::quiet_NaN())); }
  DevVec(DevVec &&o) noexcept : p(o.p), n(o.n) { o.p = nullptr; }
  DevVec(const DevVec &) = delete;
  DevVec &operator=(const DevVec &) = delete;
  ~DevVec() {
    if (p) cudaFree(p);
  }
  // Waits for the stream's work (the ops run asynchronously), then copies back.
  std::vector<float> get() const {
    std::vector<float> h(n);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    if (n) {
      EXPECT_EQ(cudaMemcpy(h.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    }
    return h;
  }
};

// FP32 agreement: every |got − ref| ≤ tol · max|ref| (NaN never passes); both sides sum in float,
// in different orders.
constexpr double kFp32Tol = 1e-4;
inline void expect_close(const std::vector<float> &got, const std::vector<float> &ref, const char *what,
                         double tol = kFp32Tol) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  double scale = 0;
  for (float r : ref) scale = std::max(scale, std::fabs((double)r));
  const double bound = tol * (scale > 0 ? scale : 1.0);
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < ref.size(); i++)
    if (!(std::fabs((double)got[i] - ref[i]) <= bound) && bad++ == 0) first = i;
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << ref.size() << " elements differ by more than " << bound
                     << " (tol " << tol << " × max|ref| " << scale << "); first at " << first << ": got "
                     << (bad ? got[first] : 0.0f) << ", want " << (bad ? ref[first] : 0.0f);
}

#include "kernels/cuda/cuda_common.h" // C declarations in extern "C" of their own

// The op left no recorded CUDA failure (ops are void: failures are sticky until a synchronization).
inline void expect_no_cuda_failure(const char *what) {
  EXPECT_EQ(ist_cuda_sync(), IST_OK) << what << ": " << ist_last_error();
  ist_cuda_clear_error();
}
