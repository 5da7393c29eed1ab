/* Layer building blocks: conv (dense or generated, SPEC §2), BatchNorm, linear. */
#include <stdio.h>
#include <string.h>

#include "models/model.h"

ist_status ist_conv_exec_parse(const char *text, ist_conv_exec *out) {
  static const char *names[] = {"auto", "materialize", "factored"};
  for (int i = 0; i < 3; i++)
    if (!strcmp(text, names[i])) {
      *out = (ist_conv_exec)i;
      return IST_OK;
    }
  return ist_fail(IST_ERR_ARG, "--conv-exec: '%s' is not auto, materialize or factored", text);
}

ist_status ist_conv_layer_init(ist_conv_layer *l, const char *name, int batch, int ci, int h, int w, int co, int k,
                               int stride, int pad, int groups, const ist_conv_setting *set, ist_conv_exec exec) {
  memset(l, 0, sizeof *l);
  snprintf(l->name, sizeof l->name, "%s", name);
  l->shape = (ist_conv_shape){.n = batch, .ci = ci, .h = h, .w = w, .co = co, .k = k, .stride = stride, .pad = pad,
                              .groups = groups};
  if (!ist_conv_shape_init(&l->shape))
    return ist_fail(IST_ERR_ARG, "%s: impossible conv shape (%dx%dx%d input, k=%d, stride %d, pad %d, %d groups)", name,
                    ci, h, w, k, stride, pad, groups);
  l->set = *set;
  if (set->baseline) {
    l->base = (ist_base_shape){set->baseline, co, ci, k * k};
    if (l->shape.groups > 1)
      return ist_fail(IST_ERR_ARG, "%s: a grouped conv cannot take a baseline conv type (use --layers %s=dense)", name,
                      name);
    if (set->baseline == IST_BASE_CIRCNN && (co % IST_CIRCNN_BLOCK || ci % IST_CIRCNN_BLOCK))
      return ist_fail(IST_ERR_ARG, "%s: circnn needs channels divisible by %d (%d → %d; use --layers %s=dense)", name,
                      IST_CIRCNN_BLOCK, ci, co, name);
    return IST_OK;
  }
  if (!set->generated) return IST_OK;
  if (l->shape.groups > 1) {
    /* SPEC §2: a depthwise conv is ONE kernel over its C channels, W = U·Wb (level 1 only); its
     * 1 × C·k² generated weight is the C × 1 × k × k depthwise weight. */
    if (groups != ci || groups != co)
      return ist_fail(IST_ERR_ARG, "%s: only depthwise convs can be generated among grouped ones (use --layers %s=dense)",
                      name, name);
    l->gen = ist_gen_shape_make(1, ci, k, set->bi, set->bc);
    return IST_OK; /* runs on its materialized weight */
  }
  l->gen = ist_gen_shape_make(co, ci, k, set->bi, set->bc);
  l->exec = exec;
  l->factored = exec == IST_EXEC_FACTORED; /* "auto": the backend decides (ist_conv_layer_register) */
  return IST_OK;
}

ist_status ist_conv_layer_register(ist_model *m, ist_conv_layer *l) {
  if (m->nconvs == IST_MAX_CONVS) return ist_fail(IST_ERR_ARG, "model %s: more than %d convs", m->arch, IST_MAX_CONVS);
  m->convs[m->nconvs++] = l;
  if (l->set.generated && l->shape.groups == 1 && l->exec == IST_EXEC_AUTO)
    l->factored = m->be->gconv_prefers_factored(&l->shape, &l->gen);
  const ist_conv_shape *s = &l->shape;
  const int64_t wn = ist_conv_weight_numel(s);
  char pn[IST_NAME_LEN + 16];
  if (l->set.baseline) {
    static const char *p1_name[] = {NULL, "depthwise", "depthwise", "bases", "circulant"};
    static const char *p2_name[] = {NULL, "pointwise", "pointwise", "coefficients", NULL};
    snprintf(pn, sizeof pn, "%s.%s", l->name, p1_name[l->set.baseline]);
    IST_TRY(ist_model_add_param(m, pn, IST_PARAM_FACTOR, 32, 1, (int64_t[]){ist_base_p1_numel(&l->base)}, &l->p1,
                                &l->dp1));
    if (ist_base_p2_numel(&l->base)) {
      snprintf(pn, sizeof pn, "%s.%s", l->name, p2_name[l->set.baseline]);
      IST_TRY(ist_model_add_param(m, pn, IST_PARAM_FACTOR, 32, 1, (int64_t[]){ist_base_p2_numel(&l->base)}, &l->p2,
                                  &l->dp2));
    }
    IST_TRY(ist_model_scratch(m, wn, &l->w));
    return ist_model_scratch(m, wn, &l->dw);
  }
  if (!l->set.generated) {
    snprintf(pn, sizeof pn, "%s.weight", l->name);
    return ist_model_add_param(m, pn, IST_PARAM_CONV, 32, 4, (int64_t[]){s->co, s->ci / s->groups, s->k, s->k}, &l->w, &l->dw);
  }
  const ist_gen_shape *g = &l->gen;
  if (g->level1) {
    snprintf(pn, sizeof pn, "%s.wb", l->name);
    IST_TRY(ist_model_add_param(m, pn, IST_PARAM_FACTOR, l->set.qb, 3, (int64_t[]){g->nb, g->bi, g->k2}, &l->wb, &l->dwb));
    snprintf(pn, sizeof pn, "%s.u", l->name);
    IST_TRY(ist_model_add_param(m, pn, IST_PARAM_FACTOR, l->set.qu, 3, (int64_t[]){g->nb, g->ci, g->bi}, &l->u, &l->du));
    IST_TRY(ist_model_scratch(m, ist_gen_wb_numel(g), &l->qwb));
    IST_TRY(ist_model_scratch(m, ist_gen_u_numel(g), &l->qu));
    IST_TRY(ist_model_scratch(m, ist_gen_wb_numel(g), &l->dqwb));
    IST_TRY(ist_model_scratch(m, ist_gen_u_numel(g), &l->dqu));
  } else {
    /* Level 1 off: each Wc_j is a free parameter, stored at the basis bitwidth qb. */
    snprintf(pn, sizeof pn, "%s.wc", l->name);
    IST_TRY(ist_model_add_param(m, pn, IST_PARAM_FACTOR, l->set.qb, 2, (int64_t[]){g->nb, (int64_t)g->ci * g->k2},
                                &l->wc_free, &l->dwc_free));
  }
  IST_TRY(ist_model_scratch(m, 1, &l->scale_b));
  if (g->level1) IST_TRY(ist_model_scratch(m, 1, &l->scale_u));
  if (g->level2) IST_TRY(ist_model_scratch(m, 1, &l->scale_v));
  if (g->level2) {
    snprintf(pn, sizeof pn, "%s.v", l->name);
    IST_TRY(ist_model_add_param(m, pn, IST_PARAM_FACTOR, l->set.qv, 2, (int64_t[]){g->co, g->bc}, &l->v, &l->dv));
    IST_TRY(ist_model_scratch(m, ist_gen_v_numel(g), &l->qv));
    IST_TRY(ist_model_scratch(m, ist_gen_v_numel(g), &l->dqv));
  }
  if (l->factored) {
    IST_TRY(ist_model_scratch(m, ist_gconv_t1_numel(s, g), &l->t1));
    IST_TRY(ist_model_scratch(m, ist_gconv_t2_numel(s, g), &l->t2));
  }
  IST_TRY(ist_model_scratch(m, ist_gen_wc_numel(g), &l->wc));
  IST_TRY(ist_model_scratch(m, ist_gen_wc_numel(g), &l->dwc));
  IST_TRY(ist_model_scratch(m, wn, &l->w));
  return ist_model_scratch(m, wn, &l->dw);
}

size_t ist_conv_layer_ws_floats(const ist_backend *be, const ist_conv_layer *l) {
  return l->set.generated && l->factored ? be->gconv_ws_floats(&l->shape, &l->gen) : be->conv_ws_floats(&l->shape);
}

void ist_conv_layer_quantize(const ist_backend *be, ist_conv_layer *l) {
  const ist_gen_shape *g = &l->gen;
  if (g->level1) {
    be->quantize_forward(ist_gen_wb_numel(g), l->set.qb, l->wb, l->qwb, l->scale_b);
    be->quantize_forward(ist_gen_u_numel(g), l->set.qu, l->u, l->qu, l->scale_u);
  } else {
    be->quantize_forward(ist_gen_wc_numel(g), l->set.qb, l->wc_free, l->wc, l->scale_b);
  }
  if (g->level2) be->quantize_forward(ist_gen_v_numel(g), l->set.qv, l->v, l->qv, l->scale_v);
}

void ist_conv_layer_generate(const ist_backend *be, ist_conv_layer *l) {
  ist_conv_layer_quantize(be, l);
  be->generate_forward(&l->gen, l->qwb, l->qu, l->qv, l->wc, l->w);
}

void ist_conv_layer_forward(const ist_backend *be, ist_conv_layer *l, int n, const float *x, float *y, float *ws) {
  ist_conv_shape s = l->shape;
  s.n = n;
  l->x = x;
  if (l->set.baseline) {
    be->baseline_forward(&l->base, l->p1, l->p2, l->w);
    be->conv2d_forward(&s, x, l->w, NULL, y, ws);
  } else if (!l->set.generated) {
    be->conv2d_forward(&s, x, l->w, NULL, y, ws);
  } else if (l->factored) {
    ist_conv_layer_quantize(be, l);
    be->gconv_forward(&s, &l->gen, x, l->qwb, l->qu, l->wc, l->qv, l->t1, l->t2, y, ws);
  } else {
    ist_conv_layer_generate(be, l);
    be->conv2d_forward(&s, x, l->w, NULL, y, ws);
  }
}

/* Zeroes the gradients w.r.t. the quantized factors before a backward accumulates into them. */
static void zero_factor_grads(const ist_backend *be, ist_conv_layer *l) {
  const ist_gen_shape *g = &l->gen;
  if (g->level1) {
    be->zero(l->dqwb, ist_gen_wb_numel(g));
    be->zero(l->dqu, ist_gen_u_numel(g));
  } else {
    be->zero(l->dwc, ist_gen_wc_numel(g));
  }
  if (g->level2) be->zero(l->dqv, ist_gen_v_numel(g));
}

/* From the quantized factors' gradients to the latent factors', through the quantizers. */
static void quantize_backward(const ist_backend *be, ist_conv_layer *l) {
  const ist_gen_shape *g = &l->gen;
  const ist_conv_setting *q = &l->set;
  if (g->level1) {
    be->quantize_backward(ist_gen_wb_numel(g), q->qb, l->scale_b, l->wb, l->dqwb, l->dwb);
    be->quantize_backward(ist_gen_u_numel(g), q->qu, l->scale_u, l->u, l->dqu, l->du);
  } else {
    be->quantize_backward(ist_gen_wc_numel(g), q->qb, l->scale_b, l->wc_free, l->dwc, l->dwc_free);
  }
  if (g->level2) be->quantize_backward(ist_gen_v_numel(g), q->qv, l->scale_v, l->v, l->dqv, l->dv);
}

void ist_conv_layer_backward(const ist_backend *be, ist_conv_layer *l, int n, const float *dy, float *dx, float *ws) {
  ist_conv_shape s = l->shape;
  s.n = n;
  if (l->set.baseline) {
    be->zero(l->dw, ist_conv_weight_numel(&s));
    be->conv2d_backward(&s, dy, l->x, l->w, dx, l->dw, NULL, ws);
    be->baseline_backward(&l->base, l->dw, l->p1, l->p2, l->dp1, l->dp2);
  } else if (!l->set.generated) {
    be->conv2d_backward(&s, dy, l->x, l->w, dx, l->dw, NULL, ws);
  } else if (l->factored) {
    zero_factor_grads(be, l);
    be->gconv_backward(&s, &l->gen, dy, l->x, l->qwb, l->qu, l->wc, l->qv, l->t1, l->t2, dx, l->dqwb, l->dqu, l->dwc,
                       l->dqv, ws);
    quantize_backward(be, l);
  } else {
    be->zero(l->dw, ist_conv_weight_numel(&s));
    be->conv2d_backward(&s, dy, l->x, l->w, dx, l->dw, NULL, ws);
    ist_conv_layer_generate_backward(be, l);
  }
}

void ist_conv_layer_generate_backward(const ist_backend *be, ist_conv_layer *l) {
  const ist_gen_shape *g = &l->gen;
  zero_factor_grads(be, l);
  be->generate_backward(g, l->dw, l->qwb, l->qu, l->qv, l->wc, l->dqwb, l->dqu, l->dqv, l->dwc);
  quantize_backward(be, l);
}

ist_status ist_bn_layer_register(ist_model *m, ist_bn_layer *l, const char *name, int c, int hw) {
  memset(l, 0, sizeof *l);
  snprintf(l->name, sizeof l->name, "%s", name);
  l->c = c;
  l->hw = hw;
  l->eps = IST_BN_EPS;
  char pn[IST_NAME_LEN + 16];
  const int64_t shp[1] = {c};
  snprintf(pn, sizeof pn, "%s.weight", name);
  IST_TRY(ist_model_add_param(m, pn, IST_PARAM_BN, 32, 1, shp, &l->gamma, &l->dgamma));
  snprintf(pn, sizeof pn, "%s.bias", name);
  IST_TRY(ist_model_add_param(m, pn, IST_PARAM_BN, 32, 1, shp, &l->beta, &l->dbeta));
  snprintf(pn, sizeof pn, "%s.running_mean", name);
  IST_TRY(ist_model_add_param(m, pn, IST_PARAM_BUFFER, 32, 1, shp, &l->run_mean, NULL));
  snprintf(pn, sizeof pn, "%s.running_var", name);
  IST_TRY(ist_model_add_param(m, pn, IST_PARAM_BUFFER, 32, 1, shp, &l->run_var, NULL));
  IST_TRY(ist_model_scratch(m, c, &l->save_mean));
  return ist_model_scratch(m, c, &l->save_rstd);
}

ist_status ist_conv_bn_register(ist_model *m, ist_conv_bn *u, const char *conv_name, const char *bn_name, int ci,
                                int h, int w, int co, int k, int stride, int pad, int groups,
                                const ist_model_config *cfg, ist_act act) {
  ist_conv_layer *l = &u->conv;
  IST_TRY(ist_conv_layer_init(l, conv_name, m->batch, ci, h, w, co, k, stride, pad, groups,
                              ist_config_for(cfg, conv_name), cfg->exec));
  IST_TRY(ist_conv_layer_register(m, l));
  const int hw = l->shape.ho * l->shape.wo;
  IST_TRY(ist_bn_layer_register(m, &u->bn, bn_name, co, hw));
  u->act = act;
  memset(&u->aq, 0, sizeof u->aq);
  if (m->nconvs > 1) IST_TRY(ist_act_quant_register(m, &u->aq, conv_name, (int64_t)ci * h * w));
  const int64_t len = (int64_t)m->batch * co * hw;
  IST_TRY(ist_model_scratch(m, len, &u->a));
  IST_TRY(ist_model_scratch(m, len, &u->b));
  IST_TRY(ist_model_scratch(m, len, &u->da));
  IST_TRY(ist_model_scratch(m, len, &u->db));
  if (act != IST_ACT_NONE) IST_TRY(ist_model_scratch(m, len, &u->r));
  else u->r = u->b;
  if (ist_conv_layer_ws_floats(m->be, l) > m->ws_floats) m->ws_floats = ist_conv_layer_ws_floats(m->be, l);
  return IST_OK;
}

void ist_bn_layer_forward(ist_model *m, ist_bn_layer *l, int n, const float *x, float *y, int training) {
  l->training = training;
  m->be->batchnorm_forward(n, l->c, l->hw, x, l->gamma, l->beta, y, l->save_mean, l->save_rstd, l->run_mean,
                           l->run_var, m->bn_momentum, l->eps, training, m->bn_sync);
}

void ist_bn_layer_backward(ist_model *m, ist_bn_layer *l, int n, const float *dy, const float *x, float *dx) {
  m->be->batchnorm_backward(n, l->c, l->hw, dy, x, l->gamma, l->save_mean, l->save_rstd, dx, l->dgamma, l->dbeta,
                            l->training, l->training ? m->bn_sync : NULL);
}

ist_status ist_head_register(ist_model *m, ist_head *hd, const char *fc_name, int c, int h, int w) {
  hd->c = c;
  hd->h = h;
  hd->w = w;
  IST_TRY(ist_linear_layer_register(m, &hd->fc, fc_name, c, m->classes, ist_config_fc_bits(m)));
  IST_TRY(ist_act_quant_register(m, &hd->aq, fc_name, c));
  IST_TRY(ist_model_scratch(m, (int64_t)m->batch * c, &hd->gap));
  return ist_model_scratch(m, (int64_t)m->batch * c, &hd->dgap);
}

void ist_head_forward(ist_model *m, ist_head *hd, int n, const float *x) {
  m->be->avgpool_forward(n, hd->c, hd->h, hd->w, 1, 1, x, hd->gap);
  ist_linear_layer_forward(m->be, &hd->fc, n, ist_act_quant_forward(m, &hd->aq, n, hd->gap), m->logits);
}

void ist_head_backward(ist_model *m, ist_head *hd, int n, float *dx) {
  ist_linear_layer_backward(m->be, &hd->fc, n, m->dlogits, hd->aq.xq ? hd->aq.xq : hd->gap, hd->dgap);
  ist_act_quant_backward(m, &hd->aq, n, hd->dgap);
  m->be->avgpool_backward(n, hd->c, hd->h, hd->w, 1, 1, hd->dgap, dx);
}

const float *ist_conv_bn_forward(ist_model *m, ist_conv_bn *u, int n, const float *x, int training) {
  const ist_backend *be = m->be;
  ist_bn_layer *bn = &u->bn;
  m->act_training = training;
  x = ist_act_quant_forward(m, &u->aq, n, x);
  ist_conv_layer_forward(be, &u->conv, n, x, u->a, m->ws);
  ist_bn_layer_forward(m, bn, n, u->a, u->b, training);
  if (u->act != IST_ACT_NONE) ist_act_forward(be, u->act, (int64_t)n * bn->c * bn->hw, u->b, u->r);
  return u->r;
}

void ist_conv_bn_backward(ist_model *m, ist_conv_bn *u, int n, const float *dout, float *dx) {
  const ist_backend *be = m->be;
  ist_bn_layer *bn = &u->bn;
  const float *db = dout;
  if (u->act != IST_ACT_NONE) {
    ist_act_backward(be, u->act, (int64_t)n * bn->c * bn->hw, dout, u->b, u->r, u->db);
    db = u->db;
  }
  ist_bn_layer_backward(m, bn, n, db, u->a, u->da);
  ist_conv_layer_backward(be, &u->conv, n, u->da, dx, m->ws);
  ist_act_quant_backward(m, &u->aq, n, dx);
}

void ist_image_model_defaults(ist_model *m, const ist_model_config *cfg, int imagenet) {
  m->in_c = 3;
  m->in_h = cfg->in_h ? cfg->in_h : imagenet ? 224 : 32;
  m->in_w = cfg->in_w ? cfg->in_w : m->in_h;
  m->classes = cfg->classes ? cfg->classes : imagenet ? 1000 : 10;
}

ist_status ist_stem_register(ist_model *m, ist_stem *st, const char *conv_name, const char *bn_name, int co,
                             int imagenet, const ist_model_config *cfg) {
  ist_conv_bn *u = &st->unit;
  IST_TRY(ist_conv_bn_register(m, u, conv_name, bn_name, m->in_c, m->in_h, m->in_w, co, imagenet ? 7 : 3,
                               imagenet ? 2 : 1, imagenet ? 3 : 1, 1, cfg, IST_ACT_RELU));
  st->pool = imagenet;
  st->oc = co;
  st->oh = u->conv.shape.ho;
  st->ow = u->conv.shape.wo;
  if (st->pool) {
    IST_TRY(ist_model_scratch(m, ist_conv_bn_out_numel(u, m->batch), &st->dunit));
    st->oh = ist_pool_out(st->oh, 3, 2, 1);
    st->ow = ist_pool_out(st->ow, 3, 2, 1);
    const int64_t len = (int64_t)m->batch * co * st->oh * st->ow;
    IST_TRY(ist_model_scratch(m, len, &st->pooled));
    IST_TRY(ist_arena_alloc(&m->acts_arena, sizeof(int32_t) * (size_t)len, (void **)&st->idx));
  }
  return ist_model_scratch(m, (int64_t)m->batch * co * st->oh * st->ow, &st->dout);
}

const float *ist_stem_forward(ist_model *m, ist_stem *st, int n, int training) {
  const float *x = ist_conv_bn_forward(m, &st->unit, n, m->input, training);
  if (!st->pool) return x;
  const ist_conv_shape *s = &st->unit.conv.shape;
  m->be->maxpool_forward(n, s->co, s->ho, s->wo, 3, 2, 1, x, st->pooled, st->idx);
  return st->pooled;
}

void ist_stem_backward(ist_model *m, ist_stem *st, int n) {
  const float *d = st->dout;
  if (st->pool) {
    const ist_conv_shape *s = &st->unit.conv.shape;
    m->be->maxpool_backward(n, s->co, s->ho, s->wo, st->oh, st->ow, st->dout, st->idx, st->dunit);
    d = st->dunit;
  }
  ist_conv_bn_backward(m, &st->unit, n, d, NULL);
}

ist_status ist_config_check_names(const ist_model *m, const ist_model_config *cfg) {
  for (int i = 0; i < cfg->noverride; i++) {
    int known = 0;
    for (int j = 0; j < m->nconvs && !known; j++) known = !strcmp(cfg->override_name[i], m->convs[j]->name);
    if (!known)
      return ist_fail(IST_ERR_ARG, "--layers: %s has no conv named '%s' (first: %s, last: %s)", m->arch,
                      cfg->override_name[i], m->nconvs ? m->convs[0]->name : "-",
                      m->nconvs ? m->convs[m->nconvs - 1]->name : "-");
  }
  return IST_OK;
}

ist_status ist_linear_layer_register(ist_model *m, ist_linear_layer *l, const char *name, int in, int out, int bits) {
  memset(l, 0, sizeof *l);
  snprintf(l->name, sizeof l->name, "%s", name);
  l->in = in;
  l->out = out;
  l->bits = bits;
  char pn[IST_NAME_LEN + 16];
  snprintf(pn, sizeof pn, "%s.weight", name);
  IST_TRY(ist_model_add_param(m, pn, IST_PARAM_FC, bits, 2, (int64_t[]){out, in}, &l->w, &l->dw));
  snprintf(pn, sizeof pn, "%s.bias", name);
  IST_TRY(ist_model_add_param(m, pn, IST_PARAM_FC, bits, 1, (int64_t[]){out}, &l->b, &l->db));
  IST_TRY(ist_model_scratch(m, (int64_t)out * in, &l->qw));
  IST_TRY(ist_model_scratch(m, 2, &l->scales));
  return ist_model_scratch(m, out, &l->qb);
}

void ist_linear_layer_forward(const ist_backend *be, ist_linear_layer *l, int n, const float *x, float *y) {
  be->quantize_forward((int64_t)l->out * l->in, l->bits, l->w, l->qw, l->scales);
  be->quantize_forward(l->out, l->bits, l->b, l->qb, l->scales + 1);
  be->linear_forward(n, l->in, l->out, x, l->qw, l->qb, y);
}

void ist_linear_layer_backward(const ist_backend *be, ist_linear_layer *l, int n, const float *dy, const float *x,
                               float *dx) {
  /* Straight-through: the quantized weight's gradient is the latent weight's. */
  be->linear_backward(n, l->in, l->out, dy, x, l->qw, dx, l->dw, l->db);
}

int ist_config_fc_bits(const ist_model *m) {
  for (int i = 0; i < m->nconvs; i++) {
    const ist_conv_setting *s = &m->convs[i]->set;
    if (s->generated && (s->qb < 32 || s->qu < 32 || s->qv < 32)) return 8;
  }
  return 32;
}
