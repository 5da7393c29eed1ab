/* The baseline conv types of SPEC §6 (DSConv, BSConv-U, PENNI d = 2, CirCNN block 4) as weight
 * builders and their backward (layouts in kernels/backend.h). */
#include "kernels/cpu/cpu.h"

/* Index of p1 for CirCNN's weight entry (o, c, t). */
static int64_t circ_index(const ist_base_shape *b, int o, int c, int t) {
  const int nbc = b->ci / IST_CIRCNN_BLOCK, shift = ((o - c) % IST_CIRCNN_BLOCK + IST_CIRCNN_BLOCK) % IST_CIRCNN_BLOCK;
  return (((int64_t)(o / IST_CIRCNN_BLOCK) * nbc + c / IST_CIRCNN_BLOCK) * b->k2 + t) * IST_CIRCNN_BLOCK + shift;
}

void ist_cpu_baseline_forward(const ist_base_shape *b, const float *p1, const float *p2, float *w) {
  for (int o = 0; o < b->co; o++)
    for (int c = 0; c < b->ci; c++) {
      float *wr = w + ((int64_t)o * b->ci + c) * b->k2;
      for (int t = 0; t < b->k2; t++) {
        float v = 0;
        switch (b->type) {
          case IST_BASE_DSCONV: v = p2[(int64_t)o * b->ci + c] * p1[(int64_t)c * b->k2 + t]; break;
          case IST_BASE_BSCONV: v = p1[(int64_t)o * b->k2 + t] * p2[(int64_t)o * b->ci + c]; break;
          case IST_BASE_PENNI:
            for (int i = 0; i < IST_PENNI_D; i++) v += p2[((int64_t)o * b->ci + c) * IST_PENNI_D + i] * p1[i * b->k2 + t];
            break;
          case IST_BASE_CIRCNN: v = p1[circ_index(b, o, c, t)]; break;
          default: break;
        }
        wr[t] = v;
      }
    }
}

void ist_cpu_baseline_backward(const ist_base_shape *b, const float *dw, const float *p1, const float *p2, float *dp1,
                               float *dp2) {
  for (int o = 0; o < b->co; o++)
    for (int c = 0; c < b->ci; c++) {
      const float *g = dw + ((int64_t)o * b->ci + c) * b->k2;
      for (int t = 0; t < b->k2; t++) {
        switch (b->type) {
          case IST_BASE_DSCONV:
            dp2[(int64_t)o * b->ci + c] += g[t] * p1[(int64_t)c * b->k2 + t];
            dp1[(int64_t)c * b->k2 + t] += g[t] * p2[(int64_t)o * b->ci + c];
            break;
          case IST_BASE_BSCONV:
            dp1[(int64_t)o * b->k2 + t] += g[t] * p2[(int64_t)o * b->ci + c];
            dp2[(int64_t)o * b->ci + c] += g[t] * p1[(int64_t)o * b->k2 + t];
            break;
          case IST_BASE_PENNI:
            for (int i = 0; i < IST_PENNI_D; i++) {
              const int64_t ci = ((int64_t)o * b->ci + c) * IST_PENNI_D + i;
              dp2[ci] += g[t] * p1[i * b->k2 + t];
              dp1[i * b->k2 + t] += g[t] * p2[ci];
            }
            break;
          case IST_BASE_CIRCNN: dp1[circ_index(b, o, c, t)] += g[t]; break;
          default: break;
        }
      }
    }
}
