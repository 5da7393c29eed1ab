/* The parameter and memory ratio report of SPEC §2 (per layer and whole model). */
#ifndef IST_REPORT_H
#define IST_REPORT_H
#include <stdio.h>

#include "models/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  double params, dense_params; /* stored parameters vs the dense fp32 model */
  double bits, dense_bits;
  double param_ratio, memory_ratio;
} ist_ratio;

/* Ratios of one conv layer (its weight only). */
ist_ratio ist_conv_ratio(const ist_conv_layer *l);
/* Whole-model ratios with SPEC §2's accounting. */
ist_ratio ist_model_ratio(const ist_model *m);
typedef enum { IST_REPORT_TEXT, IST_REPORT_MARKDOWN, IST_REPORT_CSV } ist_report_format;
/* Prints the per-layer table and the totals: aligned text, a markdown table, or CSV (one header
 * line, a row per conv, a "model" row; no closing sentence). */
void ist_report_print(FILE *out, const ist_model *m, ist_report_format format);

#ifdef __cplusplus
}
#endif
#endif
