/* Which implementation the CUDA convolution (conv2d.cu) runs: cuDNN (real GPUs only) or our own
 * kernels (implicit-GEMM and direct; the only ones under the CPU execution check). A global choice,
 * so tests can compare both against the CPU. */
#ifndef IST_CUDA_CONV2D_H
#define IST_CUDA_CONV2D_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { IST_CONV_CUDNN, IST_CONV_OWN } ist_conv_impl;

/* Default: IST_CONV_CUDNN on a GPU, IST_CONV_OWN under the execution check (where asking for cuDNN
 * also gives IST_CONV_OWN). cuDNN runs a shape only once ist_cuda_conv_ws_floats has chosen its
 * algorithms (and sized the scratch for them); other shapes run our kernels. */
void ist_cuda_set_conv_impl(ist_conv_impl impl);
ist_conv_impl ist_cuda_conv_impl(void);

#ifdef __cplusplus
}
#endif
#endif
