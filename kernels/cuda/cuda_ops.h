/* The CUDA backend's ops (the .cu files of kernels/cuda), one per entry of the op table (kernels/backend.h),
 * named ist_cuda_<entry> with the entry's arguments. Every pointer is device memory; every op runs
 * on ist_cuda_stream() and returns without synchronizing. Scalars an op produces (a loss, a hit
 * count, a quantizer's scale) are written to device memory, never returned to the host: the
 * trainer reads them only at log intervals, epoch ends, checkpoints and evaluation. */
#ifndef IST_CUDA_OPS_H
#define IST_CUDA_OPS_H
#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* memory.cu: moving data (upload/download synchronize with the stream; the rest are async). */
void ist_cuda_upload(void *dst, const void *host_src, size_t bytes);
void ist_cuda_download(void *host_dst, const void *src, size_t bytes);
void ist_cuda_zero(float *p, int64_t n);
void ist_cuda_copy(float *dst, const float *src, int64_t n);

/* conv2d.cu: dense and grouped convolution (own implicit-GEMM kernels; cuDNN where the backend is
 * told to use it on a GPU). Scratch: ist_cuda_conv_ws_floats. */
size_t ist_cuda_conv_ws_floats(const ist_conv_shape *s);
void ist_cuda_conv2d_forward(const ist_conv_shape *s, const float *x, const float *w, const float *bias, float *y,
                             float *ws);
void ist_cuda_conv2d_backward(const ist_conv_shape *s, const float *dy, const float *x, const float *w, float *dx,
                              float *dw, float *dbias, float *ws);

/* batchnorm.cu. sync (host reducer, data-parallel over MPI) may only be used when the statistics
 * are staged through the host; the NCCL path reduces device buffers (see backend_cuda.c). */
void ist_cuda_batchnorm_forward(int n, int c, int hw, const float *x, const float *gamma, const float *beta, float *y,
                                float *save_mean, float *save_rstd, float *run_mean, float *run_var, float momentum,
                                float eps, int training, const ist_reducer *sync);
void ist_cuda_batchnorm_backward(int n, int c, int hw, const float *dy, const float *x, const float *gamma,
                                 const float *save_mean, const float *save_rstd, float *dx, float *dgamma,
                                 float *dbeta, int training, const ist_reducer *sync);

/* elementwise.cu */
void ist_cuda_copy_channels(int n, int hw, int c, const float *src, int src_c, int src_off, float *dst, int dst_c,
                            int dst_off, int accumulate);
void ist_cuda_add(int64_t n, const float *a, const float *b, float *y);
void ist_cuda_scale(int64_t n, float a, float *x);
void ist_cuda_relu_forward(int64_t n, const float *x, float *y);
void ist_cuda_relu_backward(int64_t n, const float *dy, const float *y, float *dx);
void ist_cuda_relu6_forward(int64_t n, const float *x, float *y);
void ist_cuda_relu6_backward(int64_t n, const float *dy, const float *y, float *dx);

/* pooling.cu */
void ist_cuda_avgpool_forward(int n, int c, int h, int w, int oh, int ow, const float *x, float *y);
void ist_cuda_avgpool_backward(int n, int c, int h, int w, int oh, int ow, const float *dy, float *dx);
void ist_cuda_maxpool_forward(int n, int c, int h, int w, int k, int stride, int pad, const float *x, float *y,
                              int32_t *idx);
void ist_cuda_maxpool_backward(int n, int c, int h, int w, int oh, int ow, const float *dy, const int32_t *idx,
                               float *dx);

/* linear.cu (cuBLAS) */
void ist_cuda_linear_forward(int n, int in, int out, const float *x, const float *w, const float *b, float *y);
void ist_cuda_linear_backward(int n, int in, int out, const float *dy, const float *x, const float *w, float *dx,
                              float *dw, float *db);

/* softmax_xent.cu, kd_loss.cu: *loss_sum += the batch's mean loss, *correct += its argmax hits (both device scalars;
 * correct may be NULL); dlogits (may be NULL) gets the gradient of the mean loss. */
void ist_cuda_cross_entropy(int n, int c, const float *logits, const int32_t *labels, float *dlogits,
                            float *loss_sum, int32_t *correct);
void ist_cuda_kd_loss(int n, int c, const float *student, const float *teacher, const int32_t *labels, float beta,
                      float temperature, float *dlogits, float *loss_sum, int32_t *correct);

/* quantize.cu: the CPU quantizer's algorithm (the same clip candidates, the same choice); the
 * chosen scale is written to *scale (device), which the backward reads. */
void ist_cuda_quantize_forward(int64_t n, int bits, const float *x, float *y, float *scale);
void ist_cuda_quantize_backward(int64_t n, int bits, const float *scale, const float *x, const float *dy, float *dx);

/* generator.cu (cuBLAS GEMMs) */
void ist_cuda_generate_forward(const ist_gen_shape *g, const float *wb, const float *u, const float *v, float *wc,
                               float *w);
void ist_cuda_generate_backward(const ist_gen_shape *g, const float *dw, const float *wb, const float *u,
                                const float *v, const float *wc, float *dwb, float *du, float *dv, float *dwc);

/* gconv.cu: factored execution, V ⋆ (Wb ⋆ (U ⋆ x)). Scratch: ist_cuda_gconv_ws_floats. */
size_t ist_cuda_gconv_ws_floats(const ist_conv_shape *s, const ist_gen_shape *g);
void ist_cuda_gconv_forward(const ist_conv_shape *s, const ist_gen_shape *g, const float *x, const float *wb,
                            const float *u, const float *wc, const float *v, float *t1, float *t2, float *y,
                            float *ws);
void ist_cuda_gconv_backward(const ist_conv_shape *s, const ist_gen_shape *g, const float *dy, const float *x,
                             const float *wb, const float *u, const float *wc, const float *v, const float *t1,
                             const float *t2, float *dx, float *dwb, float *du, float *dwc, float *dv, float *ws);

/* baseline_convs.cu */
void ist_cuda_baseline_forward(const ist_base_shape *b, const float *p1, const float *p2, float *w);
void ist_cuda_baseline_backward(const ist_base_shape *b, const float *dw, const float *p1, const float *p2,
                                float *dp1, float *dp2);

/* ortho.cu: *loss_sum += the layer's penalty (device scalar). */
void ist_cuda_ortho_forward(const ist_gen_shape *g, const float *wb, const float *u, const float *v,
                            float *loss_sum);
void ist_cuda_ortho_backward(float scale, const ist_gen_shape *g, const float *wb, const float *u, const float *v,
                             float *dwb, float *du, float *dv);

/* radam.cu: one launch over n contiguous parameters (the whole parameter arena). */
void ist_cuda_radam_update(int64_t n, float *param, const float *grad, float *m, float *v, int step,
                           const ist_radam_hparams *h);

/* sq_diff.cu: grad = 2·(a − b)/n; *loss_sum += Σ(a − b)²/n when loss_sum is not NULL (one block
 * reduces, in a fixed order: deterministic). */
void ist_cuda_sq_diff(int64_t n, const float *a, const float *b, float *grad, float *loss_sum);

#ifdef __cplusplus
}
#endif
#endif
