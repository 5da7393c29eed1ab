/* MobileNetV2 (SPEC §5) with torchvision's structure and parameter names: the standard (ImageNet)
 * variant and a CIFAR variant (stem and the second stage at stride 1, as is usual for 32×32
 * inputs). Generated, its depthwise convs use level 1 and its pointwise convs level 2 (SPEC §2
 * switches the other level off by itself). torchvision's classifier dropout is not applied. */
#include <stdio.h>
#include <stdlib.h>

#include "models/model.h"

#define MBV2_BLOCKS 17
#define MBV2_STEM 32
#define MBV2_LAST 1280

/* The inverted-residual stages: expansion t, output channels c, blocks n, first stride s. */
static const int STAGES[7][4] = {{1, 16, 1, 1},  {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                                 {6, 96, 3, 1},  {6, 160, 3, 2}, {6, 320, 1, 1}};

typedef struct {
  int has_expand, residual;
  ist_conv_bn expand, dw, project; /* 1×1 ReLU6 (when t > 1), 3×3 depthwise ReLU6, 1×1 linear */
  float *out, *dout;               /* the block's output (project + input when residual) and its gradient */
  float *dh1, *dh2;                /* gradients w.r.t. the expand and depthwise outputs */
} inverted_residual;

typedef struct {
  ist_conv_bn stem, last;
  inverted_residual blk[MBV2_BLOCKS];
  float *dstem, *dlast;
  ist_head head;
} mobilenetv2;

static const float *block_forward(ist_model *m, inverted_residual *b, int n, const float *x, int training) {
  const float *h = b->has_expand ? ist_conv_bn_forward(m, &b->expand, n, x, training) : x;
  h = ist_conv_bn_forward(m, &b->dw, n, h, training);
  const float *o = ist_conv_bn_forward(m, &b->project, n, h, training);
  if (!b->residual) return o;
  m->be->add(ist_conv_bn_out_numel(&b->project, n), o, x, b->out);
  return b->out;
}

/* From b->dout, writes the gradient w.r.t. the block's input into dx. */
static void block_backward(ist_model *m, inverted_residual *b, int n, float *dx) {
  ist_conv_bn_backward(m, &b->project, n, b->dout, b->dh2);
  ist_conv_bn_backward(m, &b->dw, n, b->dh2, b->has_expand ? b->dh1 : dx);
  if (b->has_expand) ist_conv_bn_backward(m, &b->expand, n, b->dh1, dx);
  if (b->residual) m->be->add(ist_conv_bn_out_numel(&b->project, n), dx, b->dout, dx);
}

static void mbv2_forward(ist_model *m, int n, int training) {
  mobilenetv2 *net = m->impl;
  const float *x = ist_conv_bn_forward(m, &net->stem, n, m->input, training);
  for (int i = 0; i < MBV2_BLOCKS; i++) x = block_forward(m, &net->blk[i], n, x, training);
  x = ist_conv_bn_forward(m, &net->last, n, x, training);
  ist_head_forward(m, &net->head, n, x);
}

static void mbv2_backward(ist_model *m, int n) {
  mobilenetv2 *net = m->impl;
  ist_head_backward(m, &net->head, n, net->dlast);
  ist_conv_bn_backward(m, &net->last, n, net->dlast, net->blk[MBV2_BLOCKS - 1].dout);
  for (int i = MBV2_BLOCKS - 1; i >= 0; i--) block_backward(m, &net->blk[i], n, i ? net->blk[i - 1].dout : net->dstem);
  ist_conv_bn_backward(m, &net->stem, n, net->dstem, NULL);
}

/* Registers a conv + BN named the torchvision way: "<prefix>.0"/"<prefix>.1" for a
 * Conv2dNormActivation, or "<prefix>.<i>"/"<prefix>.<i+1>" for the linear projection. */
static ist_status unit(ist_model *m, ist_conv_bn *u, const char *prefix, int index, int ci, int h, int w, int co,
                       int k, int stride, int groups, const ist_model_config *cfg, ist_act act) {
  char cn[IST_NAME_LEN], bn[IST_NAME_LEN];
  if (act == IST_ACT_NONE) {
    snprintf(cn, sizeof cn, "%s.%d", prefix, index);
    snprintf(bn, sizeof bn, "%s.%d", prefix, index + 1);
  } else {
    snprintf(cn, sizeof cn, "%s.%d.0", prefix, index);
    snprintf(bn, sizeof bn, "%s.%d.1", prefix, index);
  }
  return ist_conv_bn_register(m, u, cn, bn, ci, h, w, co, k, stride, k / 2, groups, cfg, act);
}

static ist_status mbv2_build(ist_model *m, const ist_model_config *cfg, int imagenet) {
  mobilenetv2 *net = ist_model_impl(m, sizeof(mobilenetv2), "mobilenetv2");
  if (!net) return IST_ERR_MEMORY;
  ist_image_model_defaults(m, cfg, imagenet);
  m->forward = mbv2_forward;
  m->backward = mbv2_backward;
  const int b = m->batch;
  IST_TRY(ist_conv_bn_register(m, &net->stem, "features.0.0", "features.0.1", m->in_c, m->in_h, m->in_w, MBV2_STEM, 3,
                               imagenet ? 2 : 1, 1, 1, cfg, IST_ACT_RELU6));
  IST_TRY(ist_model_scratch(m, ist_conv_bn_out_numel(&net->stem, b), &net->dstem));
  int c = MBV2_STEM, h = net->stem.conv.shape.ho, w = net->stem.conv.shape.wo, i = 0;
  for (int s = 0; s < 7; s++)
    for (int r = 0; r < STAGES[s][2]; r++, i++) {
      inverted_residual *blk = &net->blk[i];
      const int t = STAGES[s][0], co = STAGES[s][1], hidden = c * t;
      const int stride = r > 0 ? 1 : (!imagenet && s == 1) ? 1 : STAGES[s][3];
      char prefix[32];
      snprintf(prefix, sizeof prefix, "features.%d.conv", i + 1);
      blk->has_expand = t != 1;
      blk->residual = stride == 1 && c == co;
      int idx = 0;
      if (blk->has_expand) {
        IST_TRY(unit(m, &blk->expand, prefix, idx++, c, h, w, hidden, 1, 1, 1, cfg, IST_ACT_RELU6));
        IST_TRY(ist_model_scratch(m, ist_conv_bn_out_numel(&blk->expand, b), &blk->dh1));
      }
      IST_TRY(unit(m, &blk->dw, prefix, idx++, hidden, h, w, hidden, 3, stride, hidden, cfg, IST_ACT_RELU6));
      IST_TRY(ist_model_scratch(m, ist_conv_bn_out_numel(&blk->dw, b), &blk->dh2));
      const int dh = blk->dw.conv.shape.ho, dwd = blk->dw.conv.shape.wo;
      IST_TRY(unit(m, &blk->project, prefix, idx, hidden, dh, dwd, co, 1, 1, 1, cfg, IST_ACT_NONE));
      const int64_t len = ist_conv_bn_out_numel(&blk->project, b);
      if (blk->residual) IST_TRY(ist_model_scratch(m, len, &blk->out));
      IST_TRY(ist_model_scratch(m, len, &blk->dout));
      c = co;
      h = dh;
      w = dwd;
    }
  IST_TRY(ist_conv_bn_register(m, &net->last, "features.18.0", "features.18.1", c, h, w, MBV2_LAST, 1, 1, 0, 1, cfg,
                               IST_ACT_RELU6));
  IST_TRY(ist_model_scratch(m, ist_conv_bn_out_numel(&net->last, b), &net->dlast));
  return ist_head_register(m, &net->head, "classifier.1", MBV2_LAST, net->last.conv.shape.ho, net->last.conv.shape.wo);
}

ist_status ist_mobilenetv2_cifar_build(ist_model *m, const ist_model_config *cfg) { return mbv2_build(m, cfg, 0); }
ist_status ist_mobilenetv2_imagenet_build(ist_model *m, const ist_model_config *cfg) {
  return mbv2_build(m, cfg, 1);
}
