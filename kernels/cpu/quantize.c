/* The weight quantizer of SPEC §3: uniform, symmetric, per tensor, with an fp32 scale.
 * q bits give 2^q − 1 levels {−n..n}·s/n with n = 2^(q−1) − 1. The clipping scale s is the
 * candidate max|x|·(1 − k/100), k = 0..80 (down to a fifth of the max), with the least squared
 * error: pure max-abs scaling lets one outlier coarsen the grid for every other value (it costs
 * 4-bit factors a large share of their accuracy). The candidates are 1% apart: in training, a
 * switch between neighbours requantizes the whole tensor, and finer steps keep that change small. The scale is kept, so the quantized tensor
 * keeps its magnitude, and quantizing an already-quantized tensor returns it unchanged
 * (candidate k = 0 reproduces it exactly). q = 1 is sign(x)·mean|x|; q ≥ 32 is the identity.
 * Backward: straight through, inside the clip. */
#include <math.h>

#include "kernels/cpu/cpu.h"

#define QUANT_CANDIDATES 81
#define QUANT_CANDIDATE_STEP 0.01f

static double grid_error(int64_t n, const float *x, float s, float levels) {
  const float inv = levels / s, step = s / levels;
  double e = 0;
  for (int64_t i = 0; i < n; i++) {
    float q = fminf(fmaxf(nearbyintf(x[i] * inv), -levels), levels) * step;
    e += (double)(q - x[i]) * (q - x[i]);
  }
  return e;
}

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
  float mx = 0;
  for (int64_t i = 0; i < n; i++) mx = fmaxf(mx, fabsf(x[i]));
  if (mx == 0) {
    for (int64_t i = 0; i < n; i++) y[i] = 0;
    return 0;
  }
  const float levels = (float)((1 << (bits - 1)) - 1);
  float s = mx;
  double best = grid_error(n, x, mx, levels);
  for (int k = 1; k < QUANT_CANDIDATES && best > 0; k++) {
    float c = mx * (1.0f - QUANT_CANDIDATE_STEP * (float)k);
    double e = grid_error(n, x, c, levels);
    if (e < best) best = e, s = c;
  }
  const float step = s / levels, inv = levels / s;
  for (int64_t i = 0; i < n; i++) y[i] = fminf(fmaxf(nearbyintf(x[i] * inv), -levels), levels) * step;
  return s;
}

void ist_cpu_quantize_backward(int64_t n, int bits, float scale, const float *x, const float *dy, float *dx) {
  const int pass_all = bits == 1 || bits >= 32;
  for (int64_t i = 0; i < n; i++)
    if (pass_all || fabsf(x[i]) <= scale) dx[i] += dy[i];
}
