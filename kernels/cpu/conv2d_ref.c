/* Direct convolution, forward and backward: slow, simple, the reference for every other conv. */
#include <string.h>

#include "kernels/cpu/cpu.h"

#define X_AT(b, c, iy, ix) x[(((int64_t)(b) * s->ci + (c)) * s->h + (iy)) * s->w + (ix)]
#define W_AT(o, c, ky, kx) w[(((int64_t)(o) * s->ci + (c)) * s->k + (ky)) * s->k + (kx)]
#define Y_AT(b, o, oy, ox) (((int64_t)(b) * s->co + (o)) * s->ho + (oy)) * s->wo + (ox)

void ist_cpu_conv2d_forward_ref(const ist_conv_shape *s, const float *x, const float *w, const float *bias,
                                float *y) {
  for (int b = 0; b < s->n; b++)
    for (int o = 0; o < s->co; o++)
      for (int oy = 0; oy < s->ho; oy++)
        for (int ox = 0; ox < s->wo; ox++) {
          double acc = bias ? bias[o] : 0.0;
          for (int c = 0; c < s->ci; c++)
            for (int ky = 0; ky < s->k; ky++)
              for (int kx = 0; kx < s->k; kx++) {
                int iy = oy * s->stride - s->pad + ky, ix = ox * s->stride - s->pad + kx;
                if (iy >= 0 && iy < s->h && ix >= 0 && ix < s->w) acc += (double)X_AT(b, c, iy, ix) * W_AT(o, c, ky, kx);
              }
          y[Y_AT(b, o, oy, ox)] = (float)acc;
        }
}

void ist_cpu_conv2d_backward_ref(const ist_conv_shape *s, const float *dy, const float *x, const float *w,
                                 float *dx, float *dw, float *dbias) {
  if (dx) memset(dx, 0, sizeof(float) * (size_t)s->n * s->ci * s->h * s->w);
  for (int b = 0; b < s->n; b++)
    for (int o = 0; o < s->co; o++)
      for (int oy = 0; oy < s->ho; oy++)
        for (int ox = 0; ox < s->wo; ox++) {
          float g = dy[Y_AT(b, o, oy, ox)];
          if (dbias) dbias[o] += g;
          for (int c = 0; c < s->ci; c++)
            for (int ky = 0; ky < s->k; ky++)
              for (int kx = 0; kx < s->k; kx++) {
                int iy = oy * s->stride - s->pad + ky, ix = ox * s->stride - s->pad + kx;
                if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w) continue;
                dw[(((int64_t)o * s->ci + c) * s->k + ky) * s->k + kx] += g * X_AT(b, c, iy, ix);
                if (dx) dx[(((int64_t)b * s->ci + c) * s->h + iy) * s->w + ix] += g * W_AT(o, c, ky, kx);
              }
        }
}
