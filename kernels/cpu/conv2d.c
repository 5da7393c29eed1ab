/* Fast CPU convolution: images are split across threads; each thread unfolds one image at a time
 * (im2col, small enough to stay in cache) and calls a single-threaded sgemm on it (the OpenMP
 * build of OpenBLAS runs serially inside a parallel region). The weight gradient is accumulated
 * per thread and summed at the end. */
#include <omp.h>
#include <string.h>

#include "kernels/cpu/cpu.h"

/* Per-thread workspace: col and dcol (kk × hw each), a partial dW (co × kk) and a zero-padded
 * copy of one image (ci × hp × wp), so unfolding needs no bounds checks. */
static size_t padded_floats(const ist_conv_shape *s) {
  return (size_t)s->ci * (s->h + 2 * s->pad) * (s->w + 2 * s->pad);
}

static size_t per_thread(const ist_conv_shape *s) {
  const size_t kk = (size_t)s->ci * s->k * s->k, hw = (size_t)s->ho * s->wo;
  return 2 * kk * hw + (size_t)s->co * kk + padded_floats(s);
}

size_t ist_conv_ws_floats(const ist_conv_shape *s) {
  if (s->groups > 1) return ist_cpu_conv2d_grouped_ws_floats(s);
  return per_thread(s) * (size_t)omp_get_max_threads();
}

/* col (kk × hw) of image xb (ci × h × w), through the padded copy xp. */
static void im2col(const ist_conv_shape *s, const float *xb, float *xp, float *col) {
  const int k = s->k, hw = s->ho * s->wo, hp = s->h + 2 * s->pad, wp = s->w + 2 * s->pad, st = s->stride;
  if (s->pad) {
    memset(xp, 0, sizeof(float) * padded_floats(s));
    for (int c = 0; c < s->ci; c++)
      for (int y = 0; y < s->h; y++)
        memcpy(xp + ((int64_t)c * hp + y + s->pad) * wp + s->pad, xb + ((int64_t)c * s->h + y) * s->w,
               sizeof(float) * s->w);
  } else {
    xp = (float *)xb;
  }
  for (int c = 0; c < s->ci; c++)
    for (int ky = 0; ky < k; ky++)
      for (int kx = 0; kx < k; kx++) {
        float *d = col + (int64_t)((c * k + ky) * k + kx) * hw;
        const float *src = xp + ((int64_t)c * hp + ky) * wp + kx;
        for (int oy = 0; oy < s->ho; oy++, d += s->wo) {
          const float *r = src + (int64_t)oy * st * wp;
          if (st == 1) /* the common case, kept separate so it vectorizes */
            for (int ox = 0; ox < s->wo; ox++) d[ox] = r[ox];
          else
            for (int ox = 0; ox < s->wo; ox++) d[ox] = r[ox * st];
        }
      }
}

/* dxb (ci × h × w) = the fold of dcol (kk × hw), accumulated in the padded buffer xp. */
static void col2im(const ist_conv_shape *s, const float *dcol, float *xp, float *dxb) {
  const int k = s->k, hw = s->ho * s->wo, hp = s->h + 2 * s->pad, wp = s->w + 2 * s->pad, st = s->stride;
  memset(xp, 0, sizeof(float) * padded_floats(s));
  for (int c = 0; c < s->ci; c++)
    for (int ky = 0; ky < k; ky++)
      for (int kx = 0; kx < k; kx++) {
        const float *d = dcol + (int64_t)((c * k + ky) * k + kx) * hw;
        float *dst = xp + ((int64_t)c * hp + ky) * wp + kx;
        for (int oy = 0; oy < s->ho; oy++, d += s->wo) {
          float *r = dst + (int64_t)oy * st * wp;
          if (st == 1)
            for (int ox = 0; ox < s->wo; ox++) r[ox] += d[ox];
          else
            for (int ox = 0; ox < s->wo; ox++) r[ox * st] += d[ox];
        }
      }
  for (int c = 0; c < s->ci; c++)
    for (int y = 0; y < s->h; y++)
      memcpy(dxb + ((int64_t)c * s->h + y) * s->w, xp + ((int64_t)c * hp + y + s->pad) * wp + s->pad,
             sizeof(float) * s->w);
}

void ist_cpu_conv2d_forward(const ist_conv_shape *s, const float *x, const float *w, const float *bias, float *y,
                            float *ws) {
  if (s->groups > 1) {
    ist_cpu_conv2d_grouped_forward(s, x, w, bias, y, ws);
    return;
  }
  const int kk = s->ci * s->k * s->k, hw = s->ho * s->wo;
  const size_t pt = per_thread(s);
#pragma omp parallel
  {
    float *col = ws + pt * (size_t)omp_get_thread_num();
    float *xp = col + 2 * (size_t)kk * hw + (size_t)s->co * kk;
#pragma omp for schedule(static)
    for (int b = 0; b < s->n; b++) {
      float *yb = y + (int64_t)b * s->co * hw;
      im2col(s, x + (int64_t)b * s->ci * s->h * s->w, xp, col);
      ist_cpu_gemm(0, 0, s->co, hw, kk, 1.0f, w, kk, col, hw, 0.0f, yb, hw);
      if (bias)
        for (int o = 0; o < s->co; o++)
          for (int p = 0; p < hw; p++) yb[(int64_t)o * hw + p] += bias[o];
    }
  }
}

void ist_cpu_conv2d_backward(const ist_conv_shape *s, const float *dy, const float *x, const float *w, float *dx,
                             float *dw, float *dbias, float *ws) {
  if (s->groups > 1) {
    ist_cpu_conv2d_grouped_backward(s, dy, x, w, dx, dw, dbias, ws);
    return;
  }
  const int kk = s->ci * s->k * s->k, hw = s->ho * s->wo;
  const size_t pt = per_thread(s);
  int nthreads = 1;
#pragma omp parallel
  {
    const int t = omp_get_thread_num();
#pragma omp single
    nthreads = omp_get_num_threads();
    float *col = ws + pt * (size_t)t, *dcol = col + (size_t)kk * hw, *dwt = dcol + (size_t)kk * hw;
    float *xp = dwt + (size_t)s->co * kk;
    memset(dwt, 0, sizeof(float) * (size_t)s->co * kk);
#pragma omp for schedule(static)
    for (int b = 0; b < s->n; b++) {
      const float *dyb = dy + (int64_t)b * s->co * hw;
      im2col(s, x + (int64_t)b * s->ci * s->h * s->w, xp, col);
      /* dW_t (co × kk) += dy_b (co × hw) · col_bᵀ */
      ist_cpu_gemm(0, 1, s->co, kk, hw, 1.0f, dyb, hw, col, hw, 1.0f, dwt, kk);
      if (dx) {
        /* dcol (kk × hw) = Wᵀ · dy_b, folded back into dx_b */
        float *dxb = dx + (int64_t)b * s->ci * s->h * s->w;
        ist_cpu_gemm(1, 0, kk, hw, s->co, 1.0f, w, kk, dyb, hw, 0.0f, dcol, hw);
        col2im(s, dcol, xp, dxb);
      }
    }
    /* Sum the per-thread partial weight gradients (each thread owns a slice of dW). */
#pragma omp for schedule(static)
    for (int i = 0; i < s->co * kk; i++) {
      float acc = 0;
      for (int u = 0; u < nthreads; u++) acc += ws[pt * (size_t)u + 2 * (size_t)kk * hw + i];
      dw[i] += acc;
    }
  }
  if (dbias)
    for (int b = 0; b < s->n; b++)
      for (int o = 0; o < s->co; o++) {
        const float *r = dy + ((int64_t)b * s->co + o) * hw;
        float acc = 0;
        for (int p = 0; p < hw; p++) acc += r[p];
        dbias[o] += acc;
      }
}
