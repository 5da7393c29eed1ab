/* The quantizer's grid and clip search (SPEC §3), shared by the CPU reference (kernels/cpu/quantize.c)
 * and its CUDA twin (kernels/cuda/quantize.cu): the same candidates, the same rounding and the same
 * order of summation, so that both compute bit-identical candidate errors and choose the same clip
 * (a checkpoint trained on the GPU evaluates to the same accuracy on the CPU). Every expression that
 * a compiler could contract into a fused multiply-add is written as an explicit fmaf (exact on both:
 * one rounding), and the error of a value is a double square of a float (exact), so only the order
 * of the double sums matters: chunks of IST_QUANT_CHUNK consecutive values, each summed in
 * IST_QUANT_LANES interleaved lanes (value i of a chunk into lane i mod 8, lanes then added in
 * order; the CPU's loop vectorizes), and the chunk sums added in index order. */
#ifndef IST_QUANTIZE_GRID_H
#define IST_QUANTIZE_GRID_H
#include <math.h>
#include <stdint.h>

#if defined(__CUDACC__)
#define IST_QUANT_FN static inline __host__ __device__
#else
#define IST_QUANT_FN static inline
#endif

/* Clip candidates max|x|·(1 − k/100), k = 0..80: down to a fifth of the max, 1% apart. */
#define IST_QUANT_CANDIDATES 81
#define IST_QUANT_CANDIDATE_STEP 0.01f
#define IST_QUANT_CHUNK 256
#define IST_QUANT_LANES 8

/* Candidate k's clip; k = 0 is the max-abs clip itself, which reproduces a quantized tensor. */
IST_QUANT_FN float ist_quant_candidate(float mx, int k) {
  return k ? mx * fmaf(-IST_QUANT_CANDIDATE_STEP, (float)k, 1.0f) : mx;
}

/* Levels n = 2^(q−1) − 1 each side of 0. */
IST_QUANT_FN float ist_quant_levels(int bits) { return (float)((1 << (bits - 1)) - 1); }

/* x's grid level for inv = levels / clip (round half to even, then clip to ±levels). */
IST_QUANT_FN float ist_quant_level(float x, float inv, float levels) {
  const float r = rintf(x * inv);
  return r < -levels ? -levels : r > levels ? levels : r;
}

/* (q(x) − x)², q(x) = level·step, with one rounding in the difference. */
IST_QUANT_FN double ist_quant_sq_error(float x, float inv, float step, float levels) {
  const float d = fmaf(ist_quant_level(x, inv, levels), step, -x);
  return (double)d * d;
}

/* Σ over a chunk (len ≤ IST_QUANT_CHUNK values) of the squared errors, in the fixed lane order. */
IST_QUANT_FN double ist_quant_chunk_error(const float *x, int len, float inv, float step, float levels) {
  double acc[IST_QUANT_LANES] = {0};
  int i = 0;
  for (; i + IST_QUANT_LANES <= len; i += IST_QUANT_LANES)
    for (int j = 0; j < IST_QUANT_LANES; j++) acc[j] += ist_quant_sq_error(x[i + j], inv, step, levels);
  for (; i < len; i++) acc[i % IST_QUANT_LANES] += ist_quant_sq_error(x[i], inv, step, levels);
  double e = 0;
  for (int j = 0; j < IST_QUANT_LANES; j++) e += acc[j];
  return e;
}

/* Σ |x| over a chunk in the same order (the 1-bit quantizer's mean). */
IST_QUANT_FN double ist_quant_chunk_abs(const float *x, int len) {
  double acc[IST_QUANT_LANES] = {0};
  int i = 0;
  for (; i + IST_QUANT_LANES <= len; i += IST_QUANT_LANES)
    for (int j = 0; j < IST_QUANT_LANES; j++) acc[j] += fabsf(x[i + j]);
  for (; i < len; i++) acc[i % IST_QUANT_LANES] += fabsf(x[i]);
  double e = 0;
  for (int j = 0; j < IST_QUANT_LANES; j++) e += acc[j];
  return e;
}

/* Values in chunk c of n. */
IST_QUANT_FN int ist_quant_chunk_len(int64_t n, int64_t c) {
  const int64_t rest = n - c * IST_QUANT_CHUNK;
  return (int)(rest < IST_QUANT_CHUNK ? rest : IST_QUANT_CHUNK);
}
#endif
