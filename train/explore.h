/* Design-space exploration: every setting of a grid projected from a teacher (train-free: ratios
 * and the ℓ2 projection error of each layer after quantization), optionally trained; and the
 * per-layer search for a target memory ratio. */
#ifndef IST_EXPLORE_H
#define IST_EXPLORE_H
#include <stdio.h>

#include "models/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  char setting[64];              /* the global setting, or the per-layer table ("conv1=…,conv2=…") */
  double param_ratio, memory_ratio; /* whole model, SPEC §2 accounting */
  int nlayers;
  double err[IST_MAX_CONVS];      /* ‖Ŵ − W(quantized factors)‖²_F per conv */
  double bits[IST_MAX_CONVS];     /* what each conv stores (ist_conv_ratio) */
  double total_err, rel_err;      /* Σ err; sqrt(Σ err / Σ ‖Ŵ‖²) */
  double accuracy;                /* after training, or −1 */
} ist_explore_point;

/* Fills the point of a student initialized from the teacher (ℓ2 projection), named setting: its
 * ratios and each conv's error after quantization. */
ist_status ist_explore_measure(const ist_model *teacher, ist_model *student, const char *setting,
                               ist_explore_point *out);

/* Per-layer choice among the measured global settings (each layer takes any point's setting for
 * that layer): the least total error whose whole-model memory ratio is ≤ target (multiple-choice
 * knapsack, exact on a grid of `resolution` budget steps). fixed_bits: what the non-conv
 * parameters store, dense_bits: the whole dense model's. Writes the chosen point index per layer;
 * fails when no choice fits. */
ist_status ist_explore_search(const ist_explore_point *pts, int n, double fixed_bits, double dense_bits, double target,
                              int resolution, int *choice);

/* Grid-search helpers for the program: the best global point with memory ratio ≤ target (−1 if
 * none), and the Pareto front (accuracy if trained, else −error, against memory ratio). */
int ist_explore_best_global(const ist_explore_point *pts, int n, double target);
void ist_explore_pareto(const ist_explore_point *pts, int n, int *on_front);

void ist_explore_csv(FILE *out, const ist_explore_point *pts, int n, const ist_model *m, const int *on_front);

#ifdef __cplusplus
}
#endif
#endif
