/* Direct convolution (with groups), forward and backward: slow, simple, the reference for every
 * other conv. Output channel o belongs to group o / cog and reads that group's cig input channels. */
#include <string.h>

#include "kernels/cpu/cpu.h"

/* Index of input (b, channel c of o's group, iy, ix); of weight (o, c, ky, kx); of output. */
#define CIG (s->ci / s->groups)
#define COG (s->co / s->groups)
#define X_IDX(b, o, c, iy, ix) ((((int64_t)(b) * s->ci + (o) / COG * CIG + (c)) * s->h + (iy)) * s->w + (ix))
#define W_IDX(o, c, ky, kx) ((((int64_t)(o) * CIG + (c)) * s->k + (ky)) * s->k + (kx))
#define Y_IDX(b, o, oy, ox) ((((int64_t)(b) * s->co + (o)) * s->ho + (oy)) * s->wo + (ox))

void ist_cpu_conv2d_forward_ref(const ist_conv_shape *s, const float *x, const float *w, const float *bias,
                                float *y) {
  for (int b = 0; b < s->n; b++)
    for (int o = 0; o < s->co; o++)
      for (int oy = 0; oy < s->ho; oy++)
        for (int ox = 0; ox < s->wo; ox++) {
          double acc = bias ? bias[o] : 0.0;
          for (int c = 0; c < CIG; c++)
            for (int ky = 0; ky < s->k; ky++)
              for (int kx = 0; kx < s->k; kx++) {
                int iy = oy * s->stride - s->pad + ky, ix = ox * s->stride - s->pad + kx;
                if (iy >= 0 && iy < s->h && ix >= 0 && ix < s->w)
                  acc += (double)x[X_IDX(b, o, c, iy, ix)] * w[W_IDX(o, c, ky, kx)];
              }
          y[Y_IDX(b, o, oy, ox)] = (float)acc;
        }
}

void ist_cpu_conv2d_backward_ref(const ist_conv_shape *s, const float *dy, const float *x, const float *w,
                                 float *dx, float *dw, float *dbias) {
  if (dx) memset(dx, 0, sizeof(float) * (size_t)s->n * s->ci * s->h * s->w);
  for (int b = 0; b < s->n; b++)
    for (int o = 0; o < s->co; o++)
      for (int oy = 0; oy < s->ho; oy++)
        for (int ox = 0; ox < s->wo; ox++) {
          float g = dy[Y_IDX(b, o, oy, ox)];
          if (dbias) dbias[o] += g;
          for (int c = 0; c < CIG; c++)
            for (int ky = 0; ky < s->k; ky++)
              for (int kx = 0; kx < s->k; kx++) {
                int iy = oy * s->stride - s->pad + ky, ix = ox * s->stride - s->pad + kx;
                if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w) continue;
                const int64_t xi = X_IDX(b, o, c, iy, ix);
                dw[W_IDX(o, c, ky, kx)] += g * x[xi];
                if (dx) dx[xi] += g * w[W_IDX(o, c, ky, kx)];
              }
        }
}
