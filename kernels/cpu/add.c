/* Elementwise sum (residual connections). */
#include "kernels/cpu/cpu.h"

void ist_cpu_add(int64_t n, const float *a, const float *b, float *y) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}
