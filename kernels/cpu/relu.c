/* ReLU and ReLU6, forward and backward. */
#include "kernels/cpu/cpu.h"

void ist_cpu_relu_forward(int64_t n, const float *x, float *y) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

/* Uses the output: y > 0 exactly where x > 0, so the input need not be kept. */
void ist_cpu_relu_backward(int64_t n, const float *dy, const float *y, float *dx) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

#define RELU6_CAP 6.0f

void ist_cpu_relu6_forward(int64_t n, const float *x, float *y) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? (x[i] < RELU6_CAP ? x[i] : RELU6_CAP) : 0.0f;
}

/* 0 < y < 6 exactly where the input was inside the linear range. */
void ist_cpu_relu6_backward(int64_t n, const float *dy, const float *y, float *dx) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) dx[i] = y[i] > 0.0f && y[i] < RELU6_CAP ? dy[i] : 0.0f;
}
