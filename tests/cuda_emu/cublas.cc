/* cuBLAS for the CPU execution check: the column-major calls insitu makes, on OpenBLAS's CBLAS, with
 * cuBLAS's argument checks and a check that every matrix lies inside device memory (a transposed
 * argument or a wrong leading dimension fails or computes a wrong product here, as on a GPU). */
#include <cblas.h>
#include <cublas_v2.h>

#include <cstring>
#include <vector>

#include "tests/cuda_emu/emu_internal.h"

struct ist_emu_cublas {
  cudaStream_t stream;
  cublasMath_t math;
  cublasPointerMode_t pointer_mode;
};

namespace {
CBLAS_TRANSPOSE cblas_op(cublasOperation_t op) { return op == CUBLAS_OP_N ? CblasNoTrans : CblasTrans; }
bool valid_op(cublasOperation_t op) { return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C; }

/* A column-major rows × cols matrix with leading dimension ld must lie in one allocation. */
bool in_device(const float *p, int rows, int cols, int ld) {
  if (rows == 0 || cols == 0) return true;
  size_t floats = (size_t)(cols - 1) * (size_t)ld + (size_t)rows;
  return ist_emu_is_device_range(p, floats * sizeof(float));
}
cublasStatus_t outside(const char *call, const char *which, const float *p, int rows, int cols, int ld) {
  ist_emu::report_fault(cudaErrorIllegalAddress,
                        ist_emu::format("%s: matrix %s (%d × %d, ld %d, at %p) is not inside one cudaMalloc "
                                        "allocation",
                                        call, which, rows, cols, ld, (const void *)p));
  return CUBLAS_STATUS_EXECUTION_FAILED;
}
/* The tensor cores read FP32 operands as TF32 (cvt.rna: round to nearest, ties away). */
void round_tf32(std::vector<float> &v) {
  for (float &x : v) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;
    memcpy(&x, &u, 4);
  }
}

cublasStatus_t gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha,
                    const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
                    const char *call) {
  int ar = ta == CUBLAS_OP_N ? m : k, ac = ta == CUBLAS_OP_N ? k : m;
  int br = tb == CUBLAS_OP_N ? k : n, bc = tb == CUBLAS_OP_N ? n : k;
  if (!in_device(A, ar, ac, lda)) return outside(call, "A", A, ar, ac, lda);
  if (!in_device(B, br, bc, ldb)) return outside(call, "B", B, br, bc, ldb);
  if (!in_device(C, m, n, ldc)) return outside(call, "C", C, m, n, ldc);
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  if (h->math == CUBLAS_TF32_TENSOR_OP_MATH && k > 0) {
    std::vector<float> a(A, A + (size_t)(ac - 1) * lda + ar), b(B, B + (size_t)(bc - 1) * ldb + br);
    round_tf32(a);
    round_tf32(b);
    cblas_sgemm(CblasColMajor, cblas_op(ta), cblas_op(tb), m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, C, ldc);
  } else {
    cblas_sgemm(CblasColMajor, cblas_op(ta), cblas_op(tb), m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
  }
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t gemm_args(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                         const float *alpha, int lda, int ldb, const float *beta, int ldc, const char *call) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  cudaError_t s = ist_emu::sticky();
  if (s != cudaSuccess) return CUBLAS_STATUS_EXECUTION_FAILED;
  int ar = ta == CUBLAS_OP_N ? m : k, br = tb == CUBLAS_OP_N ? k : n;
  const char *why = !valid_op(ta) || !valid_op(tb) ? "bad operation"
                    : m < 0 || n < 0 || k < 0      ? "negative m, n or k"
                    : lda < (ar > 1 ? ar : 1)      ? "lda is less than the rows of A as stored"
                    : ldb < (br > 1 ? br : 1)      ? "ldb is less than the rows of B as stored"
                    : ldc < (m > 1 ? m : 1)        ? "ldc is less than m"
                    : !alpha || !beta              ? "null alpha or beta"
                                                   : nullptr;
  if (why) {
    ist_emu::report_note(ist_emu::format("%s(%c, %c, m=%d, n=%d, k=%d, lda=%d, ldb=%d, ldc=%d): invalid value: %s",
                                          call, ta == CUBLAS_OP_N ? 'N' : 'T', tb == CUBLAS_OP_N ? 'N' : 'T', m, n, k,
                                          lda, ldb, ldc, why));
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  return CUBLAS_STATUS_SUCCESS;
}
}  // namespace

extern "C" {
cublasStatus_t ist_emu_cublasCreate(cublasHandle_t *h) {
  if (!h) return CUBLAS_STATUS_INVALID_VALUE;
  *h = new ist_emu_cublas{nullptr, CUBLAS_DEFAULT_MATH, CUBLAS_POINTER_MODE_HOST};
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t ist_emu_cublasDestroy(cublasHandle_t h) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t ist_emu_cublasSetStream(cublasHandle_t h, cudaStream_t s) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  h->stream = s;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t ist_emu_cublasGetStream(cublasHandle_t h, cudaStream_t *s) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!s) return CUBLAS_STATUS_INVALID_VALUE;
  *s = h->stream;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t ist_emu_cublasSetMathMode(cublasHandle_t h, cublasMath_t mode) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  h->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t ist_emu_cublasGetMathMode(cublasHandle_t h, cublasMath_t *mode) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!mode) return CUBLAS_STATUS_INVALID_VALUE;
  *mode = h->math;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t ist_emu_cublasSetPointerMode(cublasHandle_t h, cublasPointerMode_t mode) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  h->pointer_mode = mode;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t ist_emu_cublasGetPointerMode(cublasHandle_t h, cublasPointerMode_t *mode) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!mode) return CUBLAS_STATUS_INVALID_VALUE;
  *mode = h->pointer_mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t ist_emu_cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                   const float *alpha, const float *A, int lda, const float *B, int ldb,
                                   const float *beta, float *C, int ldc) {
  cublasStatus_t s = gemm_args(h, ta, tb, m, n, k, alpha, lda, ldb, beta, ldc, "cublasSgemm");
  if (s != CUBLAS_STATUS_SUCCESS) return s;
  return gemm(h, ta, tb, m, n, k, *alpha, A, lda, B, ldb, *beta, C, ldc, "cublasSgemm");
}

cublasStatus_t ist_emu_cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                                                 int n, int k, const float *alpha, const float *A, int lda,
                                                 long long strideA, const float *B, int ldb, long long strideB,
                                                 const float *beta, float *C, int ldc, long long strideC, int batch) {
  cublasStatus_t s = gemm_args(h, ta, tb, m, n, k, alpha, lda, ldb, beta, ldc, "cublasSgemmStridedBatched");
  if (s != CUBLAS_STATUS_SUCCESS) return s;
  if (batch < 0) return CUBLAS_STATUS_INVALID_VALUE;
  float al = *alpha, be = *beta;
  for (int i = 0; i < batch && s == CUBLAS_STATUS_SUCCESS; i++)
    s = gemm(h, ta, tb, m, n, k, al, A + i * strideA, lda, B + i * strideB, ldb, be, C + i * strideC, ldc,
             "cublasSgemmStridedBatched");
  return s;
}

cublasStatus_t ist_emu_cublasSgemv(cublasHandle_t h, cublasOperation_t ta, int m, int n, const float *alpha,
                                   const float *A, int lda, const float *x, int incx, const float *beta, float *y,
                                   int incy) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (ist_emu::sticky() != cudaSuccess) return CUBLAS_STATUS_EXECUTION_FAILED;
  if (!valid_op(ta) || m < 0 || n < 0 || lda < (m > 1 ? m : 1) || incx == 0 || incy == 0 || !alpha || !beta) {
    ist_emu::report_note(ist_emu::format("cublasSgemv(m=%d, n=%d, lda=%d, incx=%d, incy=%d): invalid value", m, n,
                                          lda, incx, incy));
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  int xn = ta == CUBLAS_OP_N ? n : m, yn = ta == CUBLAS_OP_N ? m : n;
  int ax = incx > 0 ? incx : -incx, ay = incy > 0 ? incy : -incy;
  if (!in_device(A, m, n, lda)) return outside("cublasSgemv", "A", A, m, n, lda);
  if (xn > 0 && !ist_emu_is_device_range(x, ((size_t)(xn - 1) * ax + 1) * sizeof(float)))
    return outside("cublasSgemv", "x", x, xn, 1, 1);
  if (yn > 0 && !ist_emu_is_device_range(y, ((size_t)(yn - 1) * ay + 1) * sizeof(float)))
    return outside("cublasSgemv", "y", y, yn, 1, 1);
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  cblas_sgemv(CblasColMajor, cblas_op(ta), m, n, *alpha, A, lda, x, incx, *beta, y, incy);
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t ist_emu_cublasSgeam(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                   const float *alpha, const float *A, int lda, const float *beta, const float *B,
                                   int ldb, float *C, int ldc) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (ist_emu::sticky() != cudaSuccess) return CUBLAS_STATUS_EXECUTION_FAILED;
  int ar = ta == CUBLAS_OP_N ? m : n, br = tb == CUBLAS_OP_N ? m : n;
  if (!valid_op(ta) || !valid_op(tb) || m < 0 || n < 0 || lda < (ar > 1 ? ar : 1) || ldb < (br > 1 ? br : 1) ||
      ldc < (m > 1 ? m : 1) || !alpha || !beta) {
    ist_emu::report_note(ist_emu::format("cublasSgeam(m=%d, n=%d, lda=%d, ldb=%d, ldc=%d): invalid value", m, n, lda,
                                         ldb, ldc));
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  int ac = ta == CUBLAS_OP_N ? n : m, bc = tb == CUBLAS_OP_N ? n : m;
  float al = *alpha, be = *beta;
  if (al != 0 && !in_device(A, ar, ac, lda)) return outside("cublasSgeam", "A", A, ar, ac, lda);
  if (be != 0 && !in_device(B, br, bc, ldb)) return outside("cublasSgeam", "B", B, br, bc, ldb);
  if (!in_device(C, m, n, ldc)) return outside("cublasSgeam", "C", C, m, n, ldc);
  if ((C == A && (ta != CUBLAS_OP_N || lda != ldc)) || (C == B && (tb != CUBLAS_OP_N || ldb != ldc)))
    return CUBLAS_STATUS_INVALID_VALUE; /* in place only without transposition, as cuBLAS */
  for (int j = 0; j < n; j++)
    for (int i = 0; i < m; i++) {
      float a = al != 0 ? A[ta == CUBLAS_OP_N ? i + (size_t)j * lda : j + (size_t)i * lda] : 0.0f;
      float b = be != 0 ? B[tb == CUBLAS_OP_N ? i + (size_t)j * ldb : j + (size_t)i * ldb] : 0.0f;
      C[i + (size_t)j * ldc] = al * a + be * b;
    }
  return CUBLAS_STATUS_SUCCESS;
}

const char *ist_emu_cublasGetStatusString(cublasStatus_t s) {
  switch (s) {
  case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
  case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
  case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
  case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
  case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
  case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
  case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
  case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
  case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
  default: return "CUBLAS_STATUS_UNKNOWN";
  }
}
}
