/* The two-level weight generator of SPEC §2 and its backward, as small GEMMs.
 * Layouts: Wb (nb × bi × k2), U (nb × ci × bi), Wc (nb × ci·k2), V (co × bc), W (co × ci·k2). */
#include <string.h>

#include "kernels/cpu/cpu.h"

void ist_cpu_generate_forward(const ist_gen_shape *g, const float *wb, const float *u, const float *v, float *wc,
                              float *w) {
  const int64_t kk = (int64_t)g->ci * g->k2;
  if (g->level1)
    for (int j = 0; j < g->nb; j++) /* Wc_j (ci × k2) = U_j (ci × bi) · Wb_j (bi × k2) */
      ist_cpu_gemm(0, 0, g->ci, g->k2, g->bi, 1.0f, u + (int64_t)j * g->ci * g->bi, g->bi,
                   wb + (int64_t)j * g->bi * g->k2, g->k2, 0.0f, wc + j * kk, g->k2);
  if (g->level2) /* W (co × kk) = V (co × bc) · Wc (bc × kk) */
    ist_cpu_gemm(0, 0, g->co, (int)kk, g->bc, 1.0f, v, g->bc, wc, (int)kk, 0.0f, w, (int)kk);
  else if (w != wc)
    memcpy(w, wc, sizeof(float) * g->co * kk);
}

void ist_cpu_generate_backward(const ist_gen_shape *g, const float *dw, const float *wb, const float *u,
                               const float *v, const float *wc, float *dwb, float *du, float *dv, float *dwc) {
  const int64_t kk = (int64_t)g->ci * g->k2;
  if (g->level2) {
    ist_cpu_gemm(0, 1, g->co, g->bc, (int)kk, 1.0f, dw, (int)kk, wc, (int)kk, 1.0f, dv, g->bc); /* dV += dW·Wcᵀ */
    ist_cpu_gemm(1, 0, g->bc, (int)kk, g->co, 1.0f, v, g->bc, dw, (int)kk, 0.0f, dwc, (int)kk); /* dWc = Vᵀ·dW */
  } else {
    memcpy(dwc, dw, sizeof(float) * g->co * kk);
  }
  if (g->level1)
    for (int j = 0; j < g->nb; j++) {
      const float *uj = u + (int64_t)j * g->ci * g->bi, *wbj = wb + (int64_t)j * g->bi * g->k2;
      const float *dwcj = dwc + j * kk;
      /* dU_j += dWc_j · Wb_jᵀ;  dWb_j += U_jᵀ · dWc_j */
      ist_cpu_gemm(0, 1, g->ci, g->bi, g->k2, 1.0f, dwcj, g->k2, wbj, g->k2, 1.0f, du + (int64_t)j * g->ci * g->bi,
                   g->bi);
      ist_cpu_gemm(1, 0, g->bi, g->k2, g->ci, 1.0f, uj, g->bi, dwcj, g->k2, 1.0f, dwb + (int64_t)j * g->bi * g->k2,
                   g->k2);
    }
}
