/* PCG32 (O'Neill), plus the few distributions training needs. */
#include "host/rng.h"

#include <math.h>

void ist_rng_seed(ist_rng *r, uint64_t seed, uint64_t stream) {
  r->state = 0;
  r->inc = (stream << 1u) | 1u;
  ist_rng_u32(r);
  r->state += seed;
  ist_rng_u32(r);
}

uint32_t ist_rng_u32(ist_rng *r) {
  uint64_t old = r->state;
  r->state = old * 6364136223846793005ULL + r->inc;
  uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
  uint32_t rot = (uint32_t)(old >> 59u);
  return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
}

float ist_rng_uniform(ist_rng *r) { return (float)(ist_rng_u32(r) >> 8) * (1.0f / 16777216.0f); }

float ist_rng_normal(ist_rng *r) {
  /* Box-Muller; u1 is kept away from 0 so log() stays finite. */
  float u1 = ((float)(ist_rng_u32(r) >> 8) + 1.0f) * (1.0f / 16777217.0f);
  float u2 = ist_rng_uniform(r);
  return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530718f * u2);
}

uint32_t ist_rng_below(ist_rng *r, uint32_t n) {
  /* Lemire's unbiased bounded integer. */
  uint64_t m = (uint64_t)ist_rng_u32(r) * n;
  uint32_t l = (uint32_t)m;
  if (l < n) {
    uint32_t t = (-n) % n;
    while (l < t) {
      m = (uint64_t)ist_rng_u32(r) * n;
      l = (uint32_t)m;
    }
  }
  return (uint32_t)(m >> 32);
}

void ist_rng_shuffle(ist_rng *r, int32_t *v, int64_t n) {
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = ist_rng_below(r, (uint32_t)(i + 1));
    int32_t t = v[i];
    v[i] = v[j];
    v[j] = t;
  }
}

uint64_t ist_mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

void ist_rng_for(ist_rng *r, uint64_t seed, uint64_t index) { ist_rng_seed(r, ist_mix64(seed ^ ist_mix64(index)), 11); }
