/* Scalar formulas of the compact networks' ops, shared by the CPU reference (activations.c) and
 * the CUDA kernels (kernels/cuda/activations.cu) so that both compute the same thing: PyTorch's
 * definitions of hardswish, hardsigmoid, SiLU, sigmoid; the counter-based dropout mask; the
 * uniform activation quantizer. */
#ifndef IST_ACTIVATIONS_MATH_H
#define IST_ACTIVATIONS_MATH_H
#include <math.h>
#include <stdint.h>

#if defined(__CUDACC__) || defined(IST_CUDA_EMU)
#define IST_HD __host__ __device__ inline
#else
#define IST_HD static inline
#endif

/* hardsigmoid(x) = relu6(x + 3) / 6; its derivative is 1/6 inside (−3, 3), as PyTorch's. */
IST_HD float ist_hardsigmoid(float x) { return x <= -3.0f ? 0.0f : x >= 3.0f ? 1.0f : x / 6.0f + 0.5f; }
IST_HD float ist_hardsigmoid_grad(float x) { return x > -3.0f && x < 3.0f ? 1.0f / 6.0f : 0.0f; }
/* hardswish(x) = x · hardsigmoid(x); derivative (2x + 3)/6 inside (−3, 3), 1 above (PyTorch). */
IST_HD float ist_hardswish(float x) { return x * ist_hardsigmoid(x); }
IST_HD float ist_hardswish_grad(float x) { return x < -3.0f ? 0.0f : x > 3.0f ? 1.0f : (2.0f * x + 3.0f) / 6.0f; }
IST_HD float ist_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
/* d/dx x·σ(x) = σ(x)·(1 + x·(1 − σ(x))). */
IST_HD float ist_silu_grad(float x) {
  const float s = ist_sigmoid(x);
  return s * (1.0f + x * (1.0f - s));
}

/* Whether element (or group) `index` survives dropout with probability p under `seed`: a
 * splitmix64 hash of both, so the backward (and another backend) recomputes the same mask. */
IST_HD int ist_dropout_kept(uint64_t seed, int64_t index, float p) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * ((uint64_t)index + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  const float u = (float)(z >> 40) * (1.0f / 16777216.0f); /* 24 bits: uniform in [0, 1) */
  return u >= p;
}

/* Uniform quantization of x to 2^bits − 1 steps over [lo, hi] (clamped); lo = hi gives lo. */
IST_HD float ist_act_quantize(float x, float lo, float hi, int bits) {
  if (!(hi > lo)) return lo;
  const float levels = (float)((1u << bits) - 1u), step = (hi - lo) / levels;
  const float c = x < lo ? lo : x > hi ? hi : x;
  return lo + rintf((c - lo) / step) * step;
}

/* Running range (lo, hi) ← (1 − momentum)·running + momentum·batch; an unset one (hi ≤ lo) is
 * set to the batch's. */
IST_HD void ist_act_range_update(float *run, float lo, float hi, float momentum) {
  if (!(run[1] > run[0])) {
    run[0] = lo;
    run[1] = hi;
  } else {
    run[0] += momentum * (lo - run[0]);
    run[1] += momentum * (hi - run[1]);
  }
}
#endif
