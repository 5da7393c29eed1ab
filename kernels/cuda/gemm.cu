/* Row-major GEMMs on cuBLAS (twin of kernels/cpu/gemm.c). cuBLAS is column-major: a row-major
 * C = op(A)·op(B) is the column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, and a row-major matrix read
 * column-major is its transpose, so the call swaps A and B (and m and n) and keeps the flags. */
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/gemm.h"

static cublasOperation_t op_of(int trans) { return trans ? CUBLAS_OP_T : CUBLAS_OP_N; }

extern "C" void ist_cuda_gemm(const char *what, int trans_a, int trans_b, int m, int n, int k, float alpha,
                              const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc) {
  if (m == 0 || n == 0) return;
  IST_CUBLAS_CHECK(cublasSgemm(ist_cuda_blas(), op_of(trans_b), op_of(trans_a), n, m, k, &alpha, b, ldb, a, lda,
                               &beta, c, ldc),
                   "%s gemm m=%d n=%d k=%d", what, m, n, k);
}

extern "C" void ist_cuda_gemm_batched(const char *what, int trans_a, int trans_b, int m, int n, int k, float alpha,
                                      const float *a, int lda, int64_t stride_a, const float *b, int ldb,
                                      int64_t stride_b, float beta, float *c, int ldc, int64_t stride_c, int batch) {
  if (m == 0 || n == 0 || batch == 0) return;
  IST_CUBLAS_CHECK(cublasSgemmStridedBatched(ist_cuda_blas(), op_of(trans_b), op_of(trans_a), n, m, k, &alpha, b, ldb,
                                             (long long)stride_b, a, lda, (long long)stride_a, &beta, c, ldc,
                                             (long long)stride_c, batch),
                   "%s batched gemm m=%d n=%d k=%d batch=%d", what, m, n, k, batch);
}
