/* Squeeze-and-excitation and the inverted-residual (MBConv) block of MobileNetV3 and EfficientNet. */
#include "models/mbconv.h"

#include <stdio.h>
#include <string.h>

int ist_drop_hold(ist_model *m, int hold) {
  if (!m->impl || (strncmp(m->arch, "mobilenetv3", 11) && strncmp(m->arch, "efficientnet", 12))) return 0;
  ((ist_drop_state *)m->impl)->hold = hold;
  return 1;
}

int ist_make_divisible(double v, int divisor) {
  int r = (int)(v + divisor / 2.0) / divisor * divisor;
  if (r < divisor) r = divisor;
  if (r < 0.9 * v) r += divisor;
  return r;
}

static ist_status se_conv(ist_model *m, ist_conv_layer *l, float **b, float **db, const char *prefix, const char *fc,
                          int ci, int co, const ist_model_config *cfg) {
  char name[IST_NAME_LEN], pn[IST_NAME_LEN + 8];
  snprintf(name, sizeof name, "%s.%s", prefix, fc);
  IST_TRY(ist_conv_layer_init(l, name, m->batch, ci, 1, 1, co, 1, 1, 0, 1, ist_config_for(cfg, name), cfg->exec));
  IST_TRY(ist_conv_layer_register(m, l));
  if (ist_conv_layer_ws_floats(m->be, l) > m->ws_floats) m->ws_floats = ist_conv_layer_ws_floats(m->be, l);
  /* The bias is an fp32 per-channel term like BN's β: counted, copied from a teacher and
   * initialized (to 0) as one. */
  snprintf(pn, sizeof pn, "%s.bias", name);
  return ist_model_add_param(m, pn, IST_PARAM_BN, 32, 1, (int64_t[]){co}, b, db);
}

ist_status ist_se_register(ist_model *m, ist_se *se, const char *prefix, int c, int sq, int h, int w, ist_act act,
                           int hard_gate, const ist_model_config *cfg) {
  se->c = c;
  se->sq = sq;
  se->hw = h * w;
  se->act = act;
  se->hard_gate = hard_gate;
  IST_TRY(se_conv(m, &se->fc1, &se->b1, &se->db1, prefix, "fc1", c, sq, cfg));
  IST_TRY(se_conv(m, &se->fc2, &se->b2, &se->db2, prefix, "fc2", sq, c, cfg));
  IST_TRY(ist_act_quant_register(m, &se->aq1, se->fc1.name, c));
  IST_TRY(ist_act_quant_register(m, &se->aq2, se->fc2.name, sq));
  const int64_t b = m->batch, nc = b * c, ns = b * sq, full = nc * se->hw;
  float **vc[] = {&se->pooled, &se->z2, &se->gate, &se->dpooled, &se->dz2, &se->dgate};
  for (int i = 0; i < 6; i++) IST_TRY(ist_model_scratch(m, nc, vc[i]));
  float **vs[] = {&se->z1, &se->a1, &se->dz1, &se->da1};
  for (int i = 0; i < 4; i++) IST_TRY(ist_model_scratch(m, ns, vs[i]));
  IST_TRY(ist_model_scratch(m, full, &se->out));
  return ist_model_scratch(m, full, &se->dpool);
}

const float *ist_se_forward(ist_model *m, ist_se *se, int n, const float *x) {
  const ist_backend *be = m->be;
  const int64_t nc = (int64_t)n * se->c, ns = (int64_t)n * se->sq;
  be->avgpool_forward(n, se->c, se->hw, 1, 1, 1, x, se->pooled);
  ist_conv_layer_forward(be, &se->fc1, n, ist_act_quant_forward(m, &se->aq1, n, se->pooled), se->z1, m->ws);
  be->channel_bias_forward(n, se->sq, 1, se->z1, se->b1);
  ist_act_forward(be, se->act, ns, se->z1, se->a1);
  ist_conv_layer_forward(be, &se->fc2, n, ist_act_quant_forward(m, &se->aq2, n, se->a1), se->z2, m->ws);
  be->channel_bias_forward(n, se->c, 1, se->z2, se->b2);
  if (se->hard_gate) be->hardsigmoid_forward(nc, se->z2, se->gate);
  else be->sigmoid_forward(nc, se->z2, se->gate);
  be->channel_scale_forward(n, se->c, se->hw, x, se->gate, se->out);
  return se->out;
}

void ist_se_backward(ist_model *m, ist_se *se, int n, const float *dout, const float *x, float *dx) {
  const ist_backend *be = m->be;
  const int64_t nc = (int64_t)n * se->c, ns = (int64_t)n * se->sq;
  be->channel_scale_backward(n, se->c, se->hw, dout, x, se->gate, dx, se->dgate);
  if (se->hard_gate) be->hardsigmoid_backward(nc, se->dgate, se->z2, se->dz2);
  else be->sigmoid_backward(nc, se->dgate, se->gate, se->dz2);
  be->channel_bias_backward(n, se->c, 1, se->dz2, se->db2);
  ist_conv_layer_backward(be, &se->fc2, n, se->dz2, se->da1, m->ws);
  ist_act_quant_backward(m, &se->aq2, n, se->da1);
  ist_act_backward(be, se->act, ns, se->da1, se->z1, se->a1, se->dz1);
  be->channel_bias_backward(n, se->sq, 1, se->dz1, se->db1);
  ist_conv_layer_backward(be, &se->fc1, n, se->dz1, se->dpooled, m->ws);
  ist_act_quant_backward(m, &se->aq1, n, se->dpooled);
  /* The pooled path's gradient joins the direct one. */
  be->avgpool_backward(n, se->c, se->hw, 1, 1, 1, se->dpooled, se->dpool);
  be->add(nc * se->hw, dx, se->dpool, dx);
}

static ist_status unit(ist_model *m, ist_conv_bn *u, const char *prefix, int j, int ci, int h, int w, int co, int k,
                       int stride, int groups, ist_act act, float eps, const ist_model_config *cfg) {
  char cn[IST_NAME_LEN], bn[IST_NAME_LEN];
  snprintf(cn, sizeof cn, "%s.%d.0", prefix, j);
  snprintf(bn, sizeof bn, "%s.%d.1", prefix, j);
  IST_TRY(ist_conv_bn_register(m, u, cn, bn, ci, h, w, co, k, stride, (k - 1) / 2, groups, cfg, act));
  u->bn.eps = eps;
  return IST_OK;
}

ist_status ist_mbconv_register(ist_model *m, ist_mbconv *b, const char *prefix, const ist_mbconv_config *c,
                               const ist_model_config *cfg, const ist_drop_state *drop) {
  const int64_t batch = m->batch;
  int j = 0, h = c->h, w = c->w;
  b->has_expand = c->expanded != c->ci;
  b->has_se = c->se_sq > 0;
  b->residual = c->stride == 1 && c->ci == c->co;
  b->sd_prob = b->residual ? c->sd_prob : 0.0f;
  b->seed = (uint64_t)(m->nconvs + 1) << 32; /* distinct per block, fixed per model */
  b->drop = drop;
  if (b->has_expand) {
    IST_TRY(unit(m, &b->expand, prefix, j++, c->ci, h, w, c->expanded, 1, 1, 1, c->act, c->bn_eps, cfg));
    IST_TRY(ist_model_scratch(m, ist_conv_bn_out_numel(&b->expand, batch), &b->dh1));
  }
  IST_TRY(unit(m, &b->dw, prefix, j++, c->expanded, h, w, c->expanded, c->k, c->stride, c->expanded, c->act, c->bn_eps,
               cfg));
  IST_TRY(ist_model_scratch(m, ist_conv_bn_out_numel(&b->dw, batch), &b->dh2));
  h = b->dw.conv.shape.ho;
  w = b->dw.conv.shape.wo;
  if (b->has_se) {
    char sp[IST_NAME_LEN];
    snprintf(sp, sizeof sp, "%s.%d", prefix, j++);
    IST_TRY(ist_se_register(m, &b->se, sp, c->expanded, c->se_sq, h, w, c->se_act, c->hard_gate, cfg));
    IST_TRY(ist_model_scratch(m, ist_conv_bn_out_numel(&b->dw, batch), &b->dh3));
  }
  IST_TRY(unit(m, &b->project, prefix, j, c->expanded, h, w, c->co, 1, 1, 1, IST_ACT_NONE, c->bn_eps, cfg));
  const int64_t len = ist_conv_bn_out_numel(&b->project, batch);
  if (b->residual) {
    IST_TRY(ist_model_scratch(m, len, &b->out));
    if (b->sd_prob > 0) {
      IST_TRY(ist_model_scratch(m, len, &b->sd));
      IST_TRY(ist_model_scratch(m, len, &b->dsd));
    }
  }
  return ist_model_scratch(m, len, &b->dout);
}

/* Stochastic depth is on for this forward (training, a residual branch with a drop probability). */
static int dropping(const ist_mbconv *b) { return b->sd_prob > 0 && b->project.bn.training; }

const float *ist_mbconv_forward(ist_model *m, ist_mbconv *b, int n, const float *x, int training) {
  const float *h = b->has_expand ? ist_conv_bn_forward(m, &b->expand, n, x, training) : x;
  h = ist_conv_bn_forward(m, &b->dw, n, h, training);
  if (b->has_se) h = ist_se_forward(m, &b->se, n, h);
  const float *o = ist_conv_bn_forward(m, &b->project, n, h, training);
  if (!b->residual) return o;
  const int64_t len = ist_conv_bn_out_numel(&b->project, n);
  if (dropping(b)) {
    /* torchvision's StochasticDepth(p, "row"): one draw per image, survivors scaled by 1/(1−p). */
    m->be->dropout_forward(len, len / n, b->sd_prob, b->seed + b->drop->steps, o, b->sd);
    o = b->sd;
  }
  m->be->add(len, o, x, b->out);
  return b->out;
}

void ist_mbconv_backward(ist_model *m, ist_mbconv *b, int n, float *dx) {
  const float *d = b->dout;
  if (b->residual && dropping(b)) {
    const int64_t len = ist_conv_bn_out_numel(&b->project, n);
    m->be->dropout_backward(len, len / n, b->sd_prob, b->seed + b->drop->steps, b->dout, b->dsd);
    d = b->dsd;
  }
  float *dh = b->has_expand ? b->dh1 : dx; /* gradient w.r.t. the depthwise unit's input */
  if (b->has_se) {
    ist_conv_bn_backward(m, &b->project, n, d, b->dh3);
    ist_se_backward(m, &b->se, n, b->dh3, b->dw.r, b->dh2);
  } else {
    ist_conv_bn_backward(m, &b->project, n, d, b->dh2);
  }
  ist_conv_bn_backward(m, &b->dw, n, b->dh2, dh);
  if (b->has_expand) ist_conv_bn_backward(m, &b->expand, n, b->dh1, dx);
  if (b->residual) m->be->add(ist_conv_bn_out_numel(&b->project, n), dx, b->dout, dx);
}
