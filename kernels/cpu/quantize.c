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
#include "kernels/quantize_grid.h"

/* Σ (q(x) − x)² on the grid of clip s, in kernels/quantize_grid.h's order (the GPU's too). */
static double grid_error(int64_t n, const float *x, float s, float levels) {
  const float inv = levels / s, step = s / levels;
  double e = 0;
  for (int64_t c = 0; c * IST_QUANT_CHUNK < n; c++)
    e += ist_quant_chunk_error(x + c * IST_QUANT_CHUNK, ist_quant_chunk_len(n, c), inv, step, levels);
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
    for (int64_t c = 0; c * IST_QUANT_CHUNK < n; c++)
      s += ist_quant_chunk_abs(x + c * IST_QUANT_CHUNK, ist_quant_chunk_len(n, c));
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
  const float levels = ist_quant_levels(bits);
  /* The candidates are independent: their errors in parallel (each summed by one thread in a fixed
   * order), then the first least one, as a serial scan would pick it. */
  double err[IST_QUANT_CANDIDATES];
  err[0] = grid_error(n, x, mx, levels);
  if (err[0] > 0) { /* 0: already on the max-abs grid (e.g. quantized before) */
#pragma omp parallel for schedule(dynamic) if (n >= 4096)
    for (int k = 1; k < IST_QUANT_CANDIDATES; k++) err[k] = grid_error(n, x, ist_quant_candidate(mx, k), levels);
  }
  int best = 0;
  for (int k = 1; k < IST_QUANT_CANDIDATES && err[0] > 0; k++)
    if (err[k] < err[best]) best = k;
  const float s = ist_quant_candidate(mx, best);
  const float step = s / levels, inv = levels / s;
  for (int64_t i = 0; i < n; i++) y[i] = ist_quant_level(x[i], inv, levels) * step;
  return s;
}

void ist_cpu_quantize_backward(int64_t n, int bits, float scale, const float *x, const float *dy, float *dx) {
  const int pass_all = bits == 1 || bits >= 32;
  for (int64_t i = 0; i < n; i++)
    if (pass_all || fabsf(x[i]) <= scale) dx[i] += dy[i];
}
