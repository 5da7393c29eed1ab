/* Row-major single-precision GEMMs on cuBLAS, with the argument order of ist_cpu_gemm
 * (kernels/cpu/gemm.c): C = alpha·op(A)·op(B) + beta·C, op(A) m × k, op(B) k × n, all row-major.
 * They run on ist_cuda_stream() (the context's cuBLAS handle is bound to it); `what` names the op
 * and shape in the failure message. */
#ifndef IST_CUDA_GEMM_H
#define IST_CUDA_GEMM_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

void ist_cuda_gemm(const char *what, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                   int lda, const float *b, int ldb, float beta, float *c, int ldc);
/* batch independent GEMMs; matrix i of A, B, C starts stride_a·i, stride_b·i, stride_c·i floats in
 * (a stride of 0 reuses one matrix). */
void ist_cuda_gemm_batched(const char *what, int trans_a, int trans_b, int m, int n, int k, float alpha,
                           const float *a, int lda, int64_t stride_a, const float *b, int ldb, int64_t stride_b,
                           float beta, float *c, int ldc, int64_t stride_c, int batch);

#ifdef __cplusplus
}
#endif
#endif
