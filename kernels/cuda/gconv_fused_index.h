/* Index arithmetic of the fused generated convolution (kernels/cuda/gconv_fused.cu), as
 * __host__ __device__ functions so that CPU tests exercise them exhaustively on small shapes
 * (tests/test_gconv_fused_index.cc). Layouts: x (n × ci × h × w), y (n × co × ho × wo),
 * W (co × K) with K = ci·k², column kk = c·k² + ky·k + kx (SPEC §2's Wc row layout).
 *
 * The three implicit GEMMs of a convolution:
 *   forward        y[o, m]  = Σ_kk W[o, kk] · X[kk, m],   m an output pixel (b, oy, ox), X = im2col(x);
 *   backward-data  dx[c, m'] = Σ_(o,t) W[o, c·k² + t] · D[(o,t), m'],  m' an input pixel (b, iy, ix),
 *                  D[(o,t), m'] = dy[b, o, oy, ox] where iy = oy·stride − pad + ky (else 0);
 *   weight grad    dW[o, kk] = Σ_m dy[o, m] · X[kk, m].
 * Dilation is 1 (ist_conv_shape has none). */
#ifndef IST_GCONV_FUSED_INDEX_H
#define IST_GCONV_FUSED_INDEX_H
#include <stdint.h>

#include "kernels/backend.h"

#if defined(__CUDACC__)
#define IST_HD __host__ __device__ __forceinline__
#else
#define IST_HD static inline
#endif

/* A pixel of a batch of images: image b, row r, column q. */
typedef struct {
  int b, r, q;
} ist_fused_pix;

/* Pixel m of an n × rows × cols batch (row-major within an image, images in order). */
IST_HD ist_fused_pix ist_fused_pixel(int m, int rows, int cols) {
  const int per_image = rows * cols;
  ist_fused_pix p;
  p.b = m / per_image;
  const int rem = m - p.b * per_image;
  p.r = rem / cols;
  p.q = rem - p.r * cols;
  return p;
}

/* Output pixels M of the forward and weight-gradient GEMMs; input pixels of backward-data. */
IST_HD int ist_fused_out_pixels(const ist_conv_shape *s) { return s->n * s->ho * s->wo; }
IST_HD int ist_fused_in_pixels(const ist_conv_shape *s) { return s->n * s->h * s->w; }
IST_HD int ist_fused_k(const ist_conv_shape *s) { return s->ci * s->k * s->k; }

/* Offset of y[b, o, oy, ox] for output pixel m. */
IST_HD int64_t ist_fused_y_offset(const ist_conv_shape *s, int m, int o) {
  const ist_fused_pix p = ist_fused_pixel(m, s->ho, s->wo);
  return (((int64_t)p.b * s->co + o) * s->ho + p.r) * s->wo + p.q;
}

/* Offset of x[b, c, iy, ix] for im2col row kk and output pixel m, or −1 where the tap reads
 * padding. */
IST_HD int64_t ist_fused_x_offset(const ist_conv_shape *s, int kk, int m) {
  const int k2 = s->k * s->k;
  const int c = kk / k2, t = kk - c * k2, ky = t / s->k, kx = t - ky * s->k;
  const ist_fused_pix p = ist_fused_pixel(m, s->ho, s->wo);
  const int iy = p.r * s->stride - s->pad + ky, ix = p.q * s->stride - s->pad + kx;
  if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w) return -1;
  return (((int64_t)p.b * s->ci + c) * s->h + iy) * s->w + ix;
}

/* Offset of dx[b, c, iy, ix] for input pixel m'. */
IST_HD int64_t ist_fused_dx_offset(const ist_conv_shape *s, int mi, int c) {
  const ist_fused_pix p = ist_fused_pixel(mi, s->h, s->w);
  return (((int64_t)p.b * s->ci + c) * s->h + p.r) * s->w + p.q;
}

/* Offset of dy[b, o, oy, ox] that tap t = ky·k + kx of output channel o carries to input pixel
 * m' in backward-data: oy = (iy + pad − ky) / stride when that divides exactly and lands inside
 * the output, else −1 (no output pixel reads m' through that tap). */
IST_HD int64_t ist_fused_dy_offset(const ist_conv_shape *s, int o, int t, int mi) {
  const int ky = t / s->k, kx = t - ky * s->k;
  const ist_fused_pix p = ist_fused_pixel(mi, s->h, s->w);
  const int ny = p.r + s->pad - ky, nx = p.q + s->pad - kx;
  if (ny < 0 || nx < 0 || ny % s->stride || nx % s->stride) return -1;
  const int oy = ny / s->stride, ox = nx / s->stride;
  if (oy >= s->ho || ox >= s->wo) return -1;
  return (((int64_t)p.b * s->co + o) * s->ho + oy) * s->wo + ox;
}

/* Tiles of `tile` covering n (the last one partial). */
IST_HD int ist_fused_tiles(int n, int tile) { return (n + tile - 1) / tile; }

#undef IST_HD
#endif
