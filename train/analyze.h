/* The low-rank analysis of the paper's Figure 2: how much of each conv weight's spectrum its top
 * singular values hold, inside kernels (each Ci × k² kernel) and across kernels (Co × Ci·k²). */
#ifndef IST_ANALYZE_H
#define IST_ANALYZE_H
#include <stdio.h>

#include "models/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Share of the singular-value sum held by the top ⌈fraction · rank⌉ singular values. */
#define IST_ANALYZE_TOP_FRACTION 0.3

typedef struct {
  double intra_mean, intra_std; /* over the layer's Co kernels (Ci × k² each) */
  double cross;                 /* of the Co × Ci·k² matrix */
} ist_spectrum;

/* Top-share of the singular values of a (m × n, row-major); 1 for a zero matrix. */
double ist_top_share(int m, int n, const float *a, double fraction);
/* Per-layer shares of a dense conv weight (co × ci·k²; ci is the per-group channel count). */
ist_status ist_analyze_weight(int co, int ci, int k2, const float *w, ist_spectrum *out);
/* Table of every conv of a dense model (generated convs are analysed on their generated weight);
 * with png, also a gnuplot bar chart written there. */
ist_status ist_analyze_print(FILE *out, ist_model *m, const char *png);

#ifdef __cplusplus
}
#endif
#endif
