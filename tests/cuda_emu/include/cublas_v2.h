/* The cuBLAS subset insitu uses, for the CPU execution check (IST_CUDA_EMU): column-major GEMM/GEMV
 * on OpenBLAS's CBLAS, with cuBLAS's argument checks (a transposed or mis-strided call fails or
 * computes the wrong product here too). Usable from C11 and C++; every function is a macro onto an
 * ist_emu_ symbol. See docs/EMULATION.md. */
#ifndef IST_EMU_CUBLAS_V2_H
#define IST_EMU_CUBLAS_V2_H
#include "cuda_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ist_emu_cublas *cublasHandle_t;
typedef enum {
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_STATUS_NOT_INITIALIZED = 1,
  CUBLAS_STATUS_ALLOC_FAILED = 3,
  CUBLAS_STATUS_INVALID_VALUE = 7,
  CUBLAS_STATUS_ARCH_MISMATCH = 8,
  CUBLAS_STATUS_MAPPING_ERROR = 11,
  CUBLAS_STATUS_EXECUTION_FAILED = 13,
  CUBLAS_STATUS_INTERNAL_ERROR = 14,
  CUBLAS_STATUS_NOT_SUPPORTED = 15
} cublasStatus_t;
typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_OP_C = 2 } cublasOperation_t;
typedef enum {
  CUBLAS_DEFAULT_MATH = 0,
  CUBLAS_TENSOR_OP_MATH = 1,
  CUBLAS_PEDANTIC_MATH = 2,
  CUBLAS_TF32_TENSOR_OP_MATH = 3
} cublasMath_t;
typedef enum { CUBLAS_POINTER_MODE_HOST = 0, CUBLAS_POINTER_MODE_DEVICE = 1 } cublasPointerMode_t;

#define cublasCreate ist_emu_cublasCreate
#define cublasDestroy ist_emu_cublasDestroy
#define cublasSetStream ist_emu_cublasSetStream
#define cublasGetStream ist_emu_cublasGetStream
#define cublasSetMathMode ist_emu_cublasSetMathMode
#define cublasGetMathMode ist_emu_cublasGetMathMode
#define cublasSetPointerMode ist_emu_cublasSetPointerMode
#define cublasGetPointerMode ist_emu_cublasGetPointerMode
#define cublasSgemm ist_emu_cublasSgemm
#define cublasSgemmStridedBatched ist_emu_cublasSgemmStridedBatched
#define cublasSgemv ist_emu_cublasSgemv
#define cublasSgeam ist_emu_cublasSgeam
#define cublasGetStatusString ist_emu_cublasGetStatusString

cublasStatus_t cublasCreate(cublasHandle_t *h);
cublasStatus_t cublasDestroy(cublasHandle_t h);
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s);
cublasStatus_t cublasGetStream(cublasHandle_t h, cudaStream_t *s);
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode);
cublasStatus_t cublasGetMathMode(cublasHandle_t h, cublasMath_t *mode);
cublasStatus_t cublasSetPointerMode(cublasHandle_t h, cublasPointerMode_t mode);
cublasStatus_t cublasGetPointerMode(cublasHandle_t h, cublasPointerMode_t *mode);
/* C = alpha·op(A)·op(B) + beta·C, column-major; op(A) m×k, op(B) k×n, C m×n. Under
 * CUBLAS_TF32_TENSOR_OP_MATH A and B are rounded to TF32 first, as the tensor cores read them. */
cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta,
                           float *C, int ldc);
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const float *alpha, const float *A, int lda, long long strideA,
                                         const float *B, int ldb, long long strideB, const float *beta, float *C,
                                         int ldc, long long strideC, int batch);
/* y = alpha·op(A)·x + beta·y, A m×n column-major. */
cublasStatus_t cublasSgemv(cublasHandle_t h, cublasOperation_t ta, int m, int n, const float *alpha, const float *A,
                           int lda, const float *x, int incx, const float *beta, float *y, int incy);
/* C = alpha·op(A) + beta·op(B), C m×n column-major (also the usual way to transpose). */
cublasStatus_t cublasSgeam(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                           const float *alpha, const float *A, int lda, const float *beta, const float *B, int ldb,
                           float *C, int ldc);
const char *cublasGetStatusString(cublasStatus_t s);

#ifdef __cplusplus
}
#endif
#endif
