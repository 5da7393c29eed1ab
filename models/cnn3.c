/* cnn3 (SPEC §5): C32K5S2 – C32K5S1 – C32K5S1 – AvgPool to 3×3 – FC, BN and ReLU after each conv. */
#include <stdlib.h>
#include <string.h>

#include "models/model.h"

#define CNN3_WIDTH 32
#define CNN3_K 5
#define CNN3_POOL 3

typedef struct {
  ist_conv_layer conv[3];
  ist_bn_layer bn[3];
  ist_linear_layer fc;
  int hw; /* pixels of every conv output (14×14) */
  float *a[3], *b[3], *r[3], *pool;    /* conv, BN, ReLU outputs; pooled features */
  float *da[3], *db[3], *dr[3], *dpool; /* their gradients */
} cnn3;

static void cnn3_forward(ist_model *m, int n, int training) {
  cnn3 *net = m->impl;
  const ist_backend *be = m->be;
  const float *x = m->input;
  for (int i = 0; i < 3; i++) {
    ist_bn_layer *bn = &net->bn[i];
    ist_conv_layer_forward(be, &net->conv[i], n, x, net->a[i], m->ws);
    be->batchnorm_forward(n, bn->c, bn->hw, net->a[i], bn->gamma, bn->beta, net->b[i], bn->save_mean, bn->save_rstd,
                          bn->run_mean, bn->run_var, 0.1f, 1e-5f, training);
    be->relu_forward((int64_t)n * bn->c * bn->hw, net->b[i], net->r[i]);
    x = net->r[i];
  }
  const ist_conv_shape *s = &net->conv[2].shape;
  be->avgpool_forward(n, s->co, s->ho, s->wo, CNN3_POOL, CNN3_POOL, net->r[2], net->pool);
  ist_linear_layer_forward(be, &net->fc, n, net->pool, m->logits);
}

static void cnn3_backward(ist_model *m, int n) {
  cnn3 *net = m->impl;
  const ist_backend *be = m->be;
  ist_linear_layer_backward(be, &net->fc, n, m->dlogits, net->pool, net->dpool);
  const ist_conv_shape *s = &net->conv[2].shape;
  be->avgpool_backward(n, s->co, s->ho, s->wo, CNN3_POOL, CNN3_POOL, net->dpool, net->dr[2]);
  for (int i = 2; i >= 0; i--) {
    ist_bn_layer *bn = &net->bn[i];
    be->relu_backward((int64_t)n * bn->c * bn->hw, net->dr[i], net->r[i], net->db[i]);
    be->batchnorm_backward(n, bn->c, bn->hw, net->db[i], net->a[i], bn->gamma, bn->save_mean, bn->save_rstd,
                           net->da[i], bn->dgamma, bn->dbeta);
    ist_conv_layer_backward(be, &net->conv[i], n, net->da[i], i ? net->dr[i - 1] : NULL, m->ws);
  }
}

ist_status ist_cnn3_build(ist_model *m, const ist_model_config *cfg) {
  if (!m->impl && !(m->impl = calloc(1, sizeof(cnn3)))) return ist_fail(IST_ERR_MEMORY, "cnn3: out of memory");
  cnn3 *net = m->impl;
  const int b = m->batch;
  m->in_c = 1;
  m->in_h = m->in_w = 28;
  m->classes = 10;
  m->forward = cnn3_forward;
  m->backward = cnn3_backward;
  static const char *conv_names[3] = {"conv1", "conv2", "conv3"}, *bn_names[3] = {"bn1", "bn2", "bn3"};
  int c = m->in_c, h = m->in_h, w = m->in_w;
  size_t ws = 0;
  for (int i = 0; i < 3; i++) {
    ist_conv_layer *l = &net->conv[i];
    IST_TRY(ist_conv_layer_init(l, conv_names[i], b, c, h, w, CNN3_WIDTH, CNN3_K, i == 0 ? 2 : 1, CNN3_K / 2,
                                ist_config_for(cfg, conv_names[i]), cfg->exec));
    IST_TRY(ist_conv_layer_register(m, l));
    c = CNN3_WIDTH;
    h = l->shape.ho;
    w = l->shape.wo;
    IST_TRY(ist_bn_layer_register(m, &net->bn[i], bn_names[i], c, h * w));
    if (ist_conv_layer_ws_floats(l) > ws) ws = ist_conv_layer_ws_floats(l);
  }
  for (int i = 0; i < cfg->noverride; i++) {
    int known = 0;
    for (int j = 0; j < 3; j++) known |= !strcmp(cfg->override_name[i], conv_names[j]);
    if (!known) return ist_fail(IST_ERR_ARG, "--layers: cnn3 has no conv named '%s' (conv1, conv2, conv3)", cfg->override_name[i]);
  }
  IST_TRY(ist_linear_layer_register(m, &net->fc, "fc", CNN3_WIDTH * CNN3_POOL * CNN3_POOL, m->classes,
                                    ist_config_fc_bits(m)));
  net->hw = h * w;
  const int64_t act = (int64_t)b * CNN3_WIDTH * net->hw;
  for (int i = 0; i < 3; i++) {
    IST_TRY(ist_model_scratch(m, act, &net->a[i]));
    IST_TRY(ist_model_scratch(m, act, &net->b[i]));
    IST_TRY(ist_model_scratch(m, act, &net->r[i]));
    IST_TRY(ist_model_scratch(m, act, &net->da[i]));
    IST_TRY(ist_model_scratch(m, act, &net->db[i]));
    IST_TRY(ist_model_scratch(m, act, &net->dr[i]));
  }
  IST_TRY(ist_model_scratch(m, (int64_t)b * net->fc.in, &net->pool));
  IST_TRY(ist_model_scratch(m, (int64_t)b * net->fc.in, &net->dpool));
  IST_TRY(ist_model_scratch(m, (int64_t)b * m->in_c * m->in_h * m->in_w, &m->input));
  IST_TRY(ist_arena_alloc(&m->acts_arena, sizeof(int32_t) * (size_t)b, (void **)&m->labels));
  IST_TRY(ist_model_scratch(m, (int64_t)b * m->classes, &m->logits));
  IST_TRY(ist_model_scratch(m, (int64_t)b * m->classes, &m->dlogits));
  return ist_model_scratch(m, (int64_t)ws, &m->ws);
}
