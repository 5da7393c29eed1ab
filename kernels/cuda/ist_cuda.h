/* The kernel language of kernels/cuda/: one launch macro and the device primitives every kernel
 * uses. nvcc compiles them to real CUDA (launch syntax, inline PTX); the CPU execution check
 * (IST_CUDA_EMU: g++ compiles the same .cu files as C++) gets them from tests/cuda_emu/cuda_emu.h,
 * which runs them on fibers with the checks a GPU does not give (docs/EMULATION.md).
 *
 * Rules for kernels (STYLE 12): launch only with IST_LAUNCH; declare shared memory only with
 * IST_SHARED / IST_DYNAMIC_SHARED and reach it only through the ist_sptr<T> they give (index,
 * +offset, ist_scast); no inline PTX or raw <<<>>> outside this header. */
#ifndef IST_CUDA_H
#define IST_CUDA_H

#if defined(IST_CUDA_EMU)
#include "tests/cuda_emu/cuda_emu.h"
#else
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>

/* Launch kernel on grid × block threads with smem bytes of dynamic shared memory on stream. The
 * caller checks cudaGetLastError() afterwards (IST_CUDA_CHECK_LAUNCH in cuda_common.h). */
#define IST_LAUNCH(kernel, grid, block, smem, stream, ...) \
  kernel<<<(grid), (block), (smem), (stream)>>>(__VA_ARGS__)

/* A pointer into shared memory. Under the execution check it is a checked handle (bounds, races,
 * reads before writes); here it is a plain pointer. */
template <class T>
using ist_sptr = T *;
/* count elements of T in static shared memory, as `name` (an ist_sptr<T>). */
#define IST_SHARED(T, name, count)               \
  __shared__ __align__(16) T name##_store_[count]; \
  ist_sptr<T> name = name##_store_
/* The launch's dynamic shared memory (IST_LAUNCH's smem bytes), as `name`. */
#define IST_DYNAMIC_SHARED(T, name)                       \
  extern __shared__ __align__(16) unsigned char ist_dyn_smem_[]; \
  ist_sptr<T> name = reinterpret_cast<T *>(ist_dyn_smem_)
/* Reinterpret a shared pointer (e.g. float → float4 for 16-byte accesses). */
template <class U, class T>
__device__ __forceinline__ ist_sptr<U> ist_scast(ist_sptr<T> p) {
  return reinterpret_cast<U *>(p);
}
/* The 32-bit shared-state-space address that ldmatrix and cp.async take. */
template <class T>
__device__ __forceinline__ uint32_t ist_smem_addr_(ist_sptr<T> p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

/* ---- Tensor cores: mma.sync, FP32 accumulation (PTX ISA "Matrix fragments for mma.m16n8k8 /
 * mma.m16n8k16"). Per lane: g = lane >> 2, t = lane & 3.
 * TF32 m16n8k8 (A 16×8 row-major, B 8×8 col-major, C/D 16×8):
 *   a[0] = A[g][t]     a[1] = A[g+8][t]   a[2] = A[g][t+4]   a[3] = A[g+8][t+4]
 *   b[0] = B[t][g]     b[1] = B[t+4][g]
 *   c[0] = C[g][2t]    c[1] = C[g][2t+1]  c[2] = C[g+8][2t]  c[3] = C[g+8][2t+1]
 *   (a, b hold FP32 bit patterns; the tensor core reads them as TF32, use ist_f32_to_tf32 to round.)
 * BF16 m16n8k16 (each register packs two bf16, the lower column/row in the low half):
 *   a[0] = A[g][2t..2t+1]    a[1] = A[g+8][2t..2t+1]  a[2] = A[g][2t+8..+9]  a[3] = A[g+8][2t+8..+9]
 *   b[0] = B[2t..2t+1][g]    b[1] = B[2t+8..+9][g]
 *   c, d as for TF32. */
__device__ __forceinline__ void ist_mma_tf32_16x8x8(float d[4], const uint32_t a[4], const uint32_t b[2],
                                                    const float c[4]) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
        "f"(c[3]));
}
__device__ __forceinline__ void ist_mma_bf16_16x8x16(float d[4], const uint32_t a[4], const uint32_t b[2],
                                                     const float c[4]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
        "f"(c[3]));
}
/* FP32 → TF32 (round to nearest, ties away), as a 32-bit pattern. */
__device__ __forceinline__ uint32_t ist_f32_to_tf32(float x) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
  return r;
}
/* Two floats → packed bf16x2 (round to nearest even); lo in the low 16 bits. */
__device__ __forceinline__ uint32_t ist_pack_bf16x2(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t *>(&v);
}

/* ---- ldmatrix: 8×8 matrices of 16-bit elements from shared memory, warp-collective. Lanes
 * 8i..8i+7 give the addresses of the 8 rows (16 bytes each) of matrix i (x1: lanes 0–7; x2: 0–15;
 * x4: 0–31); lane l receives in r[i] the elements (l>>2, 2(l&3)) and (l>>2, 2(l&3)+1) of matrix i,
 * or with _trans those of its transpose. */
template <class T>
__device__ __forceinline__ void ist_ldmatrix_x1(uint32_t r[1], ist_sptr<T> row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(ist_smem_addr_(row)));
}
template <class T>
__device__ __forceinline__ void ist_ldmatrix_x2(uint32_t r[2], ist_sptr<T> row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(ist_smem_addr_(row)));
}
template <class T>
__device__ __forceinline__ void ist_ldmatrix_x4(uint32_t r[4], ist_sptr<T> row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(ist_smem_addr_(row)));
}
template <class T>
__device__ __forceinline__ void ist_ldmatrix_x2_trans(uint32_t r[2], ist_sptr<T> row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(ist_smem_addr_(row)));
}
template <class T>
__device__ __forceinline__ void ist_ldmatrix_x4_trans(uint32_t r[4], ist_sptr<T> row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(ist_smem_addr_(row)));
}

/* ---- cp.async: global → shared copies that complete asynchronously. A thread sees its own copies
 * after ist_cp_async_wait_group<N>() (all but its N most recent committed groups are done) or
 * ist_cp_async_wait_all(); other threads see them only after a __syncthreads() that follows. */
template <class T>
__device__ __forceinline__ void ist_cp_async_16(ist_sptr<T> dst, const void *src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(ist_smem_addr_(dst)), "l"(src));
}
/* 16 bytes when valid, else 16 zero bytes (src is not read). */
template <class T>
__device__ __forceinline__ void ist_cp_async_16_zfill(ist_sptr<T> dst, const void *src, bool valid) {
  int n = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(ist_smem_addr_(dst)), "l"(src), "r"(n));
}
template <class T>
__device__ __forceinline__ void ist_cp_async_4(ist_sptr<T> dst, const void *src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(ist_smem_addr_(dst)), "l"(src));
}
/* 4 bytes when valid, else 4 zero bytes. */
template <class T>
__device__ __forceinline__ void ist_cp_async_4_zfill(ist_sptr<T> dst, const void *src, bool valid) {
  int n = valid ? 4 : 0;
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(ist_smem_addr_(dst)), "l"(src), "r"(n));
}
__device__ __forceinline__ void ist_cp_async_commit(void) { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void ist_cp_async_wait_group(void) {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}
__device__ __forceinline__ void ist_cp_async_wait_all(void) { asm volatile("cp.async.wait_all;\n" ::); }
#endif /* IST_CUDA_EMU */

/* Under both: whether this build runs on a real GPU (0 under the execution check). */
#if defined(IST_CUDA_EMU)
#define IST_CUDA_REAL 0
#else
#define IST_CUDA_REAL 1
#endif
#endif
