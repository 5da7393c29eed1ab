/* The generated convolution run in factored form on the CPU: conv(x, V·{U_j·Wb_j}) computed as
 * V ⋆ (Wb ⋆ (U ⋆ x)) — a 1×1 conv, a grouped k×k conv, a 1×1 conv — so W is never built and
 * the multiply-adds drop from co·ci·k² to nb·bi·ci + nb·bi·k² + co·nb per pixel (SPEC §2).
 * Images are split across threads; parameter gradients are accumulated per thread, then summed. */
#include <omp.h>
#include <string.h>

#include "kernels/cpu/cpu.h"

/* The level-1 grouped conv: group j maps its bi channels of t1 to channel j of t2 with the
 * kernel Wb_j (bi × k × k). */
static ist_grouped grouped_of(const ist_conv_shape *s, const ist_gen_shape *g) {
  return (ist_grouped){g->nb, g->bi, 1, s->h, s->w, s->k, s->stride, s->pad, s->ho, s->wo};
}

/* Scratch layout, in floats: the shared part (Uᵀ, nb·bi × ci, and the level-2 input gradient
 * dt2, n × nb × ho·wo), then per thread a partial dWb, dUᵀ, dV, one image's dt1 and the grouped
 * conv's scratch. */
typedef struct {
  size_t ut, dt2, shared, dwb, dut, dv, dt1, gs, per_thread, conv;
} gconv_layout;

static ist_conv_shape level1_off_conv(const ist_conv_shape *s, const ist_gen_shape *g) {
  ist_conv_shape c = *s;
  c.co = g->nb;
  return c;
}

static gconv_layout layout(const ist_conv_shape *s, const ist_gen_shape *g) {
  gconv_layout L = {0};
  const size_t ohw = (size_t)s->ho * s->wo, hw = (size_t)s->h * s->w, nbi = (size_t)g->nb * g->bi;
  if (g->level1) L.ut = nbi * s->ci;
  if (g->level2) L.dt2 = (size_t)s->n * g->nb * ohw;
  L.shared = L.ut + L.dt2;
  if (g->level1) {
    L.dwb = nbi * g->k2;
    L.dut = nbi * s->ci;
    L.dt1 = nbi * hw;
    const ist_grouped q = grouped_of(s, g);
    L.gs = ist_grouped_scratch_floats(&q);
  }
  if (g->level2) L.dv = (size_t)g->co * g->nb;
  L.per_thread = L.dwb + L.dut + L.dv + L.dt1 + L.gs;
  if (!g->level1) {
    ist_conv_shape c = level1_off_conv(s, g);
    L.conv = ist_conv_ws_floats(&c);
  }
  return L;
}

size_t ist_gconv_ws_floats(const ist_conv_shape *s, const ist_gen_shape *g) {
  gconv_layout L = layout(s, g);
  return L.shared + L.per_thread * (size_t)omp_get_max_threads() + L.conv;
}

/* Uᵀ: row j·bi + b of the 1×1 conv's weight is column b of U_j (ci × bi). */
static void transpose_u(const ist_gen_shape *g, const float *u, float *ut) {
  for (int j = 0; j < g->nb; j++)
    for (int c = 0; c < g->ci; c++)
      for (int b = 0; b < g->bi; b++) ut[((int64_t)j * g->bi + b) * g->ci + c] = u[((int64_t)j * g->ci + c) * g->bi + b];
}

void ist_cpu_gconv_forward(const ist_conv_shape *s, const ist_gen_shape *g, const float *x, const float *wb,
                           const float *u, const float *wc, const float *v, float *t1, float *t2, float *y,
                           float *ws) {
  const gconv_layout L = layout(s, g);
  const int hw = s->h * s->w, ohw = s->ho * s->wo, nbi = g->nb * g->bi;
  float *lvl1_out = g->level2 ? t2 : y;
  if (g->level1) {
    float *ut = ws;
    transpose_u(g, u, ut);
    const ist_grouped q = grouped_of(s, g);
    float *gs0 = ws + L.shared + L.per_thread - L.gs;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < s->n; b++) {
      float *t1b = t1 + (int64_t)b * nbi * hw;
      ist_cpu_gemm(0, 0, nbi, hw, s->ci, 1.0f, ut, s->ci, x + (int64_t)b * s->ci * hw, hw, 0.0f, t1b, hw);
      ist_grouped_forward_image(&q, t1b, wb, lvl1_out + (int64_t)b * g->nb * ohw, gs0 + L.per_thread * (size_t)omp_get_thread_num());
    }
  } else {
    ist_conv_shape c = level1_off_conv(s, g);
    ist_cpu_conv2d_forward(&c, x, wc, NULL, lvl1_out, ws + L.shared + L.per_thread * (size_t)omp_get_max_threads());
  }
  if (g->level2) {
#pragma omp parallel for schedule(static)
    for (int b = 0; b < s->n; b++)
      ist_cpu_gemm(0, 0, s->co, ohw, g->nb, 1.0f, v, g->nb, t2 + (int64_t)b * g->nb * ohw, ohw, 0.0f,
                   y + (int64_t)b * s->co * ohw, ohw);
  }
}

/* dst[i] += Σ_t partial_t[i], partial_t = base + t·stride (inside a parallel region). */
static void sum_partials(const float *base, size_t stride, int nthreads, size_t n, float *dst) {
#pragma omp for schedule(static)
  for (size_t i = 0; i < n; i++) {
    float acc = 0;
    for (int t = 0; t < nthreads; t++) acc += base[stride * (size_t)t + i];
    dst[i] += acc;
  }
}

void ist_cpu_gconv_backward(const ist_conv_shape *s, const ist_gen_shape *g, const float *dy, const float *x,
                            const float *wb, const float *u, const float *wc, const float *v, const float *t1,
                            const float *t2, float *dx, float *dwb, float *du, float *dwc, float *dv, float *ws) {
  const gconv_layout L = layout(s, g);
  const int hw = s->h * s->w, ohw = s->ho * s->wo, nbi = g->nb * g->bi;
  float *ut = ws, *dt2 = ws + L.ut, *mine0 = ws + L.shared;
  const int maxt = omp_get_max_threads();
  if (g->level1) transpose_u(g, u, ut);
  /* Per-thread block: [dWb | dUᵀ | dV | dt1 | grouped conv scratch]. */
  int nthreads = 1;
#pragma omp parallel
  {
    const int t = omp_get_thread_num();
#pragma omp single
    nthreads = omp_get_num_threads();
    float *mine = mine0 + L.per_thread * (size_t)t;
    float *dwbt = mine, *dutt = dwbt + L.dwb, *dvt = dutt + L.dut, *dt1 = dvt + L.dv, *gs = dt1 + L.dt1;
    memset(mine, 0, sizeof(float) * (L.dwb + L.dut + L.dv));
    if (g->level2) {
#pragma omp for schedule(static)
      for (int b = 0; b < s->n; b++) {
        const float *dyb = dy + (int64_t)b * s->co * ohw;
        /* dV += dy_b · t2_bᵀ;  dt2_b = Vᵀ · dy_b */
        ist_cpu_gemm(0, 1, s->co, g->nb, ohw, 1.0f, dyb, ohw, t2 + (int64_t)b * g->nb * ohw, ohw, 1.0f, dvt, g->nb);
        ist_cpu_gemm(1, 0, g->nb, ohw, s->co, 1.0f, v, g->nb, dyb, ohw, 0.0f, dt2 + (int64_t)b * g->nb * ohw, ohw);
      }
      sum_partials(mine0 + L.dwb + L.dut, L.per_thread, nthreads, L.dv, dv);
    }
    const float *dlvl1 = g->level2 ? dt2 : dy;
    if (g->level1) {
      const ist_grouped q = grouped_of(s, g);
#pragma omp for schedule(static)
      for (int b = 0; b < s->n; b++) {
        const float *xb = x + (int64_t)b * s->ci * hw;
        ist_grouped_backward_image(&q, dlvl1 + (int64_t)b * g->nb * ohw, t1 + (int64_t)b * nbi * hw, wb, dt1, dwbt, gs);
        /* dUᵀ += dt1 · x_bᵀ;  dx_b = Uᵀᵀ · dt1 */
        ist_cpu_gemm(0, 1, nbi, s->ci, hw, 1.0f, dt1, hw, xb, hw, 1.0f, dutt, s->ci);
        if (dx) ist_cpu_gemm(1, 0, s->ci, hw, nbi, 1.0f, ut, s->ci, dt1, hw, 0.0f, dx + (int64_t)b * s->ci * hw, hw);
      }
      sum_partials(mine0, L.per_thread, nthreads, L.dwb, dwb);
      /* dUᵀ's row j·bi + b, column c is dU_j's entry (c, b). */
#pragma omp for schedule(static)
      for (size_t i = 0; i < L.dut; i++) {
        float acc = 0;
        for (int tt = 0; tt < nthreads; tt++) acc += mine0[L.per_thread * (size_t)tt + L.dwb + i];
        const size_t row = i / (size_t)s->ci, c = i % (size_t)s->ci, j = row / (size_t)g->bi, b = row % (size_t)g->bi;
        du[(j * (size_t)s->ci + c) * g->bi + b] += acc;
      }
    }
  }
  if (!g->level1) {
    ist_conv_shape c = level1_off_conv(s, g);
    ist_cpu_conv2d_backward(&c, g->level2 ? dt2 : dy, x, wc, dx, dwc, NULL,
                            ws + L.shared + L.per_thread * (size_t)maxt);
  }
}
