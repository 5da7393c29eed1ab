/* The compact networks' element-wise ops (hardswish, hardsigmoid, SiLU, sigmoid), the
 * squeeze-and-excitation channel scale, dropout / stochastic depth, and activation quantization:
 * the CPU reference of the op table's last block (kernels/backend.h). */
#include <math.h>
#include <string.h>

#include "kernels/cpu/activations_math.h"
#include "kernels/cpu/cpu.h"

void ist_cpu_hardswish_forward(int64_t n, const float *x, float *y) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) y[i] = ist_hardswish(x[i]);
}

void ist_cpu_hardswish_backward(int64_t n, const float *dy, const float *x, float *dx) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * ist_hardswish_grad(x[i]);
}

void ist_cpu_hardsigmoid_forward(int64_t n, const float *x, float *y) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) y[i] = ist_hardsigmoid(x[i]);
}

void ist_cpu_hardsigmoid_backward(int64_t n, const float *dy, const float *x, float *dx) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * ist_hardsigmoid_grad(x[i]);
}

void ist_cpu_silu_forward(int64_t n, const float *x, float *y) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) y[i] = x[i] * ist_sigmoid(x[i]);
}

void ist_cpu_silu_backward(int64_t n, const float *dy, const float *x, float *dx) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * ist_silu_grad(x[i]);
}

void ist_cpu_sigmoid_forward(int64_t n, const float *x, float *y) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) y[i] = ist_sigmoid(x[i]);
}

/* σ' = y·(1 − y): the output suffices. */
void ist_cpu_sigmoid_backward(int64_t n, const float *dy, const float *y, float *dx) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * y[i] * (1.0f - y[i]);
}

void ist_cpu_channel_scale_forward(int n, int c, int hw, const float *x, const float *s, float *y) {
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < (int64_t)n * c; p++)
    for (int i = 0; i < hw; i++) y[p * hw + i] = x[p * hw + i] * s[p];
}

void ist_cpu_channel_scale_backward(int n, int c, int hw, const float *dy, const float *x, const float *s, float *dx,
                                    float *ds) {
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < (int64_t)n * c; p++) {
    double acc = 0;
    for (int i = 0; i < hw; i++) {
      acc += (double)dy[p * hw + i] * x[p * hw + i];
      if (dx) dx[p * hw + i] = dy[p * hw + i] * s[p];
    }
    ds[p] = (float)acc;
  }
}

void ist_cpu_channel_bias_forward(int n, int c, int hw, float *y, const float *b) {
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < (int64_t)n * c; p++)
    for (int i = 0; i < hw; i++) y[p * hw + i] += b[p % c];
}

/* Sums over images in image order, per channel (deterministic). */
void ist_cpu_channel_bias_backward(int n, int c, int hw, const float *dy, float *db) {
#pragma omp parallel for schedule(static)
  for (int ch = 0; ch < c; ch++) {
    double acc = 0;
    for (int i = 0; i < n; i++)
      for (int k = 0; k < hw; k++) acc += dy[((int64_t)i * c + ch) * hw + k];
    db[ch] += (float)acc;
  }
}

void ist_cpu_dropout_forward(int64_t n, int64_t group, float p, uint64_t seed, const float *x, float *y) {
  const float keep = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) y[i] = ist_dropout_kept(seed, i / group, p) ? x[i] * keep : 0.0f;
}

void ist_cpu_dropout_backward(int64_t n, int64_t group, float p, uint64_t seed, const float *dy, float *dx) {
  const float keep = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) dx[i] = ist_dropout_kept(seed, i / group, p) ? dy[i] * keep : 0.0f;
}

void ist_cpu_act_quantize_forward(int64_t n, int bits, const float *x, float *y, float *run_range, float *used_range,
                                  float momentum, int training) {
  if (bits >= 32) {
    if (y != x) memcpy(y, x, sizeof(float) * (size_t)n);
    return;
  }
  if (training) {
    /* The batch's range, widened to hold 0 (ReLU outputs' zeros stay exact), then folded into
     * the running range as BatchNorm folds its statistics; the first batch sets it. */
    float lo = 0.0f, hi = 0.0f;
    for (int64_t i = 0; i < n; i++) {
      lo = fminf(lo, x[i]);
      hi = fmaxf(hi, x[i]);
    }
    used_range[0] = lo;
    used_range[1] = hi;
    ist_act_range_update(run_range, lo, hi, momentum);
  } else {
    used_range[0] = run_range[0];
    used_range[1] = run_range[1];
  }
  const float lo = used_range[0], hi = used_range[1];
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) y[i] = ist_act_quantize(x[i], lo, hi, bits);
}

void ist_cpu_act_quantize_backward(int64_t n, int bits, const float *used_range, const float *x, const float *dy,
                                   float *dx) {
  const float lo = used_range[0], hi = used_range[1];
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) dx[i] = bits >= 32 || (x[i] >= lo && x[i] <= hi) ? dy[i] : 0.0f;
}
