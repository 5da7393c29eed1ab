/* The fused generated convolution (kernels/cuda/gconv_fused.cu): conv(x, V·{U_j·Wb_j}) whose
 * weight W never exists in global memory. Each CTA reads the layer's factors, generates the W
 * tile it needs in shared memory (SPEC §2: level 1 Wc_j = U_j·Wb_j, level 2 W = V·Wc) and
 * multiplies it with the input tile at once (implicit GEMM). Versions live side by side
 * (STYLE 13): v1 plain FP32 on the SIMT cores, v2 on the tensor cores (mma.sync, TF32 or BF16
 * inputs, FP32 accumulation). The execution choice (--conv-exec) and precision (--precision) of
 * the program map onto `version` and `precision` here.
 *
 * Factors are the quantized ones the forward uses (the training-time fake-quantized FP32 values),
 * or the packed low-bit codes + fp32 scale of the `.compressed` file (models/compressed.c), which
 * the CTA dequantizes as it reads them. Gradients are with respect to the quantized factors; the
 * straight-through quantizer backward (ist_cuda_quantize_backward) is the caller's, as for the
 * factored path (gconv_backward). */
#ifndef IST_GCONV_FUSED_H
#define IST_GCONV_FUSED_H
#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { IST_FUSED_V1 = 1, IST_FUSED_V2 = 2 } ist_fused_version;
/* Multiply precision: FP32 (SIMT, v1), TF32 or BF16 inputs with FP32 accumulation (v2). */
typedef enum { IST_PREC_FP32 = 0, IST_PREC_TF32 = 1, IST_PREC_BF16 = 2 } ist_fused_precision;

/* One factor tensor in device memory: FP32 values, or (codes != NULL) q-bit codes packed
 * little-endian bit by bit (code i at bits [i·bits, (i+1)·bits)), value = (code − n)·scale/n with
 * n = 2^(bits−1) − 1, or ±scale for bits = 1; scale is one device float. */
typedef struct {
  const float *values;
  const uint8_t *codes;
  int bits;
  const float *scale;
} ist_fused_factor;

/* A layer's factors: wb, u (level 1 on), wc (the free Wc when level 1 is off), v (level 2 on). */
typedef struct {
  ist_fused_factor wb, u, wc, v;
} ist_fused_factors;

/* The factors as FP32 values (any of them may be NULL where its level is off). */
ist_fused_factors ist_fused_factors_f32(const float *wb, const float *u, const float *wc, const float *v);

/* 1 when `version` at `precision` runs this layer; 0 with a reason in *why (static text) when not
 * (depthwise or grouped convs, v1 at a precision other than FP32, …): the caller then takes the
 * materialized or factored path. */
int ist_cuda_gconv_fused_eligible(int version, ist_fused_precision precision, const ist_conv_shape *s,
                                  const ist_gen_shape *g, const char **why);

/* Floats of scratch (ws) the backward needs: the dense dW (co × K) and its deterministic split-M
 * partials, and Wc / dWc (nb × K). The forward needs none. */
size_t ist_cuda_gconv_fused_ws_floats(const ist_conv_shape *s, const ist_gen_shape *g);

/* Shared memory (bytes) below which a CTA keeps its whole generated W tile resident across every
 * M tile it runs (generation paid once per CTA); above it, each K chunk is generated per M tile.
 * The default is the device's opt-in limit; tests lower it to exercise both modes. 0 restores. */
void ist_cuda_gconv_fused_set_resident_limit(size_t bytes);

/* How a version runs a layer (forward, or backward_data): the CTA grid (channel tiles × persistent
 * M tiles), shared memory, whether the CTA's whole W tile stays resident (generated once per CTA)
 * or is generated per K chunk and M tile, and how many times each W element is generated per call
 * (the generation work is that × the generator's multiply-adds per element, SPEC §2). */
typedef struct {
  int resident;
  int chunk; /* channels per K chunk: input channels (forward), output channels (backward-data) */
  int jb;    /* level-1 rows generated at once */
  unsigned grid_x, grid_y;
  size_t smem_bytes;
  double generations;
} ist_fused_plan;
void ist_cuda_gconv_fused_plan(int version, int backward_data, const ist_conv_shape *s, const ist_gen_shape *g,
                               ist_fused_plan *p);

/* y = conv(x, W) with W generated in shared memory. */
void ist_cuda_gconv_fused_forward(int version, ist_fused_precision precision, const ist_conv_shape *s,
                                  const ist_gen_shape *g, const ist_fused_factors *f, const float *x, float *y);
/* dx (overwritten) = conv^T(dy) with W generated in shared memory (transposed tiles). */
void ist_cuda_gconv_fused_backward_data(int version, ist_fused_precision precision, const ist_conv_shape *s,
                                        const ist_gen_shape *g, const ist_fused_factors *f, const float *dy,
                                        float *dx);
/* Weight gradient through both levels: dW = dy ⋆ x (implicit GEMM, deterministic split-M in ws),
 * then dV += dW·Wcᵀ, dWc = Vᵀ·dW, dU_j += dWc_j·Wb_jᵀ, dWb_j += U_jᵀ·dWc_j; level 1 off: dwc += dWc.
 * Every gradient is accumulated (any may be NULL where its level is off). FP32 factors only. */
void ist_cuda_gconv_fused_backward_weights(const ist_conv_shape *s, const ist_gen_shape *g, const float *dy,
                                           const float *x, const float *wb, const float *u, const float *wc,
                                           const float *v, float *dwb, float *du, float *dwc, float *dv, float *ws);

#ifdef __cplusplus
}
#endif
#endif
