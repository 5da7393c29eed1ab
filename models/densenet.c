/* DenseNet-121 (SPEC §5) with torchvision's parameter names: the standard (ImageNet) variant
 * (7×7/2 stem, 3×3/2 max-pool) and a CIFAR variant (3×3 stem, no pool). Dense blocks of
 * (6, 12, 24, 16) pre-activation layers (BN-ReLU-1×1 to 4·growth, BN-ReLU-3×3 to growth), each
 * reading every earlier feature map of its block; transitions (BN-ReLU-1×1 halving the channels,
 * 2×2 average pool); a final BN-ReLU, global average pool and the classifier.
 * A block keeps its features in one buffer (n × all its channels × hw); a layer's input is the
 * leading channels of it, copied out, and its gradient is added back into the block's gradient. */
#include <stdio.h>
#include <stdlib.h>

#include "models/model.h"

#define DN_BLOCKS 4
#define DN_GROWTH 32
#define DN_BOTTLENECK 4 /* the 1×1 conv widens to 4·growth */
#define DN_STEM 64
#define DN_MAX_LAYERS 24
static const int BLOCK_LAYERS[DN_BLOCKS] = {6, 12, 24, 16};

/* BN → ReLU → conv: the pre-activation unit of dense layers and transitions. */
typedef struct {
  ist_bn_layer bn;
  ist_conv_layer conv;
  float *b, *r, *y;   /* BN, ReLU and conv outputs */
  float *db, *dr;     /* gradients w.r.t. b and r */
} bn_relu_conv;

typedef struct {
  bn_relu_conv u1, u2; /* 1×1 bottleneck, 3×3 growth */
  int cin;             /* channels it reads */
  float *in, *din;     /* its input, copied out of the block, and that input's gradient */
  float *dmid, *dnew;  /* gradients w.r.t. u1's output and the new features */
} dense_layer;

typedef struct {
  int c0, layers, c, h, w; /* input channels, layers, total channels, size */
  dense_layer layer[DN_MAX_LAYERS];
  float *feat, *dfeat;     /* n × c × hw: the input then every layer's growth */
} dense_block;

typedef struct {
  ist_stem stem;
  dense_block block[DN_BLOCKS];
  bn_relu_conv trans[DN_BLOCKS - 1];
  float *tpool[DN_BLOCKS - 1];  /* transition outputs, pooled: the next block's input */
  float *dtpool[DN_BLOCKS - 1]; /* their gradients */
  float *dty[DN_BLOCKS - 1];    /* gradients w.r.t. the transition convs' outputs (before pooling) */
  ist_bn_layer norm5;
  float *f5, *r5, *df5, *dr5;
  ist_head head;
} densenet;

static ist_status brc_register(ist_model *m, bn_relu_conv *u, const char *bn_name, const char *conv_name, int ci,
                               int h, int w, int co, int k, const ist_model_config *cfg) {
  IST_TRY(ist_bn_layer_register(m, &u->bn, bn_name, ci, h * w));
  IST_TRY(ist_conv_layer_init(&u->conv, conv_name, m->batch, ci, h, w, co, k, 1, k / 2, 1, ist_config_for(cfg, conv_name),
                              cfg->exec));
  IST_TRY(ist_conv_layer_register(m, &u->conv));
  if (ist_conv_layer_ws_floats(m->be, &u->conv) > m->ws_floats) m->ws_floats = ist_conv_layer_ws_floats(m->be, &u->conv);
  const int64_t in = (int64_t)m->batch * ci * h * w, out = (int64_t)m->batch * co * h * w;
  IST_TRY(ist_model_scratch(m, in, &u->b));
  IST_TRY(ist_model_scratch(m, in, &u->r));
  IST_TRY(ist_model_scratch(m, in, &u->db));
  IST_TRY(ist_model_scratch(m, in, &u->dr));
  return ist_model_scratch(m, out, &u->y);
}

static const float *brc_forward(ist_model *m, bn_relu_conv *u, int n, const float *x, int training) {
  const ist_backend *be = m->be;
  ist_bn_layer *bn = &u->bn;
  ist_bn_layer_forward(m, bn, n, x, u->b, training);
  be->relu_forward((int64_t)n * bn->c * bn->hw, u->b, u->r);
  ist_conv_layer_forward(be, &u->conv, n, u->r, u->y, m->ws);
  return u->y;
}

/* dy: w.r.t. the conv output; x: the unit's input; dx overwritten. */
static void brc_backward(ist_model *m, bn_relu_conv *u, int n, const float *dy, const float *x, float *dx) {
  const ist_backend *be = m->be;
  ist_bn_layer *bn = &u->bn;
  ist_conv_layer_backward(be, &u->conv, n, dy, u->dr, m->ws);
  be->relu_backward((int64_t)n * bn->c * bn->hw, u->dr, u->r, u->db);
  ist_bn_layer_backward(m, bn, n, u->db, x, dx);
}

/* x (n × c0 × hw) → the block's feature buffer. */
static void block_forward(ist_model *m, dense_block *blk, int n, const float *x, int training) {
  const ist_backend *be = m->be;
  const int hw = blk->h * blk->w;
  be->copy_channels(n, hw, blk->c0, x, blk->c0, 0, blk->feat, blk->c, 0, 0);
  for (int i = 0; i < blk->layers; i++) {
    dense_layer *l = &blk->layer[i];
    be->copy_channels(n, hw, l->cin, blk->feat, blk->c, 0, l->in, l->cin, 0, 0);
    const float *mid = brc_forward(m, &l->u1, n, l->in, training);
    const float *nw = brc_forward(m, &l->u2, n, mid, training);
    be->copy_channels(n, hw, DN_GROWTH, nw, DN_GROWTH, 0, blk->feat, blk->c, l->cin, 0);
  }
}

/* From blk->dfeat (the gradient w.r.t. every channel of the block's output), the gradient w.r.t.
 * the block's input into dx (n × c0 × hw). */
static void block_backward(ist_model *m, dense_block *blk, int n, float *dx) {
  const ist_backend *be = m->be;
  const int hw = blk->h * blk->w;
  for (int i = blk->layers - 1; i >= 0; i--) {
    dense_layer *l = &blk->layer[i];
    be->copy_channels(n, hw, DN_GROWTH, blk->dfeat, blk->c, l->cin, l->dnew, DN_GROWTH, 0, 0);
    brc_backward(m, &l->u2, n, l->dnew, l->u1.y, l->dmid);
    brc_backward(m, &l->u1, n, l->dmid, l->in, l->din);
    be->copy_channels(n, hw, l->cin, l->din, l->cin, 0, blk->dfeat, blk->c, 0, 1);
  }
  be->copy_channels(n, hw, blk->c0, blk->dfeat, blk->c, 0, dx, blk->c0, 0, 0);
}

static void densenet_forward(ist_model *m, int n, int training) {
  densenet *net = m->impl;
  const ist_backend *be = m->be;
  const float *x = ist_stem_forward(m, &net->stem, n, training);
  for (int b = 0; b < DN_BLOCKS; b++) {
    dense_block *blk = &net->block[b];
    block_forward(m, blk, n, x, training);
    if (b == DN_BLOCKS - 1) break;
    const float *t = brc_forward(m, &net->trans[b], n, blk->feat, training);
    be->avgpool_forward(n, blk->c / 2, blk->h, blk->w, blk->h / 2, blk->w / 2, t, net->tpool[b]);
    x = net->tpool[b];
  }
  const dense_block *last = &net->block[DN_BLOCKS - 1];
  const int hw = last->h * last->w;
  ist_bn_layer *bn = &net->norm5;
  ist_bn_layer_forward(m, bn, n, last->feat, net->f5, training);
  be->relu_forward((int64_t)n * bn->c * hw, net->f5, net->r5);
  ist_head_forward(m, &net->head, n, net->r5);
}

static void densenet_backward(ist_model *m, int n) {
  densenet *net = m->impl;
  const ist_backend *be = m->be;
  dense_block *last = &net->block[DN_BLOCKS - 1];
  const int hw = last->h * last->w;
  ist_bn_layer *bn = &net->norm5;
  ist_head_backward(m, &net->head, n, net->dr5);
  be->relu_backward((int64_t)n * bn->c * hw, net->dr5, net->r5, net->df5);
  ist_bn_layer_backward(m, bn, n, net->df5, last->feat, last->dfeat);
  for (int b = DN_BLOCKS - 1; b >= 0; b--) {
    block_backward(m, &net->block[b], n, b ? net->dtpool[b - 1] : net->stem.dout);
    if (!b) break;
    /* The transition before block b is the only reader of block b−1's features: its backward
     * writes their whole gradient, to which block b−1's own layers then add. */
    dense_block *prev = &net->block[b - 1];
    be->avgpool_backward(n, prev->c / 2, prev->h, prev->w, prev->h / 2, prev->w / 2, net->dtpool[b - 1],
                         net->dty[b - 1]);
    brc_backward(m, &net->trans[b - 1], n, net->dty[b - 1], prev->feat, prev->dfeat);
  }
  ist_stem_backward(m, &net->stem, n);
}

static ist_status block_register(ist_model *m, dense_block *blk, int b, int c0, int h, int w,
                                 const ist_model_config *cfg) {
  blk->c0 = c0;
  blk->layers = BLOCK_LAYERS[b];
  blk->c = c0 + blk->layers * DN_GROWTH;
  blk->h = h;
  blk->w = w;
  const int64_t hw = (int64_t)h * w, nb = m->batch;
  IST_TRY(ist_model_scratch(m, nb * blk->c * hw, &blk->feat));
  IST_TRY(ist_model_scratch(m, nb * blk->c * hw, &blk->dfeat));
  for (int i = 0; i < blk->layers; i++) {
    dense_layer *l = &blk->layer[i];
    char nm[4][IST_NAME_LEN];
    for (int k = 0; k < 4; k++)
      snprintf(nm[k], IST_NAME_LEN, "features.denseblock%d.denselayer%d.%s", b + 1, i + 1,
               (const char *[]){"norm1", "conv1", "norm2", "conv2"}[k]);
    l->cin = c0 + i * DN_GROWTH;
    IST_TRY(brc_register(m, &l->u1, nm[0], nm[1], l->cin, h, w, DN_BOTTLENECK * DN_GROWTH, 1, cfg));
    IST_TRY(brc_register(m, &l->u2, nm[2], nm[3], DN_BOTTLENECK * DN_GROWTH, h, w, DN_GROWTH, 3, cfg));
    IST_TRY(ist_model_scratch(m, nb * l->cin * hw, &l->in));
    IST_TRY(ist_model_scratch(m, nb * l->cin * hw, &l->din));
    IST_TRY(ist_model_scratch(m, nb * DN_BOTTLENECK * DN_GROWTH * hw, &l->dmid));
    IST_TRY(ist_model_scratch(m, nb * DN_GROWTH * hw, &l->dnew));
  }
  return IST_OK;
}

static ist_status densenet121_build(ist_model *m, const ist_model_config *cfg, int imagenet) {
  /* Its pre-activation layers (BN → ReLU → conv) have no activation quantizers. */
  if (m->act_bits < 32) return ist_fail(IST_ERR_ARG, "--act-bits: %s does not quantize activations (use 32)", m->arch);
  densenet *net = ist_model_impl(m, sizeof(densenet), "densenet121");
  if (!net) return IST_ERR_MEMORY;
  ist_image_model_defaults(m, cfg, imagenet);
  m->forward = densenet_forward;
  m->backward = densenet_backward;
  const int64_t nb = m->batch;
  IST_TRY(ist_stem_register(m, &net->stem, "features.conv0", "features.norm0", DN_STEM, imagenet, cfg));
  int c = DN_STEM, h = net->stem.oh, w = net->stem.ow;
  for (int b = 0; b < DN_BLOCKS; b++) {
    /* Each transition pools 2×2 (PyTorch's AvgPool2d(2) floors: sizes must stay even). */
    if (b < DN_BLOCKS - 1 && (h % 2 || w % 2))
      return ist_fail(IST_ERR_ARG, "densenet121: %dx%d input gives an odd %dx%d map before transition %d", m->in_h,
                      m->in_w, h, w, b + 1);
    dense_block *blk = &net->block[b];
    IST_TRY(block_register(m, blk, b, c, h, w, cfg));
    c = blk->c;
    if (b == DN_BLOCKS - 1) break;
    char bn[IST_NAME_LEN], cn[IST_NAME_LEN];
    snprintf(bn, sizeof bn, "features.transition%d.norm", b + 1);
    snprintf(cn, sizeof cn, "features.transition%d.conv", b + 1);
    IST_TRY(brc_register(m, &net->trans[b], bn, cn, c, h, w, c / 2, 1, cfg));
    IST_TRY(ist_model_scratch(m, nb * (c / 2) * h * w, &net->dty[b]));
    c /= 2;
    h /= 2;
    w /= 2;
    IST_TRY(ist_model_scratch(m, nb * c * h * w, &net->tpool[b]));
    IST_TRY(ist_model_scratch(m, nb * c * h * w, &net->dtpool[b]));
  }
  IST_TRY(ist_bn_layer_register(m, &net->norm5, "features.norm5", c, h * w));
  const int64_t len = nb * c * h * w;
  IST_TRY(ist_model_scratch(m, len, &net->f5));
  IST_TRY(ist_model_scratch(m, len, &net->r5));
  IST_TRY(ist_model_scratch(m, len, &net->df5));
  IST_TRY(ist_model_scratch(m, len, &net->dr5));
  return ist_head_register(m, &net->head, "classifier", c, h, w);
}

ist_status ist_densenet121_cifar_build(ist_model *m, const ist_model_config *cfg) {
  return densenet121_build(m, cfg, 0);
}
ist_status ist_densenet121_imagenet_build(ist_model *m, const ist_model_config *cfg) {
  return densenet121_build(m, cfg, 1);
}
