/* Adaptive average pooling with PyTorch's bin edges: [floor(i·H/oh), ceil((i+1)·H/oh)). */
#include <string.h>

#include "kernels/cpu/cpu.h"

static inline int bin_start(int i, int in, int out) { return (i * in) / out; }
static inline int bin_end(int i, int in, int out) { return ((i + 1) * in + out - 1) / out; }

void ist_cpu_avgpool_forward(int n, int c, int h, int w, int oh, int ow, const float *x, float *y) {
#pragma omp parallel for schedule(static)
  for (int64_t pc = 0; pc < (int64_t)n * c; pc++) {
    const float *xp = x + pc * h * w;
    float *yp = y + pc * oh * ow;
    for (int i = 0; i < oh; i++) {
      int y0 = bin_start(i, h, oh), y1 = bin_end(i, h, oh);
      for (int j = 0; j < ow; j++) {
        int x0 = bin_start(j, w, ow), x1 = bin_end(j, w, ow);
        float s = 0;
        for (int yy = y0; yy < y1; yy++)
          for (int xx = x0; xx < x1; xx++) s += xp[yy * w + xx];
        yp[i * ow + j] = s / (float)((y1 - y0) * (x1 - x0));
      }
    }
  }
}

void ist_cpu_avgpool_backward(int n, int c, int h, int w, int oh, int ow, const float *dy, float *dx) {
#pragma omp parallel for schedule(static)
  for (int64_t pc = 0; pc < (int64_t)n * c; pc++) {
    float *dp = dx + pc * h * w;
    const float *gp = dy + pc * oh * ow;
    memset(dp, 0, sizeof(float) * h * w);
    for (int i = 0; i < oh; i++) {
      int y0 = bin_start(i, h, oh), y1 = bin_end(i, h, oh);
      for (int j = 0; j < ow; j++) {
        int x0 = bin_start(j, w, ow), x1 = bin_end(j, w, ow);
        float g = gp[i * ow + j] / (float)((y1 - y0) * (x1 - x0));
        for (int yy = y0; yy < y1; yy++)
          for (int xx = x0; xx < x1; xx++) dp[yy * w + xx] += g;
      }
    }
  }
}
