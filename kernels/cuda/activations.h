/* The CUDA twins of kernels/cpu/activations.c (kernels/cuda/activations.cu): the op table's
 * compact-network block (kernels/backend.h), named ist_cuda_<entry> with the entry's arguments.
 * Device pointers; every op runs on ist_cuda_stream() without synchronizing; the activation
 * quantizer's ranges stay in device memory. */
#ifndef IST_CUDA_ACTIVATIONS_H
#define IST_CUDA_ACTIVATIONS_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

void ist_cuda_hardswish_forward(int64_t n, const float *x, float *y);
void ist_cuda_hardswish_backward(int64_t n, const float *dy, const float *x, float *dx);
void ist_cuda_hardsigmoid_forward(int64_t n, const float *x, float *y);
void ist_cuda_hardsigmoid_backward(int64_t n, const float *dy, const float *x, float *dx);
void ist_cuda_silu_forward(int64_t n, const float *x, float *y);
void ist_cuda_silu_backward(int64_t n, const float *dy, const float *x, float *dx);
void ist_cuda_sigmoid_forward(int64_t n, const float *x, float *y);
void ist_cuda_sigmoid_backward(int64_t n, const float *dy, const float *y, float *dx);
void ist_cuda_channel_scale_forward(int n, int c, int hw, const float *x, const float *s, float *y);
void ist_cuda_channel_scale_backward(int n, int c, int hw, const float *dy, const float *x, const float *s, float *dx,
                                     float *ds);
void ist_cuda_channel_bias_forward(int n, int c, int hw, float *y, const float *b);
void ist_cuda_channel_bias_backward(int n, int c, int hw, const float *dy, float *db);
void ist_cuda_dropout_forward(int64_t n, int64_t group, float p, uint64_t seed, const float *x, float *y);
void ist_cuda_dropout_backward(int64_t n, int64_t group, float p, uint64_t seed, const float *dy, float *dx);
void ist_cuda_act_quantize_forward(int64_t n, int bits, const float *x, float *y, float *run_range, float *used_range,
                                   float momentum, int training);
void ist_cuda_act_quantize_backward(int64_t n, int bits, const float *used_range, const float *x, const float *dy,
                                    float *dx);

#ifdef __cplusplus
}
#endif
#endif
