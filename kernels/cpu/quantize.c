/* The weight quantizer of SPEC §3: uniform, symmetric, per tensor, with an fp32 scale.
 * q bits give 2^q − 1 levels {−n..n}·s/n with n = 2^(q−1) − 1 and s = max|x|, so the tensor keeps
 * its magnitude; q = 1 is sign(x)·mean|x| (binary); q ≥ 32 is the identity. Backward: straight
 * through. */
#include <math.h>

#include "kernels/cpu/cpu.h"

float ist_cpu_quantize_forward(int64_t n, int bits, const float *x, float *y) {
  if (bits >= 32) {
    if (y != x)
      for (int64_t i = 0; i < n; i++) y[i] = x[i];
    return 1.0f;
  }
  if (bits == 1) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += fabsf(x[i]);
    float a = n ? (float)(s / n) : 0.0f;
    for (int64_t i = 0; i < n; i++) y[i] = x[i] >= 0 ? a : -a;
    return a;
  }
  float s = 0;
  for (int64_t i = 0; i < n; i++) s = fmaxf(s, fabsf(x[i]));
  if (s == 0) {
    for (int64_t i = 0; i < n; i++) y[i] = 0;
    return 0;
  }
  const float levels = (float)((1 << (bits - 1)) - 1);
  const float step = s / levels, inv = levels / s;
  for (int64_t i = 0; i < n; i++) y[i] = nearbyintf(x[i] * inv) * step;
  return s;
}

void ist_cpu_quantize_backward(int64_t n, const float *dy, float *dx) {
  for (int64_t i = 0; i < n; i++) dx[i] += dy[i];
}
