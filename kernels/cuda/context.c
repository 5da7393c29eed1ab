/* The CUDA backend's context: the chosen GPU, its compute stream and cuBLAS handle, and the sticky
 * first failure of any op (ops are void; the backend reports the failure when it synchronizes). */
#include <stdarg.h>
#include <stdio.h>

#include "kernels/cuda/cuda_common.h"

static struct {
  int ready, device, sm_count, smem_optin;
  cudaStream_t stream;
  cublasHandle_t blas;
  char error[512];
} ctx = {.device = -1};

ist_status ist_cuda_init(int device) {
  if (ctx.ready) {
    if (device == ctx.device) return IST_OK;
    return ist_fail(IST_ERR_STATE, "--device cuda: GPU %d requested, but GPU %d is already in use", device,
                    ctx.device);
  }
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0)
    return ist_fail(IST_ERR_ARG, "--device cuda: no usable GPU (%s)",
                    e != cudaSuccess ? cudaGetErrorString(e) : "no CUDA device found");
  if (device < 0 || device >= count)
    return ist_fail(IST_ERR_ARG, "--device cuda: GPU %d does not exist (this machine has %d)", device, count);
  if ((e = cudaSetDevice(device)) != cudaSuccess)
    return ist_fail(IST_ERR_ARG, "--device cuda: cannot use GPU %d: %s", device, cudaGetErrorString(e));
  if ((e = cudaDeviceGetAttribute(&ctx.sm_count, cudaDevAttrMultiProcessorCount, device)) != cudaSuccess ||
      (e = cudaDeviceGetAttribute(&ctx.smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device)) != cudaSuccess)
    return ist_fail(IST_ERR_ARG, "--device cuda: cannot query GPU %d: %s", device, cudaGetErrorString(e));
  if ((e = cudaStreamCreateWithFlags(&ctx.stream, cudaStreamNonBlocking)) != cudaSuccess)
    return ist_fail(IST_ERR_MEMORY, "CUDA stream: %s", cudaGetErrorString(e));
  cublasStatus_t b = cublasCreate(&ctx.blas);
  if (b == CUBLAS_STATUS_SUCCESS) b = cublasSetStream(ctx.blas, ctx.stream);
  if (b != CUBLAS_STATUS_SUCCESS) return ist_fail(IST_ERR_MEMORY, "cuBLAS handle: %s", ist_cublas_status_name(b));
  ctx.device = device;
  ctx.ready = 1;
  return IST_OK;
}

int ist_cuda_ready(void) { return ctx.ready; }
cudaStream_t ist_cuda_stream(void) { return ctx.stream; }
cublasHandle_t ist_cuda_blas(void) { return ctx.blas; }
int ist_cuda_sm_count(void) { return ctx.sm_count; }
int ist_cuda_smem_optin(void) { return ctx.smem_optin; }

void ist_cuda_failf(const char *fmt, ...) {
  if (ctx.error[0]) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ctx.error, sizeof ctx.error, fmt, ap);
  va_end(ap);
}

void ist_cuda_fail_call_(const char *call, const char *why, const char *fmt, ...) {
  if (ctx.error[0]) return;
  char what[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  snprintf(ctx.error, sizeof ctx.error, "CUDA %s: %s failed: %s", what, call, why);
}

const char *ist_cuda_error(void) { return ctx.error[0] ? ctx.error : NULL; }
void ist_cuda_clear_error(void) { ctx.error[0] = 0; }

ist_status ist_cuda_sync(void) {
  IST_CUDA_CHECK(cudaStreamSynchronize(ctx.stream), "synchronize");
  if (ctx.error[0]) return ist_fail(IST_ERR_STATE, "%s", ctx.error);
  return IST_OK;
}

const char *ist_cublas_status_name(cublasStatus_t s) {
  switch (s) {
  case CUBLAS_STATUS_SUCCESS: return "success";
  case CUBLAS_STATUS_NOT_INITIALIZED: return "not initialized";
  case CUBLAS_STATUS_ALLOC_FAILED: return "allocation failed";
  case CUBLAS_STATUS_INVALID_VALUE: return "invalid value";
  case CUBLAS_STATUS_ARCH_MISMATCH: return "architecture mismatch";
  case CUBLAS_STATUS_MAPPING_ERROR: return "mapping error";
  case CUBLAS_STATUS_EXECUTION_FAILED: return "execution failed";
  case CUBLAS_STATUS_INTERNAL_ERROR: return "internal error";
  case CUBLAS_STATUS_NOT_SUPPORTED: return "not supported";
  default: return "unknown cuBLAS status";
  }
}
