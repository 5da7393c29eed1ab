/* The index arithmetic of a 2-D convolution (NCHW, square kernel, stride, padding, groups) shared
 * by the GPU conv kernels and their CPU tests: an output (or input) pixel's flat index ↔
 * (image, row, column), an im2col column ↔ (channel, ky, kx), and the input coordinate a tap
 * reads (or, backwards, the output coordinate a tap came from). Plain inline functions, callable
 * from kernels (nvcc: __host__ __device__), from the execution check and from host tests.
 * Dilation is 1 throughout. */
#ifndef IST_CONV_INDEX_H
#define IST_CONV_INDEX_H
#include <stdint.h>

#include "kernels/backend.h"

#if defined(__CUDACC__)
#define IST_CONV_HD __host__ __device__ __forceinline__
#else
#define IST_CONV_HD static inline
#endif

/* A flat pixel index m = (b·hh + y)·ww + x of a batch of hh × ww planes. */
typedef struct {
  int b, y, x;
} ist_conv_pixel;

IST_CONV_HD ist_conv_pixel ist_conv_pixel_of(int m, int hh, int ww) {
  ist_conv_pixel p;
  p.x = m % ww;
  m /= ww;
  p.y = m % hh;
  p.b = m / hh;
  return p;
}

/* An im2col column kk = (c·k + ky)·k + kx: input channel c (within its group) and the tap. */
typedef struct {
  int c, ky, kx;
} ist_conv_tap;

IST_CONV_HD ist_conv_tap ist_conv_tap_of(int kk, int k) {
  ist_conv_tap t;
  t.kx = kk % k;
  kk /= k;
  t.ky = kk % k;
  t.c = kk / k;
  return t;
}

/* The input coordinate that output coordinate o reads with tap offset kt (may lie in the padding). */
IST_CONV_HD int ist_conv_in_coord(int o, int kt, int stride, int pad) { return o * stride - pad + kt; }

/* 1 when coordinate v lies inside [0, size). */
IST_CONV_HD int ist_conv_inside(int v, int size) { return v >= 0 && v < size; }

/* The output coordinate whose tap kt reads input coordinate i, or −1 when there is none (i + pad − kt
 * is negative, not a multiple of the stride, or beyond the output). */
IST_CONV_HD int ist_conv_out_coord(int i, int kt, int stride, int pad, int out_size) {
  const int a = i + pad - kt;
  if (a < 0 || a % stride) return -1;
  const int o = a / stride;
  return o < out_size ? o : -1;
}

/* Offsets of x[b, c, y, x] (c: absolute input channel), y[b, o, oy, ox] and w[o, c, ky, kx] (c: the
 * channel within o's group). */
IST_CONV_HD int64_t ist_conv_x_offset(const ist_conv_shape *s, int b, int c, int y, int x) {
  return (((int64_t)b * s->ci + c) * s->h + y) * s->w + x;
}
IST_CONV_HD int64_t ist_conv_y_offset(const ist_conv_shape *s, int b, int o, int oy, int ox) {
  return (((int64_t)b * s->co + o) * s->ho + oy) * s->wo + ox;
}
IST_CONV_HD int64_t ist_conv_w_offset(const ist_conv_shape *s, int o, int c, int ky, int kx) {
  const int g = s->groups > 1 ? s->groups : 1;
  return (((int64_t)o * (s->ci / g) + c) * s->k + ky) * s->k + kx;
}

/* The im2col entry (output pixel m, column kk) of group grp: the offset of the x element it copies,
 * or −1 when the tap reads padding. */
IST_CONV_HD int64_t ist_conv_im2col_offset(const ist_conv_shape *s, int grp, int m, int kk) {
  const int g = s->groups > 1 ? s->groups : 1;
  const ist_conv_pixel p = ist_conv_pixel_of(m, s->ho, s->wo);
  const ist_conv_tap t = ist_conv_tap_of(kk, s->k);
  const int iy = ist_conv_in_coord(p.y, t.ky, s->stride, s->pad), ix = ist_conv_in_coord(p.x, t.kx, s->stride, s->pad);
  if (!ist_conv_inside(iy, s->h) || !ist_conv_inside(ix, s->w)) return -1;
  return ist_conv_x_offset(s, p.b, grp * (s->ci / g) + t.c, iy, ix);
}

/* The transposed im2col entry of the backward-data GEMM: input pixel m (of the n·h·w), column
 * kk = (o·k + ky)·k + kx over group grp's cog output channels: the offset of the dy element whose
 * tap (ky, kx) read that pixel, or −1 when none did. */
IST_CONV_HD int64_t ist_conv_col2im_offset(const ist_conv_shape *s, int grp, int m, int kk) {
  const int g = s->groups > 1 ? s->groups : 1;
  const ist_conv_pixel p = ist_conv_pixel_of(m, s->h, s->w);
  const ist_conv_tap t = ist_conv_tap_of(kk, s->k); /* t.c: output channel within the group */
  const int oy = ist_conv_out_coord(p.y, t.ky, s->stride, s->pad, s->ho);
  const int ox = ist_conv_out_coord(p.x, t.kx, s->stride, s->pad, s->wo);
  if (oy < 0 || ox < 0) return -1;
  return ist_conv_y_offset(s, p.b, grp * (s->co / g) + t.c, oy, ox);
}

#undef IST_CONV_HD
#endif
