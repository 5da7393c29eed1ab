/* The analytical cost model of SPEC §7: a photonic in-situ weight generator (micro-ring banks)
 * against loading the dense weight from SRAM, per layer and per model; and a roofline view of
 * dense vs generated layers on a named accelerator. */
#ifndef IST_HW_H
#define IST_HW_H
#include <stdio.h>

#include "models/model.h"
#include "train/report.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  double t_dac_ps, t_mod_ps, t_oe_ps; /* DAC (10 Gb/s), modulator, optical-electrical conversion */
  double ring_um, group_index;        /* micro-ring diameter R, group index n_g (v_g = c / n_g) */
  double sram_gibs;                   /* weight-loading bandwidth, GiB/s */
  double qw;                          /* bitwidth of the dense reference weights */
} ist_hw_params;

/* The paper's constants (SPEC §7): 400 ps, 50 ps, 10 ps, 20 µm, 2.25, 34 GiB/s, 16-bit weights. */
ist_hw_params ist_hw_defaults(void);

typedef struct {
  double t_gen_ps;             /* extra latency of generating the weights (0: not generated) */
  double dense_bytes, bytes;   /* the weight at qw bits; what is stored (factors at their bits) */
  double memory_ratio;         /* bytes / dense_bytes (SPEC §2's r_m, with qw) */
  double load_dense_ps, load_ps; /* loading those at the SRAM bandwidth */
  double saved_ps;             /* load_dense − load: (1 − r_m)·|W|/BW */
  double net_saved_ps;         /* saved − t_gen */
  double fraction_saved;       /* net_saved / load_dense */
  int dacs_b, dacs_u, dacs_v;  /* DACs driving Wb (qb bits), U (qu bits), V (qv bits) */
  int bits_b, bits_u, bits_v;
} ist_hw_layer;

ist_hw_layer ist_hw_layer_cost(const ist_conv_layer *l, const ist_hw_params *p);

/* A roofline: peak compute and memory bandwidth. */
typedef struct {
  const char *name;
  double peak_tflops, bandwidth_gbs;
} ist_accelerator;
/* "h100", "a100", "jetson-orin", "edge-npu"; NULL if unknown. */
const ist_accelerator *ist_accelerator_find(const char *name);
const char *ist_accelerator_names(void);

typedef struct {
  double flops, bytes, intensity, attainable_tflops, us;
  int memory_bound;
} ist_roof_point;
/* A conv at batch n: dense (weights at qw bits) or generated (factors + the generation's work);
 * activations at act_bits. */
ist_roof_point ist_roofline(const ist_conv_layer *l, int generated, int n, double act_bits, const ist_hw_params *p,
                            const ist_accelerator *a);

/* Per-layer tables and model totals of both views; png (may be NULL) plots the roofline. */
ist_status ist_hw_print(FILE *out, const ist_model *m, const ist_hw_params *p, const ist_accelerator *a, int batch,
                        double act_bits, ist_report_format format, const char *png);

#ifdef __cplusplus
}
#endif
#endif
