/* SPEC §7's cost model and a roofline view (see hw.h). */
#include "train/hw.h"

#include "host/gnuplot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LIGHT_M_PER_S 299792458.0
#define GIB 1073741824.0

ist_hw_params ist_hw_defaults(void) {
  return (ist_hw_params){.t_dac_ps = 400, .t_mod_ps = 50, .t_oe_ps = 10, .ring_um = 20, .group_index = 2.25,
                         .sram_gibs = 34, .qw = 16};
}

ist_hw_layer ist_hw_layer_cost(const ist_conv_layer *l, const ist_hw_params *p) {
  ist_hw_layer h = {0};
  const double numel = (double)ist_conv_weight_numel(&l->shape);
  h.dense_bytes = numel * p->qw / 8;
  h.bytes = h.dense_bytes;
  if (l->set.generated) {
    const ist_gen_shape *g = &l->gen;
    const ist_conv_setting *s = &l->set;
    const int bi = g->level1 ? g->bi : 0, bc = g->level2 ? g->bc : 0;
    /* τ_gen = τ_DAC + 2·(τ_mod + τ_oe) + 4·(Bi + Bc)·R / v_g, the rings a level does not use left out. */
    const double ring_ps = 4.0 * (bi + bc) * p->ring_um * 1e-6 / (LIGHT_M_PER_S / p->group_index) * 1e12;
    h.t_gen_ps = p->t_dac_ps + 2 * (p->t_mod_ps + p->t_oe_ps) + ring_ps;
    /* r_m = (qb·|Wb| + qu·|U| + qv·|V|) / (qw·|W|), Wc in place of Wb and U when level 1 is off. */
    double bits = g->level1 ? (double)ist_gen_wb_numel(g) * s->qb + (double)ist_gen_u_numel(g) * s->qu
                            : (double)ist_gen_wc_numel(g) * s->qb;
    if (g->level2) bits += (double)ist_gen_v_numel(g) * s->qv;
    h.bytes = bits / 8;
    /* The generator's drivers: level 1 holds Wb_j in a bank of Bi·k² rings and modulates the Bi
     * entries of a row of U_j; level 2 modulates the Bc entries of a row of V. */
    if (g->level1) h.dacs_b = g->bi * g->k2, h.bits_b = s->qb, h.dacs_u = g->bi, h.bits_u = s->qu;
    else h.dacs_b = g->k2, h.bits_b = s->qb; /* a free Wc_j row: k² values */
    if (g->level2) h.dacs_v = g->bc, h.bits_v = s->qv;
  }
  h.memory_ratio = h.bytes / h.dense_bytes;
  const double bytes_per_ps = p->sram_gibs * GIB / 1e12;
  h.load_dense_ps = h.dense_bytes / bytes_per_ps;
  h.load_ps = h.bytes / bytes_per_ps;
  h.saved_ps = h.load_dense_ps - h.load_ps;
  h.net_saved_ps = h.saved_ps - h.t_gen_ps;
  h.fraction_saved = h.net_saved_ps / h.load_dense_ps;
  return h;
}

static const ist_accelerator ACCELERATORS[] = {
    {"h100", 989.0, 3350.0},       /* H100 SXM: dense BF16 tensor cores, HBM3 */
    {"a100", 312.0, 2039.0},       /* A100 80 GB SXM: dense BF16, HBM2e */
    {"jetson-orin", 42.5, 204.8},  /* Jetson AGX Orin 64 GB: GPU dense FP16, LPDDR5 */
    {"edge-npu", 4.0, 25.6},       /* a 4-TOPS NPU on LPDDR4X */
};

const ist_accelerator *ist_accelerator_find(const char *name) {
  for (size_t i = 0; i < sizeof ACCELERATORS / sizeof ACCELERATORS[0]; i++)
    if (!strcmp(ACCELERATORS[i].name, name)) return &ACCELERATORS[i];
  return NULL;
}

const char *ist_accelerator_names(void) { return "h100, a100, jetson-orin, edge-npu"; }

ist_roof_point ist_roofline(const ist_conv_layer *l, int generated, int n, double act_bits, const ist_hw_params *p,
                            const ist_accelerator *a) {
  const ist_conv_shape *s = &l->shape;
  const double numel = (double)ist_conv_weight_numel(s);
  ist_roof_point r = {0};
  r.flops = 2.0 * numel * s->ho * s->wo * n;
  const double acts = ((double)s->ci * s->h * s->w + (double)s->co * s->ho * s->wo) * n * act_bits / 8;
  if (generated && l->set.generated) {
    const ist_gen_shape *g = &l->gen;
    /* SPEC §2: 2·Bc·Ci·Bi·k² (level 1) + 2·Co·Bc·Ci·k² (level 2) to build W, once per batch. */
    if (g->level1) r.flops += 2.0 * g->nb * g->ci * g->bi * g->k2;
    if (g->level2) r.flops += 2.0 * g->co * g->bc * (double)g->ci * g->k2;
    r.bytes = ist_hw_layer_cost(l, p).bytes + acts;
  } else {
    r.bytes = numel * p->qw / 8 + acts;
  }
  r.intensity = r.flops / r.bytes;
  const double roof = r.intensity * a->bandwidth_gbs * 1e9 / 1e12; /* TFLOP/s the bandwidth allows */
  r.memory_bound = roof < a->peak_tflops;
  r.attainable_tflops = r.memory_bound ? roof : a->peak_tflops;
  r.us = r.flops / (r.attainable_tflops * 1e12) * 1e6;
  return r;
}

/* One table row: text (padded), markdown or CSV. */
static void row(FILE *out, ist_report_format f, int ncol, const char *const *cells, const int *width) {
  const char *sep = f == IST_REPORT_MARKDOWN ? " | " : f == IST_REPORT_CSV ? "," : "  ";
  fputs(f == IST_REPORT_MARKDOWN ? "| " : "", out);
  for (int i = 0; i < ncol; i++)
    fprintf(out, "%s%*s", i ? sep : "", f == IST_REPORT_TEXT ? (i == 0 ? -width[i] : width[i]) : 0, cells[i]);
  fputs(f == IST_REPORT_MARKDOWN ? " |\n" : "\n", out);
  if (f == IST_REPORT_MARKDOWN && !strcmp(cells[0], "layer")) {
    fputs("|---", out);
    for (int i = 1; i < ncol; i++) fputs("|---:", out);
    fputs("|\n", out);
  }
}

#define CELL(buf, ...) snprintf(buf, sizeof buf, __VA_ARGS__)

static ist_status plot_roofline(const ist_model *m, const ist_hw_params *p, const ist_accelerator *a, int batch,
                                double act_bits, const char *png) {
  IST_TRY(ist_gnuplot_check_path("--png", png));
  char dat[4096], gp[4096];
  snprintf(dat, sizeof dat, "%s.dat", png);
  snprintf(gp, sizeof gp, "%s.gp", png);
  FILE *f = fopen(dat, "w");
  if (!f) return ist_fail(IST_ERR_IO, "--png: cannot write %s", dat);
  for (int gen = 0; gen < 2; gen++) {
    for (int i = 0; i < m->nconvs; i++) {
      ist_roof_point r = ist_roofline(m->convs[i], gen, batch, act_bits, p, a);
      fprintf(f, "%g %g %s\n", r.intensity, r.attainable_tflops, m->convs[i]->name);
    }
    fprintf(f, "\n\n");
  }
  fclose(f);
  f = fopen(gp, "w");
  if (!f) return ist_fail(IST_ERR_IO, "--png: cannot write %s", gp);
  const double ridge = a->peak_tflops * 1e12 / (a->bandwidth_gbs * 1e9);
  fputs("set terminal pngcairo size 900,600\nset output ", f);
  ist_gnuplot_quote(f, png);
  fprintf(f,
          "\nset logscale xy\nset grid\n"
          "set xlabel 'arithmetic intensity (FLOP/byte)'\nset ylabel 'attainable TFLOP/s'\n"
          "set title '%s roofline (%.0f TFLOP/s, %.0f GB/s), %s, batch %d'\nset key left top\n"
          "roof(x) = x < %g ? x * %g : %g\nset xrange [0.1:%g]\n"
          "plot roof(x) title 'roofline' lw 2 lc rgb 'black', ",
          a->name, a->peak_tflops, a->bandwidth_gbs, m->arch, batch, ridge, a->bandwidth_gbs / 1e3, a->peak_tflops,
          ridge * 100);
  ist_gnuplot_quote(f, dat);
  fputs(" index 0 using 1:2 title 'dense' pt 7 ps 1.2, ", f);
  ist_gnuplot_quote(f, dat);
  fputs(" index 1 using 1:2 title 'generated' pt 5 ps 1.2\n", f);
  fclose(f);
  return ist_gnuplot_run("--png", gp);
}

ist_status ist_hw_print(FILE *out, const ist_model *m, const ist_hw_params *p, const ist_accelerator *a, int batch,
                        double act_bits, ist_report_format format, const char *png) {
  int nw = 5;
  for (int i = 0; i < m->nconvs; i++)
    if ((int)strlen(m->convs[i]->name) > nw) nw = (int)strlen(m->convs[i]->name);
  static const char *head1[] = {"layer", "setting", "t_gen ps", "W bytes", "stored bytes", "r_m", "load ps",
                                "saved ps", "net saved ps", "net share", "DACs (bits)"};
  const int w1[] = {nw, 12, 9, 10, 12, 7, 10, 10, 12, 9, 22};
  if (format != IST_REPORT_CSV)
    fprintf(out, "In-situ generation vs loading the dense weight (qw = %g bits, SRAM %g GiB/s; τ_DAC %g ps, τ_mod %g ps, "
                 "τ_oe %g ps, R %g µm, n_g %g):\n", p->qw, p->sram_gibs, p->t_dac_ps, p->t_mod_ps, p->t_oe_ps, p->ring_um,
            p->group_index);
  row(out, format, 11, head1, w1);
  ist_hw_layer t = {0};
  for (int i = 0; i < m->nconvs; i++) {
    const ist_conv_layer *l = m->convs[i];
    ist_hw_layer h = ist_hw_layer_cost(l, p);
    char c[11][96];
    ist_setting_format(&l->set, c[1], sizeof c[1]);
    CELL(c[0], "%s", l->name), CELL(c[2], "%.1f", h.t_gen_ps), CELL(c[3], "%.0f", h.dense_bytes);
    CELL(c[4], "%.0f", h.bytes), CELL(c[5], "%.4f", h.memory_ratio), CELL(c[6], "%.0f", h.load_dense_ps);
    CELL(c[7], "%.0f", h.saved_ps), CELL(c[8], "%.0f", h.net_saved_ps), CELL(c[9], "%.4f", h.fraction_saved);
    if (l->set.generated)
      CELL(c[10], "%d(%d)+%d(%d)+%d(%d)", h.dacs_b, h.bits_b, h.dacs_u, h.bits_u, h.dacs_v, h.bits_v);
    else CELL(c[10], "-");
    const char *cells[11];
    for (int k = 0; k < 11; k++) cells[k] = c[k];
    row(out, format, 11, cells, w1);
    t.t_gen_ps += h.t_gen_ps, t.dense_bytes += h.dense_bytes, t.bytes += h.bytes, t.load_dense_ps += h.load_dense_ps;
    t.saved_ps += h.saved_ps, t.net_saved_ps += h.net_saved_ps;
    t.dacs_b += h.dacs_b, t.dacs_u += h.dacs_u, t.dacs_v += h.dacs_v;
  }
  {
    char c[11][96];
    CELL(c[0], "model"), CELL(c[1], "(convs)"), CELL(c[2], "%.1f", t.t_gen_ps), CELL(c[3], "%.0f", t.dense_bytes);
    CELL(c[4], "%.0f", t.bytes), CELL(c[5], "%.4f", t.bytes / t.dense_bytes), CELL(c[6], "%.0f", t.load_dense_ps);
    CELL(c[7], "%.0f", t.saved_ps), CELL(c[8], "%.0f", t.net_saved_ps), CELL(c[9], "%.4f", t.net_saved_ps / t.load_dense_ps);
    CELL(c[10], "%d+%d+%d", t.dacs_b, t.dacs_u, t.dacs_v);
    const char *cells[11];
    for (int k = 0; k < 11; k++) cells[k] = c[k];
    row(out, format, 11, cells, w1);
  }
  if (format != IST_REPORT_CSV)
    fprintf(out, "\nRoofline on %s (%g TFLOP/s, %g GB/s), batch %d, activations at %g bits:\n", a->name, a->peak_tflops,
            a->bandwidth_gbs, batch, act_bits);
  else fputs("\n", out);
  static const char *head2[] = {"layer", "FLOP/B dense", "FLOP/B gen", "TFLOP/s dense", "TFLOP/s gen", "bound dense",
                                "bound gen", "us dense", "us gen", "speed-up"};
  const int w2[] = {nw, 12, 10, 13, 11, 11, 9, 10, 10, 8};
  row(out, format, 10, head2, w2);
  double us_d = 0, us_g = 0;
  for (int i = 0; i < m->nconvs; i++) {
    const ist_conv_layer *l = m->convs[i];
    ist_roof_point d = ist_roofline(l, 0, batch, act_bits, p, a), g = ist_roofline(l, 1, batch, act_bits, p, a);
    char c[10][96];
    CELL(c[0], "%s", l->name), CELL(c[1], "%.1f", d.intensity), CELL(c[2], "%.1f", g.intensity);
    CELL(c[3], "%.2f", d.attainable_tflops), CELL(c[4], "%.2f", g.attainable_tflops);
    CELL(c[5], "%s", d.memory_bound ? "memory" : "compute"), CELL(c[6], "%s", g.memory_bound ? "memory" : "compute");
    CELL(c[7], "%.3f", d.us), CELL(c[8], "%.3f", g.us), CELL(c[9], "%.2f", d.us / g.us);
    const char *cells[10];
    for (int k = 0; k < 10; k++) cells[k] = c[k];
    row(out, format, 10, cells, w2);
    us_d += d.us, us_g += g.us;
  }
  {
    char c[10][96];
    CELL(c[0], "model"), CELL(c[1], "-"), CELL(c[2], "-"), CELL(c[3], "-"), CELL(c[4], "-"), CELL(c[5], "-"),
        CELL(c[6], "-"), CELL(c[7], "%.3f", us_d), CELL(c[8], "%.3f", us_g), CELL(c[9], "%.2f", us_d / us_g);
    const char *cells[10];
    for (int k = 0; k < 10; k++) cells[k] = c[k];
    row(out, format, 10, cells, w2);
  }
  return png ? plot_roofline(m, p, a, batch, act_bits, png) : IST_OK;
}
