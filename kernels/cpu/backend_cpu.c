/* The CPU backend's op table: the reference kernels of kernels/cpu, host memory, and thin
 * wrappers that put the scalars the reference functions return where the op table wants them
 * (in "device" memory, which on the CPU is host memory). */
#include <stdlib.h>
#include <string.h>

#include "host/tensor.h"
#include "kernels/cpu/cpu.h"

/* Alignment of CPU backend allocations (a cache line; the AVX2 kernels need 32). */
#define CPU_ALIGN 64
/* "auto" runs a generated conv factored when that needs at most this share of the materialized
 * multiply-adds: its small grouped conv runs at a lower rate than one big sgemm. */
#define CPU_FACTORED_MAX_MAC_SHARE 0.5

static void *cpu_alloc(size_t bytes) {
  size_t rounded = (bytes + CPU_ALIGN - 1) / CPU_ALIGN * CPU_ALIGN;
  if (rounded == 0) rounded = CPU_ALIGN;
  void *p = aligned_alloc(CPU_ALIGN, rounded);
  if (p) memset(p, 0, rounded);
  return p;
}
static void cpu_free(void *p) { free(p); }
static ist_status cpu_sync(void) { return IST_OK; }
static void cpu_move(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }
static void cpu_upload_wait(const void *host_src) { (void)host_src; }
static void cpu_zero(float *p, int64_t n) { memset(p, 0, sizeof(float) * (size_t)n); }
static void cpu_copy(float *dst, const float *src, int64_t n) { memcpy(dst, src, sizeof(float) * (size_t)n); }

static int cpu_prefers_factored(const ist_conv_shape *s, const ist_gen_shape *g) {
  return ist_gconv_factored_within(s, g, CPU_FACTORED_MAX_MAC_SHARE);
}

static void cpu_cross_entropy(int n, int c, const float *logits, const int32_t *labels, float *dlogits,
                              float *loss_sum, int32_t *correct) {
  int hits = 0;
  *loss_sum += ist_cpu_cross_entropy(n, c, logits, labels, dlogits, correct ? &hits : NULL);
  if (correct) *correct += hits;
}

static void cpu_kd_loss(int n, int c, const float *student, const float *teacher, const int32_t *labels, float beta,
                        float temperature, float *dlogits, float *loss_sum, int32_t *correct) {
  int hits = 0;
  *loss_sum += ist_cpu_kd_loss(n, c, student, teacher, labels, beta, temperature, dlogits, correct ? &hits : NULL);
  if (correct) *correct += hits;
}

static void cpu_quantize_forward(int64_t n, int bits, const float *x, float *y, float *scale) {
  *scale = ist_cpu_quantize_forward(n, bits, x, y);
}
static void cpu_quantize_backward(int64_t n, int bits, const float *scale, const float *x, const float *dy,
                                  float *dx) {
  ist_cpu_quantize_backward(n, bits, *scale, x, dy, dx);
}

static void cpu_ortho_forward(const ist_gen_shape *g, const float *wb, const float *u, const float *v,
                              float *loss_sum) {
  *loss_sum += ist_cpu_ortho_forward(g, wb, u, v);
}

static const ist_backend cpu_backend = {
    .name = "cpu",
    .device = IST_CPU,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .host_alloc = cpu_alloc,
    .host_free = cpu_free,
    .sync = cpu_sync,
    .upload = cpu_move,
    .download = cpu_move,
    .upload_async = cpu_move,
    .upload_wait = cpu_upload_wait,
    .zero = cpu_zero,
    .copy = cpu_copy,
    .conv_ws_floats = ist_conv_ws_floats,
    .gconv_ws_floats = ist_gconv_ws_floats,
    .gconv_prefers_factored = cpu_prefers_factored,
    .conv2d_forward = ist_cpu_conv2d_forward,
    .conv2d_backward = ist_cpu_conv2d_backward,
    .batchnorm_forward = ist_cpu_batchnorm_forward,
    .batchnorm_backward = ist_cpu_batchnorm_backward,
    .add = ist_cpu_add,
    .scale = ist_cpu_scale,
    .copy_channels = ist_cpu_copy_channels,
    .relu_forward = ist_cpu_relu_forward,
    .relu_backward = ist_cpu_relu_backward,
    .relu6_forward = ist_cpu_relu6_forward,
    .relu6_backward = ist_cpu_relu6_backward,
    .avgpool_forward = ist_cpu_avgpool_forward,
    .avgpool_backward = ist_cpu_avgpool_backward,
    .maxpool_forward = ist_cpu_maxpool_forward,
    .maxpool_backward = ist_cpu_maxpool_backward,
    .linear_forward = ist_cpu_linear_forward,
    .linear_backward = ist_cpu_linear_backward,
    .cross_entropy = cpu_cross_entropy,
    .kd_loss = cpu_kd_loss,
    .quantize_forward = cpu_quantize_forward,
    .quantize_backward = cpu_quantize_backward,
    .generate_forward = ist_cpu_generate_forward,
    .generate_backward = ist_cpu_generate_backward,
    .gconv_forward = ist_cpu_gconv_forward,
    .gconv_backward = ist_cpu_gconv_backward,
    .baseline_forward = ist_cpu_baseline_forward,
    .baseline_backward = ist_cpu_baseline_backward,
    .ortho_forward = cpu_ortho_forward,
    .ortho_backward = ist_cpu_ortho_backward,
    .radam_update = ist_cpu_radam_update,
    .sq_diff = ist_cpu_sq_diff,
    .hardswish_forward = ist_cpu_hardswish_forward,
    .hardswish_backward = ist_cpu_hardswish_backward,
    .hardsigmoid_forward = ist_cpu_hardsigmoid_forward,
    .hardsigmoid_backward = ist_cpu_hardsigmoid_backward,
    .silu_forward = ist_cpu_silu_forward,
    .silu_backward = ist_cpu_silu_backward,
    .sigmoid_forward = ist_cpu_sigmoid_forward,
    .sigmoid_backward = ist_cpu_sigmoid_backward,
    .channel_scale_forward = ist_cpu_channel_scale_forward,
    .channel_scale_backward = ist_cpu_channel_scale_backward,
    .channel_bias_forward = ist_cpu_channel_bias_forward,
    .channel_bias_backward = ist_cpu_channel_bias_backward,
    .dropout_forward = ist_cpu_dropout_forward,
    .dropout_backward = ist_cpu_dropout_backward,
    .act_quantize_forward = ist_cpu_act_quantize_forward,
    .act_quantize_backward = ist_cpu_act_quantize_backward,
};

const ist_backend *ist_backend_cpu(void) { return &cpu_backend; }
