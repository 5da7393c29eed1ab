/* EfficientNet-B0 (torchvision's efficientnet_b0: structure, parameter names) in its ImageNet
 * variant and a CIFAR variant (3×3 stride-1 stem). MBConv blocks with SiLU, squeeze-and-excitation
 * (SiLU, sigmoid gate) and stochastic depth (probability 0.2 · block index / 16, torchvision's),
 * dropout 0.2 before the classifier. Generated: depthwise convs at level 1, pointwise and SE convs
 * at level 2 (SPEC §2). */
#include <stdio.h>

#include "models/mbconv.h"

#define EFF_STAGES 7
#define EFF_BLOCKS 16
#define EFF_STEM 32
#define EFF_LAST 1280
#define EFF_DROPOUT 0.2f
#define EFF_STOCHASTIC_DEPTH 0.2f

/* torchvision's MBConvConfig rows: expand ratio, kernel, stride, input, output, layers. */
static const int STAGES[EFF_STAGES][6] = {{1, 3, 1, 32, 16, 1},   {6, 3, 2, 16, 24, 2},  {6, 5, 2, 24, 40, 2},
                                          {6, 3, 2, 40, 80, 3},   {6, 5, 1, 80, 112, 3}, {6, 5, 2, 112, 192, 4},
                                          {6, 3, 1, 192, 320, 1}};

typedef struct {
  ist_drop_state drop; /* first: see ist_drop_hold */
  ist_conv_bn stem, last;
  ist_mbconv blk[EFF_BLOCKS];
  float *dstem, *dlast;
  ist_head head;
  float *dropped;     /* the pooled features after dropout */
  const float *fc_in; /* the pooled features as the classifier reads them in eval */
  int training;
} efficientnet;

static void eff_forward(ist_model *m, int n, int training) {
  efficientnet *net = m->impl;
  const ist_backend *be = m->be;
  if (training) ist_drop_next(&net->drop);
  const float *x = ist_conv_bn_forward(m, &net->stem, n, m->input, training);
  for (int i = 0; i < EFF_BLOCKS; i++) x = ist_mbconv_forward(m, &net->blk[i], n, x, training);
  x = ist_conv_bn_forward(m, &net->last, n, x, training);
  ist_head *hd = &net->head;
  be->avgpool_forward(n, hd->c, hd->h, hd->w, 1, 1, x, hd->gap);
  const float *f = ist_act_quant_forward(m, &hd->aq, n, hd->gap);
  net->fc_in = f;
  net->training = training;
  if (training) {
    be->dropout_forward((int64_t)n * hd->c, 1, EFF_DROPOUT, net->drop.steps, f, net->dropped);
    f = net->dropped;
  }
  ist_linear_layer_forward(be, &hd->fc, n, f, m->logits);
}

static void eff_backward(ist_model *m, int n) {
  efficientnet *net = m->impl;
  const ist_backend *be = m->be;
  ist_head *hd = &net->head;
  ist_linear_layer_backward(be, &hd->fc, n, m->dlogits, net->training ? net->dropped : net->fc_in, hd->dgap);
  if (net->training) be->dropout_backward((int64_t)n * hd->c, 1, EFF_DROPOUT, net->drop.steps, hd->dgap, hd->dgap);
  ist_act_quant_backward(m, &hd->aq, n, hd->dgap);
  be->avgpool_backward(n, hd->c, hd->h, hd->w, 1, 1, hd->dgap, net->dlast);
  ist_conv_bn_backward(m, &net->last, n, net->dlast, net->blk[EFF_BLOCKS - 1].dout);
  for (int i = EFF_BLOCKS - 1; i >= 0; i--)
    ist_mbconv_backward(m, &net->blk[i], n, i ? net->blk[i - 1].dout : net->dstem);
  ist_conv_bn_backward(m, &net->stem, n, net->dstem, NULL);
}

static ist_status eff_build(ist_model *m, const ist_model_config *cfg, int imagenet) {
  efficientnet *net = ist_model_impl(m, sizeof(efficientnet), "efficientnet-b0");
  if (!net) return IST_ERR_MEMORY;
  ist_image_model_defaults(m, cfg, imagenet);
  m->forward = eff_forward;
  m->backward = eff_backward;
  const int64_t b = m->batch;
  IST_TRY(ist_conv_bn_register(m, &net->stem, "features.0.0", "features.0.1", m->in_c, m->in_h, m->in_w, EFF_STEM, 3,
                               imagenet ? 2 : 1, 1, 1, cfg, IST_ACT_SILU));
  IST_TRY(ist_model_scratch(m, ist_conv_bn_out_numel(&net->stem, b), &net->dstem));
  int h = net->stem.conv.shape.ho, w = net->stem.conv.shape.wo, i = 0;
  for (int s = 0; s < EFF_STAGES; s++)
    for (int r = 0; r < STAGES[s][5]; r++, i++) {
      const int ci = r ? STAGES[s][4] : STAGES[s][3];
      const ist_mbconv_config c = {.ci = ci, .h = h, .w = w, .expanded = ci * STAGES[s][0], .co = STAGES[s][4],
                                   .k = STAGES[s][1], .stride = r ? 1 : STAGES[s][2],
                                   .se_sq = ci / 4 > 1 ? ci / 4 : 1, .act = IST_ACT_SILU, .se_act = IST_ACT_SILU,
                                   .hard_gate = 0, .sd_prob = EFF_STOCHASTIC_DEPTH * (float)i / EFF_BLOCKS,
                                   .bn_eps = IST_BN_EPS};
      char prefix[32];
      snprintf(prefix, sizeof prefix, "features.%d.%d.block", s + 1, r);
      IST_TRY(ist_mbconv_register(m, &net->blk[i], prefix, &c, cfg, &net->drop));
      h = ist_mbconv_out_h(&net->blk[i]);
      w = ist_mbconv_out_w(&net->blk[i]);
    }
  IST_TRY(ist_conv_bn_register(m, &net->last, "features.8.0", "features.8.1", STAGES[EFF_STAGES - 1][4], h, w,
                               EFF_LAST, 1, 1, 0, 1, cfg, IST_ACT_SILU));
  IST_TRY(ist_model_scratch(m, ist_conv_bn_out_numel(&net->last, b), &net->dlast));
  IST_TRY(ist_head_register(m, &net->head, "classifier.1", EFF_LAST, h, w));
  return ist_model_scratch(m, b * EFF_LAST, &net->dropped);
}

ist_status ist_efficientnet_b0_cifar_build(ist_model *m, const ist_model_config *cfg) { return eff_build(m, cfg, 0); }
ist_status ist_efficientnet_b0_imagenet_build(ist_model *m, const ist_model_config *cfg) {
  return eff_build(m, cfg, 1);
}
