/* Seeded random numbers (PCG32): the same seed gives the same run. */
#ifndef IST_RNG_H
#define IST_RNG_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  uint64_t state;
  uint64_t inc;
} ist_rng;

void ist_rng_seed(ist_rng *r, uint64_t seed, uint64_t stream);
uint32_t ist_rng_u32(ist_rng *r);
float ist_rng_uniform(ist_rng *r);          /* in [0, 1) */
float ist_rng_normal(ist_rng *r);           /* standard normal */
uint32_t ist_rng_below(ist_rng *r, uint32_t n); /* uniform in [0, n) */
void ist_rng_shuffle(ist_rng *r, int32_t *v, int64_t n);
/* A generator for item `index` of a family `seed` (SplitMix64-mixed, so neighbouring indices give
 * unrelated sequences): per-image augmentation draws that do not depend on who draws them. */
void ist_rng_for(ist_rng *r, uint64_t seed, uint64_t index);
uint64_t ist_mix64(uint64_t x); /* SplitMix64's finalizer */

#ifdef __cplusplus
}
#endif
#endif
