/* Softmax and mean cross-entropy over a batch of logits. */
#include <math.h>

#include "kernels/cpu/cpu.h"

void ist_cpu_softmax_row(int c, const float *x, float t, float *p) {
  float mx = x[0];
  for (int j = 1; j < c; j++) mx = x[j] > mx ? x[j] : mx;
  double z = 0;
  for (int j = 0; j < c; j++) {
    p[j] = expf((x[j] - mx) / t);
    z += p[j];
  }
  for (int j = 0; j < c; j++) p[j] = (float)(p[j] / z);
}

static int argmax(int c, const float *x) {
  int best = 0;
  for (int j = 1; j < c; j++)
    if (x[j] > x[best]) best = j;
  return best;
}

float ist_cpu_cross_entropy(int n, int c, const float *logits, const int32_t *labels, float *dlogits,
                            int *correct) {
  double loss = 0;
  int hits = 0;
  float p[c];
  for (int i = 0; i < n; i++) {
    const float *z = logits + (int64_t)i * c;
    ist_cpu_softmax_row(c, z, 1.0f, p);
    loss -= log(p[labels[i]] > 1e-30f ? p[labels[i]] : 1e-30f);
    hits += argmax(c, z) == labels[i];
    if (dlogits)
      for (int j = 0; j < c; j++) dlogits[(int64_t)i * c + j] = (p[j] - (j == labels[i])) / n;
  }
  if (correct) *correct = hits;
  return (float)(loss / n);
}
