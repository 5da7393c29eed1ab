/* Moving data: host ↔ device (synchronizing, the values must be there when the call returns) and
 * device → device (asynchronous, on the compute stream). */
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"

extern "C" void ist_cuda_upload(void *dst, const void *host_src, size_t bytes) {
  if (!bytes) return;
  IST_CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, ist_cuda_stream()), "upload %zu bytes",
                 bytes);
  IST_CUDA_CHECK(cudaStreamSynchronize(ist_cuda_stream()), "upload %zu bytes", bytes);
}

extern "C" void ist_cuda_download(void *host_dst, const void *src, size_t bytes) {
  if (!bytes) return;
  IST_CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, ist_cuda_stream()),
                 "download %zu bytes", bytes);
  IST_CUDA_CHECK(cudaStreamSynchronize(ist_cuda_stream()), "download %zu bytes", bytes);
}

extern "C" void ist_cuda_zero(float *p, int64_t n) {
  if (n <= 0) return;
  IST_CUDA_CHECK(cudaMemsetAsync(p, 0, sizeof(float) * (size_t)n, ist_cuda_stream()), "zero n=%lld", (long long)n);
}

extern "C" void ist_cuda_copy(float *dst, const float *src, int64_t n) {
  if (n <= 0 || dst == src) return;
  IST_CUDA_CHECK(cudaMemcpyAsync(dst, src, sizeof(float) * (size_t)n, cudaMemcpyDeviceToDevice, ist_cuda_stream()),
                 "copy n=%lld", (long long)n);
}
