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

static float candidate(float mx, int k) { return k ? mx * (1.0f - QUANT_CANDIDATE_STEP * (float)k) : mx; }

/* x on the grid of `levels` steps of `step` each side of 0 (round half to even, then clip). */
static inline float on_grid(float x, float inv, float step, float levels) {
  const float r = rintf(x * inv);
  return (r < -levels ? -levels : r > levels ? levels : r) * step;
}

/* Σ (q(x) − x)² on the grid of clip s; eight partial sums so that the loop vectorizes. */
static double grid_error(int64_t n, const float *x, float s, float levels) {
  const float inv = levels / s, step = s / levels;
  double acc[8] = {0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) {
      const float d = on_grid(x[i + j], inv, step, levels) - x[i + j];
      acc[j] += (double)d * d;
    }
  double e = 0;
  for (; i < n; i++) {
    const float d = on_grid(x[i], inv, step, levels) - x[i];
    e += (double)d * d;
  }
  for (int j = 0; j < 8; j++) e += acc[j];
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
  /* The candidates are independent: their errors in parallel (each summed by one thread in a fixed
   * order), then the first least one, as a serial scan would pick it. */
  double err[QUANT_CANDIDATES];
  err[0] = grid_error(n, x, mx, levels);
  if (err[0] > 0) { /* 0: already on the max-abs grid (e.g. quantized before) */
#pragma omp parallel for schedule(dynamic) if (n >= 4096)
    for (int k = 1; k < QUANT_CANDIDATES; k++) err[k] = grid_error(n, x, candidate(mx, k), levels);
  }
  int best = 0;
  for (int k = 1; k < QUANT_CANDIDATES && err[0] > 0; k++)
    if (err[k] < err[best]) best = k;
  const float s = candidate(mx, best);
  const float step = s / levels, inv = levels / s;
  for (int64_t i = 0; i < n; i++) y[i] = on_grid(x[i], inv, step, levels);
  return s;
}

void ist_cpu_quantize_backward(int64_t n, int bits, float scale, const float *x, const float *dy, float *dx) {
  const int pass_all = bits == 1 || bits >= 32;
  for (int64_t i = 0; i < n; i++)
    if (pass_all || fabsf(x[i]) <= scale) dx[i] += dy[i];
}
