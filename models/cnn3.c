/* cnn3 (SPEC §5): C32K5S2 – C32K5S1 – C32K5S1 – AvgPool to 3×3 – FC, BN and ReLU after each conv. */
#include <stdlib.h>

#include "models/model.h"

#define CNN3_WIDTH 32
#define CNN3_K 5
#define CNN3_POOL 3

typedef struct {
  ist_conv_bn unit[3];
  ist_linear_layer fc;
  ist_act_quant aq;    /* the classifier's input (activation quantization) */
  float *dout[3];      /* gradients w.r.t. each unit's output */
  float *pool, *dpool; /* pooled features and their gradient */
} cnn3;

static void cnn3_forward(ist_model *m, int n, int training) {
  cnn3 *net = m->impl;
  const float *x = m->input;
  for (int i = 0; i < 3; i++) x = ist_conv_bn_forward(m, &net->unit[i], n, x, training);
  const ist_conv_shape *s = &net->unit[2].conv.shape;
  m->be->avgpool_forward(n, s->co, s->ho, s->wo, CNN3_POOL, CNN3_POOL, x, net->pool);
  ist_linear_layer_forward(m->be, &net->fc, n, ist_act_quant_forward(m, &net->aq, n, net->pool), m->logits);
}

static void cnn3_backward(ist_model *m, int n) {
  cnn3 *net = m->impl;
  ist_linear_layer_backward(m->be, &net->fc, n, m->dlogits, net->aq.xq ? net->aq.xq : net->pool, net->dpool);
  ist_act_quant_backward(m, &net->aq, n, net->dpool);
  const ist_conv_shape *s = &net->unit[2].conv.shape;
  m->be->avgpool_backward(n, s->co, s->ho, s->wo, CNN3_POOL, CNN3_POOL, net->dpool, net->dout[2]);
  for (int i = 2; i >= 0; i--) ist_conv_bn_backward(m, &net->unit[i], n, net->dout[i], i ? net->dout[i - 1] : NULL);
}

ist_status ist_cnn3_build(ist_model *m, const ist_model_config *cfg) {
  cnn3 *net = ist_model_impl(m, sizeof(cnn3), "cnn3");
  if (!net) return IST_ERR_MEMORY;
  if ((cfg->classes && cfg->classes != 10) || (cfg->in_h && cfg->in_h != 28) || (cfg->in_w && cfg->in_w != 28))
    return ist_fail(IST_ERR_ARG, "--model cnn3: fixed to 28x28 inputs and 10 classes (--classes, --input-size)");
  m->in_c = 1;
  m->in_h = m->in_w = 28;
  m->classes = 10;
  m->forward = cnn3_forward;
  m->backward = cnn3_backward;
  static const char *conv_names[3] = {"conv1", "conv2", "conv3"}, *bn_names[3] = {"bn1", "bn2", "bn3"};
  int c = m->in_c, h = m->in_h, w = m->in_w;
  for (int i = 0; i < 3; i++) {
    ist_conv_bn *u = &net->unit[i];
    IST_TRY(ist_conv_bn_register(m, u, conv_names[i], bn_names[i], c, h, w, CNN3_WIDTH, CNN3_K, i == 0 ? 2 : 1,
                                 CNN3_K / 2, 1, cfg, IST_ACT_RELU));
    c = CNN3_WIDTH;
    h = u->conv.shape.ho;
    w = u->conv.shape.wo;
    IST_TRY(ist_model_scratch(m, ist_conv_bn_out_numel(u, m->batch), &net->dout[i]));
  }
  IST_TRY(ist_linear_layer_register(m, &net->fc, "fc", CNN3_WIDTH * CNN3_POOL * CNN3_POOL, m->classes,
                                    ist_config_fc_bits(m)));
  IST_TRY(ist_act_quant_register(m, &net->aq, "fc", net->fc.in));
  IST_TRY(ist_model_scratch(m, (int64_t)m->batch * net->fc.in, &net->pool));
  return ist_model_scratch(m, (int64_t)m->batch * net->fc.in, &net->dpool);
}
