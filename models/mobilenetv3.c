/* MobileNetV3-Small (torchvision's mobilenet_v3_small: structure, parameter names, BatchNorm eps
 * 1e-3) in its ImageNet variant and a CIFAR variant (3×3 stride-1 stem). Generated, its depthwise
 * convs use level 1 and its pointwise and SE convs level 2 (SPEC §2 switches the other level off by
 * itself). Classifier: Linear 576→1024, hardswish, dropout 0.2, Linear 1024→classes. */
#include <stdio.h>

#include "models/mbconv.h"

#define MBV3_BLOCKS 11
#define MBV3_STEM 16
#define MBV3_LAST_CONV 576
#define MBV3_HIDDEN 1024
#define MBV3_DROPOUT 0.2f
#define MBV3_BN_EPS 1e-3f
#define MBV3_SE_DIVISOR 8

/* torchvision's bneck_conf rows: input, kernel, expanded, output, SE, hardswish (else ReLU), stride. */
static const int BLOCKS[MBV3_BLOCKS][7] = {
    {16, 3, 16, 16, 1, 0, 2},   {16, 3, 72, 24, 0, 0, 2},   {24, 3, 88, 24, 0, 0, 1},   {24, 5, 96, 40, 1, 1, 2},
    {40, 5, 240, 40, 1, 1, 1},  {40, 5, 240, 40, 1, 1, 1},  {40, 5, 120, 48, 1, 1, 1},  {48, 5, 144, 48, 1, 1, 1},
    {48, 5, 288, 96, 1, 1, 2},  {96, 5, 576, 96, 1, 1, 1},  {96, 5, 576, 96, 1, 1, 1}};

typedef struct {
  ist_drop_state drop; /* first: see ist_drop_hold */
  ist_conv_bn stem, last;
  ist_mbconv blk[MBV3_BLOCKS];
  float *dstem, *dlast;
  int last_hw;
  ist_linear_layer fc1, fc2;                 /* classifier.0, classifier.3 */
  ist_act_quant aq1, aq2;                    /* their inputs */
  const float *fc2_in;                       /* fc2's input before dropout */
  float *gap, *h, *a, *dropped, *dgap, *dh, *da; /* pooled, fc1 out, hardswish, dropout; gradients */
  int training;
} mobilenetv3;

static void mbv3_forward(ist_model *m, int n, int training) {
  mobilenetv3 *net = m->impl;
  const ist_backend *be = m->be;
  if (training) ist_drop_next(&net->drop);
  const float *x = ist_conv_bn_forward(m, &net->stem, n, m->input, training);
  for (int i = 0; i < MBV3_BLOCKS; i++) x = ist_mbconv_forward(m, &net->blk[i], n, x, training);
  x = ist_conv_bn_forward(m, &net->last, n, x, training);
  be->avgpool_forward(n, MBV3_LAST_CONV, net->last_hw, 1, 1, 1, x, net->gap);
  ist_linear_layer_forward(be, &net->fc1, n, ist_act_quant_forward(m, &net->aq1, n, net->gap), net->h);
  be->hardswish_forward((int64_t)n * MBV3_HIDDEN, net->h, net->a);
  const float *c = net->fc2_in = ist_act_quant_forward(m, &net->aq2, n, net->a);
  net->training = training;
  if (training) {
    be->dropout_forward((int64_t)n * MBV3_HIDDEN, 1, MBV3_DROPOUT, net->drop.steps, c, net->dropped);
    c = net->dropped;
  }
  ist_linear_layer_forward(be, &net->fc2, n, c, m->logits);
}

static void mbv3_backward(ist_model *m, int n) {
  mobilenetv3 *net = m->impl;
  const ist_backend *be = m->be;
  const int64_t len = (int64_t)n * MBV3_HIDDEN;
  ist_linear_layer_backward(be, &net->fc2, n, m->dlogits, net->training ? net->dropped : net->fc2_in, net->da);
  if (net->training) be->dropout_backward(len, 1, MBV3_DROPOUT, net->drop.steps, net->da, net->da);
  ist_act_quant_backward(m, &net->aq2, n, net->da);
  be->hardswish_backward(len, net->da, net->h, net->dh);
  ist_linear_layer_backward(be, &net->fc1, n, net->dh, net->aq1.xq ? net->aq1.xq : net->gap, net->dgap);
  ist_act_quant_backward(m, &net->aq1, n, net->dgap);
  be->avgpool_backward(n, MBV3_LAST_CONV, net->last_hw, 1, 1, 1, net->dgap, net->dlast);
  ist_conv_bn_backward(m, &net->last, n, net->dlast, net->blk[MBV3_BLOCKS - 1].dout);
  for (int i = MBV3_BLOCKS - 1; i >= 0; i--)
    ist_mbconv_backward(m, &net->blk[i], n, i ? net->blk[i - 1].dout : net->dstem);
  ist_conv_bn_backward(m, &net->stem, n, net->dstem, NULL);
}

static ist_status mbv3_build(ist_model *m, const ist_model_config *cfg, int imagenet) {
  mobilenetv3 *net = ist_model_impl(m, sizeof(mobilenetv3), "mobilenetv3-small");
  if (!net) return IST_ERR_MEMORY;
  ist_image_model_defaults(m, cfg, imagenet);
  m->forward = mbv3_forward;
  m->backward = mbv3_backward;
  const int64_t b = m->batch;
  IST_TRY(ist_conv_bn_register(m, &net->stem, "features.0.0", "features.0.1", m->in_c, m->in_h, m->in_w, MBV3_STEM, 3,
                               imagenet ? 2 : 1, 1, 1, cfg, IST_ACT_HARDSWISH));
  net->stem.bn.eps = MBV3_BN_EPS;
  IST_TRY(ist_model_scratch(m, ist_conv_bn_out_numel(&net->stem, b), &net->dstem));
  int h = net->stem.conv.shape.ho, w = net->stem.conv.shape.wo;
  for (int i = 0; i < MBV3_BLOCKS; i++) {
    const int *r = BLOCKS[i];
    const ist_mbconv_config c = {.ci = r[0], .h = h, .w = w, .expanded = r[2], .co = r[3], .k = r[1], .stride = r[6],
                                 .se_sq = r[4] ? ist_make_divisible(r[2] / 4, MBV3_SE_DIVISOR) : 0,
                                 .act = r[5] ? IST_ACT_HARDSWISH : IST_ACT_RELU, .se_act = IST_ACT_RELU,
                                 .hard_gate = 1, .sd_prob = 0.0f, .bn_eps = MBV3_BN_EPS};
    char prefix[32];
    snprintf(prefix, sizeof prefix, "features.%d.block", i + 1);
    IST_TRY(ist_mbconv_register(m, &net->blk[i], prefix, &c, cfg, &net->drop));
    h = ist_mbconv_out_h(&net->blk[i]);
    w = ist_mbconv_out_w(&net->blk[i]);
  }
  IST_TRY(ist_conv_bn_register(m, &net->last, "features.12.0", "features.12.1", BLOCKS[MBV3_BLOCKS - 1][3], h, w,
                               MBV3_LAST_CONV, 1, 1, 0, 1, cfg, IST_ACT_HARDSWISH));
  net->last.bn.eps = MBV3_BN_EPS;
  net->last_hw = h * w;
  IST_TRY(ist_model_scratch(m, ist_conv_bn_out_numel(&net->last, b), &net->dlast));
  const int bits = ist_config_fc_bits(m);
  IST_TRY(ist_linear_layer_register(m, &net->fc1, "classifier.0", MBV3_LAST_CONV, MBV3_HIDDEN, bits));
  IST_TRY(ist_linear_layer_register(m, &net->fc2, "classifier.3", MBV3_HIDDEN, m->classes, bits));
  IST_TRY(ist_act_quant_register(m, &net->aq1, "classifier.0", MBV3_LAST_CONV));
  IST_TRY(ist_act_quant_register(m, &net->aq2, "classifier.3", MBV3_HIDDEN));
  float **v[] = {&net->gap, &net->dgap};
  for (int i = 0; i < 2; i++) IST_TRY(ist_model_scratch(m, b * MBV3_LAST_CONV, v[i]));
  float **u[] = {&net->h, &net->a, &net->dropped, &net->dh, &net->da};
  for (int i = 0; i < 5; i++) IST_TRY(ist_model_scratch(m, b * MBV3_HIDDEN, u[i]));
  return IST_OK;
}

ist_status ist_mobilenetv3_small_cifar_build(ist_model *m, const ist_model_config *cfg) {
  return mbv3_build(m, cfg, 0);
}
ist_status ist_mobilenetv3_small_imagenet_build(ist_model *m, const ist_model_config *cfg) {
  return mbv3_build(m, cfg, 1);
}
