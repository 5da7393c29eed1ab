/* Ratio accounting (SPEC §2): the numerator counts every stored parameter at its bitwidth
 * (generated factors at qb/qu/qv, plus one fp32 scale per quantized factor tensor; BN γ, β in
 * fp32; the classifier in fp32, or 8 bits when the model is quantized); the denominator is the
 * same model with dense convs, every parameter fp32. BN running statistics are not counted. */
#include "train/report.h"

#include <string.h>

#define FP32_BITS 32

static int64_t dense_numel(const ist_conv_layer *l) {
  return ist_conv_weight_numel(&l->shape);
}

ist_ratio ist_conv_ratio(const ist_conv_layer *l) {
  ist_ratio r = {0};
  r.dense_params = (double)dense_numel(l);
  r.dense_bits = FP32_BITS * r.dense_params;
  if (l->set.baseline) { /* fp32 parameters */
    r.params = (double)(ist_base_p1_numel(&l->base) + ist_base_p2_numel(&l->base));
    r.bits = FP32_BITS * r.params;
  } else if (!l->set.generated) {
    r.params = r.dense_params;
    r.bits = r.dense_bits;
  } else {
    const ist_gen_shape *g = &l->gen;
    const ist_conv_setting *s = &l->set;
    /* (numel, bits) of each stored factor */
    double f[3][2] = {{0, 0}, {0, 0}, {0, 0}};
    if (g->level1) {
      f[0][0] = (double)ist_gen_wb_numel(g), f[0][1] = s->qb;
      f[1][0] = (double)ist_gen_u_numel(g), f[1][1] = s->qu;
    } else {
      f[0][0] = (double)ist_gen_wc_numel(g), f[0][1] = s->qb;
    }
    if (g->level2) f[2][0] = (double)ist_gen_v_numel(g), f[2][1] = s->qv;
    for (int i = 0; i < 3; i++) {
      if (f[i][0] == 0) continue;
      r.params += f[i][0];
      r.bits += f[i][0] * f[i][1] + (f[i][1] < FP32_BITS ? FP32_BITS : 0);
    }
  }
  r.param_ratio = r.params / r.dense_params;
  r.memory_ratio = r.bits / r.dense_bits;
  return r;
}

ist_ratio ist_model_ratio(const ist_model *m) {
  ist_ratio t = {0};
  for (int i = 0; i < m->nconvs; i++) {
    ist_ratio r = ist_conv_ratio(m->convs[i]);
    t.params += r.params;
    t.dense_params += r.dense_params;
    t.bits += r.bits;
  }
  for (int i = 0; i < m->nparams; i++) {
    const ist_param *p = &m->params[i];
    if (p->kind == IST_PARAM_BN || p->kind == IST_PARAM_FC) {
      t.params += (double)p->numel;
      t.dense_params += (double)p->numel;
      t.bits += (double)p->numel * p->bits; /* BN: 32; classifier: 32, or 8 when quantized */
    }
  }
  t.dense_bits = FP32_BITS * t.dense_params;
  t.param_ratio = t.params / t.dense_params;
  t.memory_ratio = t.bits / t.dense_bits;
  return t;
}

void ist_report_print(FILE *out, const ist_model *m, ist_report_format format) {
  const int markdown = format == IST_REPORT_MARKDOWN, csv = format == IST_REPORT_CSV;
  const char *sep = markdown ? " | " : csv ? "," : "  ";
  const char *pre = markdown ? "| " : "", *post = markdown ? " |" : "";
  int nw = csv ? 0 : 6; /* the name column fits the longest layer name */
  for (int i = 0; i < m->nconvs && !csv; i++)
    if ((int)strlen(m->convs[i]->name) > nw) nw = (int)strlen(m->convs[i]->name);
  /* CSV: the same columns without padding (a zero width pads nothing; numbers are trimmed). */
  const int w3 = csv ? 0 : 3, w8 = csv ? 0 : 8, w9 = csv ? 0 : 9, w12 = csv ? 0 : 12;
  fprintf(out, "%s%-*s%s%-*s%s%-*s%s%-*s%s%-*s%s%*s%s%*s%s%*s%s%*s%s\n", pre, nw, "layer", sep, w12, "shape", sep, w12,
          "setting", sep, w3, "L1", sep, w3, "L2", sep, w9, "params", sep, w9, "dense", sep, w8, "r", sep, w8, "r_m", post);
  if (markdown) fprintf(out, "|---|---|---|---|---|---:|---:|---:|---:|\n");
  for (int i = 0; i < m->nconvs; i++) {
    const ist_conv_layer *l = m->convs[i];
    ist_ratio r = ist_conv_ratio(l);
    char shape[32], set[32];
    snprintf(shape, sizeof shape, "%dx%dx%dx%d", l->shape.co, l->shape.ci / l->shape.groups, l->shape.k, l->shape.k);
    ist_setting_format(&l->set, set, sizeof set);
    const char *l1 = !l->set.generated ? "-" : l->gen.level1 ? "on" : "off";
    const char *l2 = !l->set.generated ? "-" : l->gen.level2 ? "on" : "off";
    fprintf(out, "%s%-*s%s%-*s%s%-*s%s%-*s%s%-*s%s%*.0f%s%*.0f%s%*.4f%s%*.4f%s\n", pre, nw, l->name, sep, w12, shape, sep,
            w12, set, sep, w3, l1, sep, w3, l2, sep, w9, r.params, sep, w9, r.dense_params, sep, w8, r.param_ratio, sep, w8,
            r.memory_ratio, post);
  }
  ist_ratio t = ist_model_ratio(m);
  fprintf(out, "%s%-*s%s%-*s%s%-*s%s%-*s%s%-*s%s%*.0f%s%*.0f%s%*.4f%s%*.4f%s\n", pre, nw, "model", sep, w12, "", sep,
          w12, ist_config_fc_bits(m) < FP32_BITS ? "(fc 8-bit)" : "(fc fp32)", sep, w3, "", sep, w3, "", sep, w9, t.params,
          sep, w9, t.dense_params, sep, w8, t.param_ratio, sep, w8, t.memory_ratio, post);
  if (csv) return;
  const int64_t act = ist_model_largest_activation(m);
  fprintf(out, "%sactivation memory: the largest activation of one image has %lld values, %lld bytes at fp32, %lld bytes at %d bits%s\n",
          markdown ? "\n" : "", (long long)act, (long long)act * 4, (long long)((act * m->act_bits + 7) / 8), m->act_bits,
          m->act_bits < FP32_BITS ? " (--act-bits)" : " (activations not quantized)");
  fprintf(out, "%swhole model: parameter ratio %.4f, memory ratio %.4f (%.0f of %.0f bytes)\n", markdown ? "\n" : "",
          t.param_ratio, t.memory_ratio, t.bits / 8, t.dense_bits / 8);
  const int64_t g = ist_model_param_floats(m) * 4, dense = ist_model_dense_param_floats(m) * 4;
  fprintf(out, "%sdata-parallel step: %lld bytes of fp32 gradients all-reduced per rank (dense model: %lld bytes, %.1fx more)\n",
          markdown ? "\n" : "", (long long)g, (long long)dense, (double)dense / (double)g);
}
