/* Host side of the CUDA backend: the stream and cuBLAS handle every op uses, and checked calls.
 * Ops cannot return a status (the op table is void), so the first failure is recorded, sticky
 * as CUDA's own errors are, and reported by the backend at its next synchronization. Under the
 * CPU execution check, <cuda_runtime.h> and <cublas_v2.h> are the emulator's
 * (tests/cuda_emu/include). */
#ifndef IST_CUDA_COMMON_H
#define IST_CUDA_COMMON_H
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "host/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Picks GPU `device`, creates the compute stream and the cuBLAS handle (once; later calls with
 * the same device are no-ops). Fails with one line when there is no GPU or no driver. */
ist_status ist_cuda_init(int device);
/* 1 after a successful ist_cuda_init. */
int ist_cuda_ready(void);
cudaStream_t ist_cuda_stream(void);
cublasHandle_t ist_cuda_blas(void);
/* The device's multiprocessor count and shared memory per block opt-in limit (bytes). */
int ist_cuda_sm_count(void);
int ist_cuda_smem_optin(void);

/* Records the first failure ("CUDA <op>: <message>"); later ones are dropped. */
void ist_cuda_failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The recorded failure, or NULL. */
const char *ist_cuda_error(void);
void ist_cuda_clear_error(void);
/* Waits for the stream; returns IST_OK, or the recorded (or new) failure via ist_fail. */
ist_status ist_cuda_sync(void);

const char *ist_cublas_status_name(cublasStatus_t s);

/* Checked calls: the format names the op and its shape, e.g.
 * IST_CUDA_CHECK(cudaMemsetAsync(p, 0, b, st), "zero n=%lld", (long long)n). */
#define IST_CUDA_CHECK(call, ...)                                                      \
  do {                                                                                 \
    cudaError_t ist_e_ = (call);                                                       \
    if (ist_e_ != cudaSuccess) ist_cuda_fail_call_(#call, cudaGetErrorString(ist_e_), __VA_ARGS__); \
  } while (0)
#define IST_CUBLAS_CHECK(call, ...)                                                              \
  do {                                                                                           \
    cublasStatus_t ist_b_ = (call);                                                              \
    if (ist_b_ != CUBLAS_STATUS_SUCCESS) ist_cuda_fail_call_(#call, ist_cublas_status_name(ist_b_), __VA_ARGS__); \
  } while (0)
/* After IST_LAUNCH: a launch error (bad configuration, or a fault the execution check found). */
#define IST_CUDA_CHECK_LAUNCH(...) IST_CUDA_CHECK(cudaGetLastError(), __VA_ARGS__)

void ist_cuda_fail_call_(const char *call, const char *why, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Blocks of `threads` covering n items, at most max_blocks (grid-stride loops cover the rest). */
static inline unsigned ist_cuda_blocks(long long n, int threads, int max_blocks) {
  long long b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  if (b > max_blocks) b = max_blocks;
  return (unsigned)b;
}

#ifdef __cplusplus
}
#endif
#endif
