/* The CPU backend's op table, and the small memory ops it needs. */
#include <string.h>

#include "host/tensor.h"
#include "kernels/cpu/cpu.h"

static void cpu_move(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }
static void cpu_zero(float *p, int64_t n) { memset(p, 0, sizeof(float) * (size_t)n); }
static void cpu_copy(float *dst, const float *src, int64_t n) { memcpy(dst, src, sizeof(float) * (size_t)n); }

static const ist_backend cpu_backend = {
    .name = "cpu",
    .device = IST_CPU,
    .upload = cpu_move,
    .download = cpu_move,
    .zero = cpu_zero,
    .copy = cpu_copy,
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
    .cross_entropy = ist_cpu_cross_entropy,
    .kd_loss = ist_cpu_kd_loss,
    .quantize_forward = ist_cpu_quantize_forward,
    .quantize_backward = ist_cpu_quantize_backward,
    .generate_forward = ist_cpu_generate_forward,
    .generate_backward = ist_cpu_generate_backward,
    .gconv_forward = ist_cpu_gconv_forward,
    .gconv_backward = ist_cpu_gconv_backward,
    .baseline_forward = ist_cpu_baseline_forward,
    .baseline_backward = ist_cpu_baseline_backward,
    .ortho_forward = ist_cpu_ortho_forward,
    .ortho_backward = ist_cpu_ortho_backward,
    .radam_update = ist_cpu_radam_update,
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
