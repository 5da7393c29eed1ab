/* The two-level weight generator of SPEC §2 on the GPU (twin of kernels/cpu/generator.c), as
 * cuBLAS GEMMs: level 1 is one strided-batched GEMM over the nb bases, level 2 one GEMM.
 * Layouts: Wb (nb × bi × k2), U (nb × ci × bi), Wc (nb × ci·k2), V (co × bc), W (co × ci·k2). */
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/gemm.h"

static void copy_floats(float *dst, const float *src, int64_t n, const char *what, const ist_gen_shape *g) {
  IST_CUDA_CHECK(cudaMemcpyAsync(dst, src, sizeof(float) * (size_t)n, cudaMemcpyDeviceToDevice, ist_cuda_stream()),
                 "%s co=%d ci=%d k2=%d", what, g->co, g->ci, g->k2);
}

extern "C" void ist_cuda_generate_forward(const ist_gen_shape *g, const float *wb, const float *u, const float *v,
                                          float *wc, float *w) {
  const int kk = g->ci * g->k2;
  if (g->level1) /* Wc_j (ci × k2) = U_j (ci × bi) · Wb_j (bi × k2), for every j */
    ist_cuda_gemm_batched("generate level 1", 0, 0, g->ci, g->k2, g->bi, 1.0f, u, g->bi, (int64_t)g->ci * g->bi, wb,
                          g->k2, (int64_t)g->bi * g->k2, 0.0f, wc, g->k2, kk, g->nb);
  if (g->level2) /* W (co × kk) = V (co × bc) · Wc (bc × kk) */
    ist_cuda_gemm("generate level 2", 0, 0, g->co, kk, g->bc, 1.0f, v, g->bc, wc, kk, 0.0f, w, kk);
  else if (w != wc)
    copy_floats(w, wc, (int64_t)g->co * kk, "generate W = Wc", g);
}

extern "C" void ist_cuda_generate_backward(const ist_gen_shape *g, const float *dw, const float *wb, const float *u,
                                           const float *v, const float *wc, float *dwb, float *du, float *dv,
                                           float *dwc) {
  const int kk = g->ci * g->k2;
  if (g->level2) {
    ist_cuda_gemm("generate backward dV", 0, 1, g->co, g->bc, kk, 1.0f, dw, kk, wc, kk, 1.0f, dv, g->bc); /* dV += dW·Wcᵀ */
    ist_cuda_gemm("generate backward dWc", 1, 0, g->bc, kk, g->co, 1.0f, v, g->bc, dw, kk, 0.0f, dwc, kk); /* dWc = Vᵀ·dW */
  } else if (dwc != dw) {
    copy_floats(dwc, dw, (int64_t)g->co * kk, "generate backward dWc = dW", g);
  }
  if (g->level1) {
    /* dU_j += dWc_j (ci × k2) · Wb_jᵀ;  dWb_j += U_jᵀ · dWc_j */
    ist_cuda_gemm_batched("generate backward dU", 0, 1, g->ci, g->bi, g->k2, 1.0f, dwc, g->k2, kk, wb, g->k2,
                          (int64_t)g->bi * g->k2, 1.0f, du, g->bi, (int64_t)g->ci * g->bi, g->nb);
    ist_cuda_gemm_batched("generate backward dWb", 1, 0, g->bi, g->k2, g->ci, 1.0f, u, g->bi, (int64_t)g->ci * g->bi,
                          dwc, g->k2, kk, 1.0f, dwb, g->k2, (int64_t)g->bi * g->k2, g->nb);
  }
}
