/* Elementwise sum (residual connections) and channel-slice copies (dense connections). */
#include <string.h>

#include "kernels/cpu/cpu.h"

void ist_cpu_add(int64_t n, const float *a, const float *b, float *y) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void ist_cpu_scale(int64_t n, float a, float *x) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) x[i] *= a;
}

void ist_cpu_copy_channels(int n, int hw, int c, const float *src, int src_c, int src_off, float *dst, int dst_c,
                           int dst_off, int accumulate) {
  const int64_t len = (int64_t)c * hw;
#pragma omp parallel for schedule(static)
  for (int b = 0; b < n; b++) {
    const float *s = src + ((int64_t)b * src_c + src_off) * hw;
    float *d = dst + ((int64_t)b * dst_c + dst_off) * hw;
    if (accumulate)
      for (int64_t i = 0; i < len; i++) d[i] += s[i];
    else
      memcpy(d, s, sizeof(float) * (size_t)len);
  }
}
