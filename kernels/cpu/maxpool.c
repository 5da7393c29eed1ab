/* Max pooling over k×k windows with stride and padding (padding cells never win), and its backward. */
#include <float.h>
#include <string.h>

#include "kernels/cpu/cpu.h"

void ist_cpu_maxpool_forward(int n, int c, int h, int w, int k, int stride, int pad, const float *x, float *y,
                             int32_t *idx) {
  const int oh = ist_pool_out(h, k, stride, pad), ow = ist_pool_out(w, k, stride, pad);
#pragma omp parallel for schedule(static)
  for (int64_t pc = 0; pc < (int64_t)n * c; pc++) {
    const float *xp = x + pc * h * w;
    for (int i = 0; i < oh; i++)
      for (int j = 0; j < ow; j++) {
        float best = -FLT_MAX;
        int32_t at = -1;
        for (int ky = 0; ky < k; ky++) {
          const int iy = i * stride - pad + ky;
          if (iy < 0 || iy >= h) continue;
          for (int kx = 0; kx < k; kx++) {
            const int ix = j * stride - pad + kx;
            if (ix < 0 || ix >= w) continue;
            if (at < 0 || xp[iy * w + ix] > best) best = xp[iy * w + ix], at = iy * w + ix;
          }
        }
        y[(pc * oh + i) * ow + j] = best;
        idx[(pc * oh + i) * ow + j] = at;
      }
  }
}

void ist_cpu_maxpool_backward(int n, int c, int h, int w, int oh, int ow, const float *dy, const int32_t *idx,
                              float *dx) {
#pragma omp parallel for schedule(static)
  for (int64_t pc = 0; pc < (int64_t)n * c; pc++) {
    float *dp = dx + pc * h * w;
    memset(dp, 0, sizeof(float) * (size_t)h * w);
    for (int64_t o = pc * oh * ow; o < (pc + 1) * oh * ow; o++) dp[idx[o]] += dy[o];
  }
}
