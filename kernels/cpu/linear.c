/* Fully-connected layer: y = x·Wᵀ + b. */
#include "kernels/cpu/cpu.h"

void ist_cpu_linear_forward(int n, int in, int out, const float *x, const float *w, const float *b, float *y) {
  for (int i = 0; i < n; i++)
    for (int o = 0; o < out; o++) y[(int64_t)i * out + o] = b ? b[o] : 0.0f;
  ist_cpu_gemm(0, 1, n, out, in, 1.0f, x, in, w, in, 1.0f, y, out);
}

void ist_cpu_linear_backward(int n, int in, int out, const float *dy, const float *x, const float *w, float *dx,
                             float *dw, float *db) {
  ist_cpu_gemm(1, 0, out, in, n, 1.0f, dy, out, x, in, 1.0f, dw, in);
  if (db)
    for (int i = 0; i < n; i++)
      for (int o = 0; o < out; o++) db[o] += dy[(int64_t)i * out + o];
  if (dx) ist_cpu_gemm(0, 0, n, in, out, 1.0f, dy, out, w, in, 0.0f, dx, in);
}
