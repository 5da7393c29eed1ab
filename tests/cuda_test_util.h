// Helpers for the CUDA tests (tests/test_cuda_*.cc): where a test runs (a GPU, the CPU execution
// check, or nowhere), device buffers that free themselves, and a float comparison that says where it
// failed. The same tests run on a GPU and emulated (docs/EMULATION.md).
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_common.h"

// "emulated" (the IST_CUDA_EMU build), "GPU" (a real build where ist_cuda_init(0) succeeds), or
// NULL (a real build on a machine without a usable GPU).
inline const char *ist_test_cuda_mode(void) {
#if defined(IST_CUDA_EMU)
  return "emulated";
#else
  static int usable = -1;
  if (usable < 0) usable = ist_cuda_init(0) == IST_OK;
  return usable ? "GPU" : nullptr;
#endif
}

// Starts every CUDA test: skips without a GPU, says where the test runs, and opens the backend's
// context. Emulated, it also clears the previous test's faults so each test starts clean.
#if defined(IST_CUDA_EMU)
#define IST_TEST_CUDA_RESET_() (ist_emu_reset(), ist_cuda_clear_error())
#else
#define IST_TEST_CUDA_RESET_() ist_cuda_clear_error()
#endif
#define IST_REQUIRE_CUDA()                                                       \
  do {                                                                           \
    const char *ist_mode_ = ist_test_cuda_mode();                                \
    if (!ist_mode_) GTEST_SKIP() << "no GPU here";                               \
    printf("[ CUDA     ] %s\n", ist_mode_);                                      \
    IST_TEST_CUDA_RESET_();                                                      \
    ASSERT_EQ(ist_cuda_init(0), IST_OK) << ist_last_error();                     \
  } while (0)

// A device buffer of n T's, freed when it goes out of scope.
template <class T>
class ist_dev_buf {
 public:
  explicit ist_dev_buf(size_t n = 0) : n_(n) {
    if (n_ && cudaMalloc(reinterpret_cast<void **>(&p_), n_ * sizeof(T)) != cudaSuccess) {
      p_ = nullptr;
      ADD_FAILURE() << "cudaMalloc of " << n_ * sizeof(T) << " bytes failed";
    }
  }
  explicit ist_dev_buf(const std::vector<T> &host) : ist_dev_buf(host.size()) { upload(host); }
  ~ist_dev_buf() {
    if (p_) cudaFree(p_);
  }
  ist_dev_buf(const ist_dev_buf &) = delete;
  ist_dev_buf &operator=(const ist_dev_buf &) = delete;
  T *get() const { return p_; }
  operator T *() const { return p_; }
  size_t size() const { return n_; }
  void upload(const std::vector<T> &host) {
    ASSERT_EQ(host.size(), n_);
    ASSERT_EQ(cudaMemcpy(p_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess) << cudaGetErrorString(cudaPeekAtLastError());
    if (n_) {
      EXPECT_EQ(cudaMemcpy(host.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    }
    return host;
  }

 private:
  size_t n_ = 0;
  T *p_ = nullptr;
};

// Whether got matches want element by element within |g − w| ≤ atol + rtol·|w| (NaN never matches);
// on failure the message names the first mismatch and the largest error.
inline ::testing::AssertionResult ist_expect_close(const std::vector<float> &got, const std::vector<float> &want,
                                                   double rtol, double atol, const char *what = "values") {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << what << ": " << got.size() << " values, expected " << want.size();
  size_t bad = 0, first = 0, worst = 0;
  double max_err = 0;
  for (size_t i = 0; i < got.size(); i++) {
    double e = std::fabs((double)got[i] - want[i]);
    bool ok = e <= atol + rtol * std::fabs((double)want[i]);
    if (std::isnan(e)) e = INFINITY;
    if (e > max_err) {
      max_err = e;
      worst = i;
    }
    if (!ok && bad++ == 0) first = i;
  }
  if (!bad) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << ": " << bad << " of " << got.size() << " outside |err| <= " << atol
                                       << " + " << rtol << "·|want|; first at [" << first << "]: " << got[first]
                                       << " vs " << want[first] << "; largest error " << max_err << " at [" << worst
                                       << "]: " << got[worst] << " vs " << want[worst];
}
