/* The CPU backend's kernels (the reference implementation of every op in kernels/backend.h). */
#ifndef IST_CPU_H
#define IST_CPU_H
#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Row-major sgemm: C = alpha·op(A)·op(B) + beta·C, op(A) m×k, op(B) k×n. */
void ist_cpu_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                  const float *b, int ldb, float beta, float *c, int ldc);

void ist_cpu_conv2d_forward(const ist_conv_shape *s, const float *x, const float *w, const float *bias, float *y,
                            float *ws);
void ist_cpu_conv2d_backward(const ist_conv_shape *s, const float *dy, const float *x, const float *w, float *dx,
                             float *dw, float *dbias, float *ws);
/* Grouped convolution computed directly, one image at a time (kernels/cpu/conv2d_grouped.c):
 * group j maps cig input channels to cog output channels. */
typedef struct {
  int groups, cig, cog, h, w, k, stride, pad, ho, wo;
} ist_grouped;
ist_grouped ist_grouped_of(const ist_conv_shape *s);
size_t ist_grouped_scratch_floats(const ist_grouped *q);
void ist_grouped_forward_image(const ist_grouped *q, const float *in, const float *wt, float *out, float *scratch);
/* din (may be NULL) overwritten; dwt accumulated. */
void ist_grouped_backward_image(const ist_grouped *q, const float *dout, const float *in, const float *wt, float *din,
                                float *dwt, float *scratch);
size_t ist_cpu_conv2d_grouped_ws_floats(const ist_conv_shape *s);
void ist_cpu_conv2d_grouped_forward(const ist_conv_shape *s, const float *x, const float *w, const float *bias,
                                    float *y, float *ws);
void ist_cpu_conv2d_grouped_backward(const ist_conv_shape *s, const float *dy, const float *x, const float *w,
                                     float *dx, float *dw, float *dbias, float *ws);

/* Direct seven-loop convolution: the obviously-right reference the fast path is tested against. */
void ist_cpu_conv2d_forward_ref(const ist_conv_shape *s, const float *x, const float *w, const float *bias,
                                float *y);
void ist_cpu_conv2d_backward_ref(const ist_conv_shape *s, const float *dy, const float *x, const float *w,
                                 float *dx, float *dw, float *dbias);

void ist_cpu_batchnorm_forward(int n, int c, int hw, const float *x, const float *gamma, const float *beta,
                               float *y, float *save_mean, float *save_rstd, float *run_mean, float *run_var,
                               float momentum, float eps, int training, const ist_reducer *sync);
void ist_cpu_batchnorm_backward(int n, int c, int hw, const float *dy, const float *x, const float *gamma,
                                const float *save_mean, const float *save_rstd, float *dx, float *dgamma,
                                float *dbeta, int training, const ist_reducer *sync);

void ist_cpu_add(int64_t n, const float *a, const float *b, float *y);
void ist_cpu_scale(int64_t n, float a, float *x);
void ist_cpu_copy_channels(int n, int hw, int c, const float *src, int src_c, int src_off, float *dst, int dst_c,
                           int dst_off, int accumulate);
void ist_cpu_relu_forward(int64_t n, const float *x, float *y);
void ist_cpu_relu_backward(int64_t n, const float *dy, const float *y, float *dx);
void ist_cpu_relu6_forward(int64_t n, const float *x, float *y);
void ist_cpu_relu6_backward(int64_t n, const float *dy, const float *y, float *dx);

void ist_cpu_avgpool_forward(int n, int c, int h, int w, int oh, int ow, const float *x, float *y);
void ist_cpu_avgpool_backward(int n, int c, int h, int w, int oh, int ow, const float *dy, float *dx);

void ist_cpu_maxpool_forward(int n, int c, int h, int w, int k, int stride, int pad, const float *x, float *y,
                             int32_t *idx);
void ist_cpu_maxpool_backward(int n, int c, int h, int w, int oh, int ow, const float *dy, const int32_t *idx,
                              float *dx);

void ist_cpu_linear_forward(int n, int in, int out, const float *x, const float *w, const float *b, float *y);
void ist_cpu_linear_backward(int n, int in, int out, const float *dy, const float *x, const float *w, float *dx,
                             float *dw, float *db);

float ist_cpu_cross_entropy(int n, int c, const float *logits, const int32_t *labels, float *dlogits,
                            int *correct);
float ist_cpu_kd_loss(int n, int c, const float *student, const float *teacher, const int32_t *labels,
                      float beta, float temperature, float *dlogits, int *correct);
/* softmax(x / t) of one row of c logits into p. */
void ist_cpu_softmax_row(int c, const float *x, float t, float *p);

float ist_cpu_quantize_forward(int64_t n, int bits, const float *x, float *y);
void ist_cpu_quantize_backward(int64_t n, int bits, float scale, const float *x, const float *dy, float *dx);

void ist_cpu_generate_forward(const ist_gen_shape *g, const float *wb, const float *u, const float *v, float *wc,
                              float *w);
void ist_cpu_generate_backward(const ist_gen_shape *g, const float *dw, const float *wb, const float *u,
                               const float *v, const float *wc, float *dwb, float *du, float *dv, float *dwc);

void ist_cpu_gconv_forward(const ist_conv_shape *s, const ist_gen_shape *g, const float *x, const float *wb,
                           const float *u, const float *wc, const float *v, float *t1, float *t2, float *y,
                           float *ws);
void ist_cpu_gconv_backward(const ist_conv_shape *s, const ist_gen_shape *g, const float *dy, const float *x,
                            const float *wb, const float *u, const float *wc, const float *v, const float *t1,
                            const float *t2, float *dx, float *dwb, float *du, float *dwc, float *dv, float *ws);

void ist_cpu_baseline_forward(const ist_base_shape *b, const float *p1, const float *p2, float *w);
void ist_cpu_baseline_backward(const ist_base_shape *b, const float *dw, const float *p1, const float *p2, float *dp1,
                               float *dp2);

float ist_cpu_ortho_forward(const ist_gen_shape *g, const float *wb, const float *u, const float *v);
void ist_cpu_ortho_backward(float scale, const ist_gen_shape *g, const float *wb, const float *u, const float *v,
                            float *dwb, float *du, float *dv);

void ist_cpu_radam_update(int64_t n, float *param, const float *grad, float *m, float *v, int step,
                          const ist_radam_hparams *h);

/* grad = 2·(a − b)/n (the mean squared error's gradient); *loss_sum += Σ(a − b)²/n (loss_sum may be NULL). */
void ist_cpu_sq_diff(int64_t n, const float *a, const float *b, float *grad, float *loss_sum);

/* Thin SVD of a (m × n, row-major) by one-sided Jacobi: a = u·diag(s)·vt.
 * Writes r = min(m, n) singular values in s (descending), u (m × r), vt (r × n). */
int ist_cpu_svd(int m, int n, const float *a, float *u, float *s, float *vt);
/* The same by one-sided Jacobi: the slow, simple reference (singular vectors agree up to sign). */
int ist_cpu_svd_ref(int m, int n, const float *a, float *u, float *s, float *vt);

/* The compact networks' ops and activation quantization (kernels/cpu/activations.c). */
void ist_cpu_hardswish_forward(int64_t n, const float *x, float *y);
void ist_cpu_hardswish_backward(int64_t n, const float *dy, const float *x, float *dx);
void ist_cpu_hardsigmoid_forward(int64_t n, const float *x, float *y);
void ist_cpu_hardsigmoid_backward(int64_t n, const float *dy, const float *x, float *dx);
void ist_cpu_silu_forward(int64_t n, const float *x, float *y);
void ist_cpu_silu_backward(int64_t n, const float *dy, const float *x, float *dx);
void ist_cpu_sigmoid_forward(int64_t n, const float *x, float *y);
void ist_cpu_sigmoid_backward(int64_t n, const float *dy, const float *y, float *dx);
void ist_cpu_channel_scale_forward(int n, int c, int hw, const float *x, const float *s, float *y);
void ist_cpu_channel_scale_backward(int n, int c, int hw, const float *dy, const float *x, const float *s, float *dx,
                                    float *ds);
void ist_cpu_channel_bias_forward(int n, int c, int hw, float *y, const float *b);
void ist_cpu_channel_bias_backward(int n, int c, int hw, const float *dy, float *db);
void ist_cpu_dropout_forward(int64_t n, int64_t group, float p, uint64_t seed, const float *x, float *y);
void ist_cpu_dropout_backward(int64_t n, int64_t group, float p, uint64_t seed, const float *dy, float *dx);
void ist_cpu_act_quantize_forward(int64_t n, int bits, const float *x, float *y, float *run_range, float *used_range,
                                  float momentum, int training);
void ist_cpu_act_quantize_backward(int64_t n, int bits, const float *used_range, const float *x, const float *dy,
                                   float *dx);

#ifdef __cplusplus
}
#endif
#endif
