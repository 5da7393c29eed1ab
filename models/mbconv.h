/* The building blocks MobileNetV3 and EfficientNet share (torchvision's structure and names):
 * squeeze-and-excitation and the inverted-residual / MBConv block with optional stochastic depth. */
#ifndef IST_MBCONV_H
#define IST_MBCONV_H
#include "models/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The dropout and stochastic-depth masks of a compact network are drawn anew at each training
 * forward (a step counter seeds them) unless held: tests hold them to compare gradients with
 * finite differences. The network's layer struct (m->impl) starts with this. */
typedef struct {
  uint64_t steps;
  int hold;
} ist_drop_state;
static inline void ist_drop_next(ist_drop_state *d) {
  if (!d->hold) d->steps++;
}
/* Holds (or releases) the masks of a mobilenetv3-small* or efficientnet-b0* model; 0 for others. */
int ist_drop_hold(ist_model *m, int hold);

/* Squeeze-and-excitation (torchvision.ops.SqueezeExcitation): global average pool → 1×1 conv fc1
 * (c → sq, with bias) → act → 1×1 conv fc2 (sq → c, with bias) → gate (hardsigmoid or sigmoid) →
 * the input scaled per channel. fc1 and fc2 are convs, generated like any other (SPEC §2: level 2). */
typedef struct {
  int c, sq, hw;
  ist_act act;
  int hard_gate; /* hardsigmoid (MobileNetV3) rather than sigmoid (EfficientNet) */
  ist_conv_layer fc1, fc2;
  ist_act_quant aq1, aq2;                          /* fc1's and fc2's inputs */
  float *b1, *b2, *db1, *db2;                      /* the convs' biases (fp32, counted like BN's) */
  float *pooled, *z1, *a1, *z2, *gate, *out;        /* n×c, n×sq, n×sq, n×c, n×c, n×c×hw */
  float *dpooled, *dz1, *da1, *dz2, *dgate, *dpool; /* their gradients; dpool: n×c×hw */
} ist_se;

ist_status ist_se_register(ist_model *m, ist_se *se, const char *prefix, int c, int sq, int h, int w, ist_act act,
                           int hard_gate, const ist_model_config *cfg);
const float *ist_se_forward(ist_model *m, ist_se *se, int n, const float *x);
/* dx (overwritten) from dout; x: the forward's input. */
void ist_se_backward(ist_model *m, ist_se *se, int n, const float *dout, const float *x, float *dx);

/* One inverted residual: [1×1 expand] → k×k depthwise → [SE] → 1×1 linear projection
 * (+ input when stride 1 and the width is kept, after stochastic depth in training). */
typedef struct {
  int has_expand, has_se, residual;
  float sd_prob; /* stochastic depth: the probability of dropping the block's branch (per image) */
  uint64_t seed;
  const ist_drop_state *drop;
  ist_conv_bn expand, dw, project;
  ist_se se;
  float *sd, *dsd;   /* the branch after stochastic depth, and its gradient */
  float *out, *dout; /* the block's output and its gradient */
  float *dh1, *dh2, *dh3;
} ist_mbconv;

/* Conv units named "<prefix>.<j>.0" / "<prefix>.<j>.1" (torchvision's Conv2dNormActivation) and the
 * SE as "<prefix>.<j>.fc1" / ".fc2". se_sq = 0: no SE. bn_eps: every BN of the block. */
typedef struct {
  int ci, h, w, expanded, co, k, stride, se_sq;
  ist_act act, se_act;
  int hard_gate;
  float sd_prob, bn_eps;
} ist_mbconv_config;

ist_status ist_mbconv_register(ist_model *m, ist_mbconv *b, const char *prefix, const ist_mbconv_config *c,
                               const ist_model_config *cfg, const ist_drop_state *drop);
const float *ist_mbconv_forward(ist_model *m, ist_mbconv *b, int n, const float *x, int training);
/* From b->dout, the gradient w.r.t. the block's input into dx. */
void ist_mbconv_backward(ist_model *m, ist_mbconv *b, int n, float *dx);
static inline int ist_mbconv_out_c(const ist_mbconv *b) { return b->project.conv.shape.co; }
static inline int ist_mbconv_out_h(const ist_mbconv *b) { return b->project.conv.shape.ho; }
static inline int ist_mbconv_out_w(const ist_mbconv *b) { return b->project.conv.shape.wo; }

/* torchvision's _make_divisible: v rounded to the nearest multiple of divisor, at least divisor,
 * never below 90% of v. */
int ist_make_divisible(double v, int divisor);

#ifdef __cplusplus
}
#endif
#endif
