/* The CUDA backend's op table: the ist_cuda_* ops of the .cu files (kernels/cuda/cuda_ops.h), and
 * the memory side: device memory (cudaMalloc, zeroed on the stream), pinned host memory
 * (cudaMallocHost), asynchronous uploads tracked by events, and the synchronization that reports
 * the first failure of any op. */
#include <stddef.h>

#include "host/tensor.h"
#include "kernels/backend.h"
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/activations.h"
#include "kernels/cuda/cuda_ops.h"

/* "auto" runs a generated conv factored when that needs at most this share of the materialized
 * multiply-adds. The CPU's rule (kernels/cpu/backend_cpu.c) until the GPU kernels are timed
 * against each other (bench/): the factored form's small grouped conv runs at a lower rate than
 * one big implicit GEMM on a GPU too. */
#define CUDA_FACTORED_MAX_MAC_SHARE 0.5
/* Distinct pinned buffers whose uploads are tracked (the trainer uses four: images and labels,
 * double-buffered); beyond that an upload waits for the stream before returning. */
#define CUDA_UPLOAD_SLOTS 8

ist_status ist_backend_cuda_init(int gpu) { return ist_cuda_init(gpu); }
void *ist_backend_cuda_stream(void) { return (void *)ist_cuda_stream(); }

static void *cuda_alloc(size_t bytes) {
  void *p = NULL;
  if (bytes == 0) bytes = 1;
  if (cudaMalloc(&p, bytes) != cudaSuccess) {
    cudaGetLastError(); /* not sticky: the caller reports the failure */
    return NULL;
  }
  IST_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, ist_cuda_stream()), "alloc %zu bytes", bytes);
  return p;
}

static void cuda_free(void *p) {
  if (p) IST_CUDA_CHECK(cudaFree(p), "free");
}

static void *cuda_host_alloc(size_t bytes) {
  void *p = NULL;
  if (cudaMallocHost(&p, bytes ? bytes : 1) != cudaSuccess) {
    cudaGetLastError();
    return NULL;
  }
  return p;
}

static void cuda_host_free(void *p) {
  if (p) IST_CUDA_CHECK(cudaFreeHost(p), "host_free");
}

static ist_status cuda_sync(void) { return ist_cuda_sync(); }

/* Pinned buffers with an upload in flight, and the event recorded after it. */
static struct {
  const void *host;
  cudaEvent_t done;
} uploads[CUDA_UPLOAD_SLOTS];

static int upload_slot(const void *host, int claim) {
  for (int i = 0; i < CUDA_UPLOAD_SLOTS; i++)
    if (uploads[i].host == host) return i;
  if (!claim) return -1;
  for (int i = 0; i < CUDA_UPLOAD_SLOTS; i++)
    if (!uploads[i].host) {
      if (!uploads[i].done &&
          cudaEventCreateWithFlags(&uploads[i].done, cudaEventDisableTiming) != cudaSuccess) {
        cudaGetLastError();
        uploads[i].done = NULL;
        return -1;
      }
      uploads[i].host = host;
      return i;
    }
  return -1;
}

static void cuda_upload_async(void *dst, const void *host_src, size_t bytes) {
  IST_CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, ist_cuda_stream()),
                 "upload_async %zu bytes", bytes);
  const int k = upload_slot(host_src, 1);
  if (k >= 0) IST_CUDA_CHECK(cudaEventRecord(uploads[k].done, ist_cuda_stream()), "upload_async %zu bytes", bytes);
  else IST_CUDA_CHECK(cudaStreamSynchronize(ist_cuda_stream()), "upload_async %zu bytes (untracked)", bytes);
}

static void cuda_upload_wait(const void *host_src) {
  const int k = upload_slot(host_src, 0);
  if (k < 0) return;
  IST_CUDA_CHECK(cudaEventSynchronize(uploads[k].done), "upload_wait");
  uploads[k].host = NULL; /* the slot (and its event) serve the next buffer */
}

static int cuda_prefers_factored(const ist_conv_shape *s, const ist_gen_shape *g) {
  return ist_gconv_factored_within(s, g, CUDA_FACTORED_MAX_MAC_SHARE);
}

/* In the order of ist_backend's fields (this file also compiles as C++ under the execution check). */
static const ist_backend cuda_backend = {
    .name = "cuda",
    .device = IST_CUDA,
    .alloc = cuda_alloc,
    .free = cuda_free,
    .host_alloc = cuda_host_alloc,
    .host_free = cuda_host_free,
    .sync = cuda_sync,
    .upload = ist_cuda_upload,
    .download = ist_cuda_download,
    .upload_async = cuda_upload_async,
    .upload_wait = cuda_upload_wait,
    .zero = ist_cuda_zero,
    .copy = ist_cuda_copy,
    .conv_ws_floats = ist_cuda_conv_ws_floats,
    .gconv_ws_floats = ist_cuda_gconv_ws_floats,
    .gconv_prefers_factored = cuda_prefers_factored,
    .conv2d_forward = ist_cuda_conv2d_forward,
    .conv2d_backward = ist_cuda_conv2d_backward,
    .batchnorm_forward = ist_cuda_batchnorm_forward,
    .batchnorm_backward = ist_cuda_batchnorm_backward,
    .copy_channels = ist_cuda_copy_channels,
    .add = ist_cuda_add,
    .scale = ist_cuda_scale,
    .relu_forward = ist_cuda_relu_forward,
    .relu_backward = ist_cuda_relu_backward,
    .relu6_forward = ist_cuda_relu6_forward,
    .relu6_backward = ist_cuda_relu6_backward,
    .avgpool_forward = ist_cuda_avgpool_forward,
    .avgpool_backward = ist_cuda_avgpool_backward,
    .maxpool_forward = ist_cuda_maxpool_forward,
    .maxpool_backward = ist_cuda_maxpool_backward,
    .linear_forward = ist_cuda_linear_forward,
    .linear_backward = ist_cuda_linear_backward,
    .cross_entropy = ist_cuda_cross_entropy,
    .kd_loss = ist_cuda_kd_loss,
    .quantize_forward = ist_cuda_quantize_forward,
    .quantize_backward = ist_cuda_quantize_backward,
    .generate_forward = ist_cuda_generate_forward,
    .generate_backward = ist_cuda_generate_backward,
    .gconv_forward = ist_cuda_gconv_forward,
    .gconv_backward = ist_cuda_gconv_backward,
    .baseline_forward = ist_cuda_baseline_forward,
    .baseline_backward = ist_cuda_baseline_backward,
    .ortho_forward = ist_cuda_ortho_forward,
    .ortho_backward = ist_cuda_ortho_backward,
    .radam_update = ist_cuda_radam_update,
    .sq_diff = ist_cuda_sq_diff,
    .hardswish_forward = ist_cuda_hardswish_forward,
    .hardswish_backward = ist_cuda_hardswish_backward,
    .hardsigmoid_forward = ist_cuda_hardsigmoid_forward,
    .hardsigmoid_backward = ist_cuda_hardsigmoid_backward,
    .silu_forward = ist_cuda_silu_forward,
    .silu_backward = ist_cuda_silu_backward,
    .sigmoid_forward = ist_cuda_sigmoid_forward,
    .sigmoid_backward = ist_cuda_sigmoid_backward,
    .channel_scale_forward = ist_cuda_channel_scale_forward,
    .channel_scale_backward = ist_cuda_channel_scale_backward,
    .channel_bias_forward = ist_cuda_channel_bias_forward,
    .channel_bias_backward = ist_cuda_channel_bias_backward,
    .dropout_forward = ist_cuda_dropout_forward,
    .dropout_backward = ist_cuda_dropout_backward,
    .act_quantize_forward = ist_cuda_act_quantize_forward,
    .act_quantize_backward = ist_cuda_act_quantize_backward,
};

const ist_backend *ist_backend_cuda(void) { return &cuda_backend; }
