/* The squared error between two tensors and its gradient: the ℓ2 projection's objective (SPEC §4
 * step 1), a backend op so the projection's iterations run where the factors live. */
#include "kernels/cpu/cpu.h"

void ist_cpu_sq_diff(int64_t n, const float *a, const float *b, float *grad, float *loss_sum) {
  double ss = 0;
  for (int64_t i = 0; i < n; i++) {
    const float d = a[i] - b[i];
    grad[i] = 2.0f * d / (float)n;
    ss += (double)d * d;
  }
  if (loss_sum) *loss_sum += (float)(ss / (double)n);
}
