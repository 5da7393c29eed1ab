/* Grouped convolution computed directly (no im2col), for the small groups it is used with:
 * depthwise convs (one channel per group) and the level-1 stage of a factored generated conv
 * (Bi channels → 1 per group). Group j maps input channels [j·cig, (j+1)·cig) to output channels
 * [j·cog, (j+1)·cog) with weights (groups·cog × cig × k × k), PyTorch's layout. */
#include <omp.h>
#include <string.h>

#include "kernels/cpu/cpu.h"

ist_grouped ist_grouped_of(const ist_conv_shape *s) {
  const int g = s->groups > 1 ? s->groups : 1;
  return (ist_grouped){g, s->ci / g, s->co / g, s->h, s->w, s->k, s->stride, s->pad, s->ho, s->wo};
}

/* Stride 1, the common case, runs without per-row bounds: a group's input planes are copied into
 * a zero-padded buffer (hp × wp) and each output plane is computed in rows of wp values, the last
 * wp − wo of which are discarded, so that each tap is one contiguous multiply-add over
 * (ho−1)·wp + wo values, long enough to vectorize well. Other strides clip each row's range. */
static int padded_h(const ist_grouped *q) { return q->h + 2 * q->pad; }
static int padded_w(const ist_grouped *q) { return q->w + 2 * q->pad; }

size_t ist_grouped_scratch_floats(const ist_grouped *q) {
  const size_t planes = (size_t)q->cig * padded_h(q) * padded_w(q);
  return q->stride == 1 ? 2 * planes + (size_t)q->ho * padded_w(q) : 0;
}

static void pad_planes(const ist_grouped *q, const float *in, float *xp) {
  const int hp = padded_h(q), wp = padded_w(q);
  memset(xp, 0, sizeof(float) * (size_t)q->cig * hp * wp);
  for (int c = 0; c < q->cig; c++)
    for (int y = 0; y < q->h; y++)
      memcpy(xp + ((int64_t)c * hp + y + q->pad) * wp + q->pad, in + ((int64_t)c * q->h + y) * q->w,
             sizeof(float) * q->w);
}

/* The ox range whose input column ox·stride − pad + kx lies inside [0, w). */
static void ox_range(const ist_grouped *q, int kx, int *lo, int *hi) {
  const int a = q->pad - kx; /* ox·stride ≥ a */
  *lo = a > 0 ? (a + q->stride - 1) / q->stride : 0;
  const int b = q->w - 1 + q->pad - kx; /* ox·stride ≤ b */
  *hi = b < 0 ? 0 : b / q->stride + 1;
  if (*hi > q->wo) *hi = q->wo;
}

static void forward_s1(const ist_grouped *q, const float *in, const float *wt, float *out, float *scratch) {
  const int hp = padded_h(q), wp = padded_w(q), hw = q->h * q->w, ohw = q->ho * q->wo, k2 = q->k * q->k;
  const int len = (q->ho - 1) * wp + q->wo;
  float *xp = scratch, *ext = xp + 2 * (size_t)q->cig * hp * wp;
  for (int j = 0; j < q->groups; j++) {
    pad_planes(q, in + (int64_t)j * q->cig * hw, xp);
    for (int o = j * q->cog; o < (j + 1) * q->cog; o++) {
      memset(ext, 0, sizeof(float) * (size_t)q->ho * wp);
      for (int c = 0; c < q->cig; c++)
        for (int t = 0; t < k2; t++) {
          const float wv = wt[((int64_t)o * q->cig + c) * k2 + t];
          const float *src = xp + (int64_t)c * hp * wp + (t / q->k) * wp + t % q->k;
          for (int i = 0; i < len; i++) ext[i] += wv * src[i];
        }
      for (int oy = 0; oy < q->ho; oy++)
        memcpy(out + (int64_t)o * ohw + (int64_t)oy * q->wo, ext + (int64_t)oy * wp, sizeof(float) * q->wo);
    }
  }
}

static void forward_strided(const ist_grouped *q, const float *in, const float *wt, float *out) {
  const int hw = q->h * q->w, ohw = q->ho * q->wo, st = q->stride, k2 = q->k * q->k;
  memset(out, 0, sizeof(float) * (size_t)q->groups * q->cog * ohw);
  for (int o = 0; o < q->groups * q->cog; o++)
    for (int c = 0; c < q->cig; c++) {
      const float *ip = in + (int64_t)(o / q->cog * q->cig + c) * hw, *wp = wt + ((int64_t)o * q->cig + c) * k2;
      float *op = out + (int64_t)o * ohw;
      for (int ky = 0; ky < q->k; ky++)
        for (int kx = 0; kx < q->k; kx++) {
          const float wv = wp[ky * q->k + kx];
          int lo, hi;
          ox_range(q, kx, &lo, &hi);
          for (int oy = 0; oy < q->ho; oy++) {
            const int iy = oy * st - q->pad + ky;
            if (iy < 0 || iy >= q->h) continue;
            const float *r = ip + (int64_t)iy * q->w - q->pad + kx;
            for (int ox = lo; ox < hi; ox++) op[(int64_t)oy * q->wo + ox] += wv * r[ox * st];
          }
        }
    }
}

void ist_grouped_forward_image(const ist_grouped *q, const float *in, const float *wt, float *out, float *scratch) {
  if (q->stride == 1) forward_s1(q, in, wt, out, scratch);
  else forward_strided(q, in, wt, out);
}

static void backward_s1(const ist_grouped *q, const float *dout, const float *in, const float *wt, float *din,
                        float *dwt, float *scratch) {
  const int hp = padded_h(q), wp = padded_w(q), hw = q->h * q->w, ohw = q->ho * q->wo, k2 = q->k * q->k;
  const int len = (q->ho - 1) * wp + q->wo;
  const size_t planes = (size_t)q->cig * hp * wp;
  float *xp = scratch, *dxp = xp + planes, *dext = dxp + planes;
  for (int j = 0; j < q->groups; j++) {
    pad_planes(q, in + (int64_t)j * q->cig * hw, xp);
    memset(dxp, 0, sizeof(float) * planes);
    for (int o = j * q->cog; o < (j + 1) * q->cog; o++) {
      memset(dext, 0, sizeof(float) * (size_t)q->ho * wp); /* the discarded columns stay 0 */
      for (int oy = 0; oy < q->ho; oy++)
        memcpy(dext + (int64_t)oy * wp, dout + (int64_t)o * ohw + (int64_t)oy * q->wo, sizeof(float) * q->wo);
      for (int c = 0; c < q->cig; c++)
        for (int t = 0; t < k2; t++) {
          const int64_t wi = ((int64_t)o * q->cig + c) * k2 + t, off = (int64_t)c * hp * wp + (t / q->k) * wp + t % q->k;
          const float wv = wt[wi], *src = xp + off;
          float *dsrc = dxp + off, acc = 0;
#pragma omp simd reduction(+ : acc)
          for (int i = 0; i < len; i++) {
            acc += dext[i] * src[i];
            dsrc[i] += wv * dext[i];
          }
          dwt[wi] += acc;
        }
    }
    if (din)
      for (int c = 0; c < q->cig; c++)
        for (int y = 0; y < q->h; y++)
          memcpy(din + ((int64_t)(j * q->cig + c) * q->h + y) * q->w,
                 dxp + ((int64_t)c * hp + y + q->pad) * wp + q->pad, sizeof(float) * q->w);
  }
}

static void backward_strided(const ist_grouped *q, const float *dout, const float *in, const float *wt, float *din,
                             float *dwt) {
  const int hw = q->h * q->w, ohw = q->ho * q->wo, st = q->stride, k2 = q->k * q->k;
  if (din) memset(din, 0, sizeof(float) * (size_t)q->groups * q->cig * hw);
  for (int o = 0; o < q->groups * q->cog; o++)
    for (int c = 0; c < q->cig; c++) {
      const int64_t ic = o / q->cog * q->cig + c;
      const float *ip = in + ic * hw, *wp = wt + ((int64_t)o * q->cig + c) * k2, *dop = dout + (int64_t)o * ohw;
      float *dwp = dwt + ((int64_t)o * q->cig + c) * k2;
      for (int ky = 0; ky < q->k; ky++)
        for (int kx = 0; kx < q->k; kx++) {
          const float wv = wp[ky * q->k + kx];
          int lo, hi;
          ox_range(q, kx, &lo, &hi);
          float acc = 0;
          for (int oy = 0; oy < q->ho; oy++) {
            const int iy = oy * st - q->pad + ky;
            if (iy < 0 || iy >= q->h) continue;
            const int64_t off = (int64_t)iy * q->w - q->pad + kx;
            const float *r = ip + off, *d = dop + (int64_t)oy * q->wo;
            for (int ox = lo; ox < hi; ox++) {
              acc += d[ox] * r[ox * st];
              if (din) din[ic * hw + off + ox * st] += wv * d[ox];
            }
          }
          dwp[ky * q->k + kx] += acc;
        }
    }
}

void ist_grouped_backward_image(const ist_grouped *q, const float *dout, const float *in, const float *wt, float *din,
                                float *dwt, float *scratch) {
  if (q->stride == 1) backward_s1(q, dout, in, wt, din, dwt, scratch);
  else backward_strided(q, dout, in, wt, din, dwt);
}

/* The batch-level op (conv2d with groups > 1): images split across threads, per-thread dW. */
static size_t per_thread(const ist_conv_shape *s) {
  const ist_grouped q = ist_grouped_of(s);
  return ist_grouped_scratch_floats(&q) + (size_t)s->co * q.cig * s->k * s->k;
}

size_t ist_cpu_conv2d_grouped_ws_floats(const ist_conv_shape *s) {
  return per_thread(s) * (size_t)omp_get_max_threads();
}

void ist_cpu_conv2d_grouped_forward(const ist_conv_shape *s, const float *x, const float *w, const float *bias,
                                    float *y, float *ws) {
  const ist_grouped q = ist_grouped_of(s);
  const int64_t in = (int64_t)s->ci * s->h * s->w, out = (int64_t)s->co * s->ho * s->wo;
  const size_t pt = per_thread(s);
#pragma omp parallel for schedule(static)
  for (int b = 0; b < s->n; b++) {
    float *yb = y + b * out;
    ist_grouped_forward_image(&q, x + b * in, w, yb, ws + pt * (size_t)omp_get_thread_num());
    if (bias)
      for (int o = 0; o < s->co; o++)
        for (int p = 0; p < s->ho * s->wo; p++) yb[(int64_t)o * s->ho * s->wo + p] += bias[o];
  }
}

void ist_cpu_conv2d_grouped_backward(const ist_conv_shape *s, const float *dy, const float *x, const float *w,
                                     float *dx, float *dw, float *dbias, float *ws) {
  const ist_grouped q = ist_grouped_of(s);
  const int64_t in = (int64_t)s->ci * s->h * s->w, out = (int64_t)s->co * s->ho * s->wo;
  const size_t pt = per_thread(s), scratch = ist_grouped_scratch_floats(&q), wn = (size_t)s->co * q.cig * s->k * s->k;
  int nthreads = 1;
#pragma omp parallel
  {
    float *mine = ws + pt * (size_t)omp_get_thread_num(), *dwt = mine + scratch;
#pragma omp single
    nthreads = omp_get_num_threads();
    memset(dwt, 0, sizeof(float) * wn);
#pragma omp for schedule(static)
    for (int b = 0; b < s->n; b++)
      ist_grouped_backward_image(&q, dy + b * out, x + b * in, w, dx ? dx + b * in : NULL, dwt, mine);
#pragma omp for schedule(static)
    for (size_t i = 0; i < wn; i++) {
      float acc = 0;
      for (int t = 0; t < nthreads; t++) acc += ws[pt * (size_t)t + scratch + i];
      dw[i] += acc;
    }
  }
  if (dbias)
    for (int b = 0; b < s->n; b++)
      for (int o = 0; o < s->co; o++) {
        const float *r = dy + b * out + (int64_t)o * s->ho * s->wo;
        float acc = 0;
        for (int p = 0; p < s->ho * s->wo; p++) acc += r[p];
        dbias[o] += acc;
      }
}
