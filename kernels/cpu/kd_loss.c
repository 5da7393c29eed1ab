/* The distillation loss of SPEC §4: β·T²·KL(q_T ‖ p_T) + (1−β)·CE(y, p_1), mean over the batch. */
#include <math.h>

#include "kernels/cpu/cpu.h"

float ist_cpu_kd_loss(int n, int c, const float *student, const float *teacher, const int32_t *labels,
                      float beta, float temperature, float *dlogits, int *correct) {
  const float t = temperature;
  double kl = 0;
  float q[c], p[c];
  /* The CE part and its gradient (scaled by 1−β below). */
  float ce = ist_cpu_cross_entropy(n, c, student, labels, dlogits, correct);
  for (int i = 0; i < n; i++) {
    const float *zs = student + (int64_t)i * c, *zt = teacher + (int64_t)i * c;
    ist_cpu_softmax_row(c, zt, t, q);
    ist_cpu_softmax_row(c, zs, t, p);
    for (int j = 0; j < c; j++)
      if (q[j] > 0) kl += q[j] * (log(q[j]) - log(p[j] > 1e-30f ? p[j] : 1e-30f));
    if (dlogits)
      /* ∂(T²·KL)/∂z_s = T·(p_T − q_T) */
      for (int j = 0; j < c; j++) {
        float *d = dlogits + (int64_t)i * c + j;
        *d = (1 - beta) * *d + beta * t * (p[j] - q[j]) / n;
      }
  }
  return (float)(beta * t * t * kl / n + (1 - beta) * ce);
}
