/* The activation functions by name (ist_act), forward and backward, through the op table; and
 * activation quantization at the inputs of convs and classifiers. */
#include <stdio.h>
#include <string.h>

#include "models/model.h"

void ist_act_forward(const ist_backend *be, ist_act act, int64_t n, const float *x, float *y) {
  switch (act) {
    case IST_ACT_RELU: be->relu_forward(n, x, y); break;
    case IST_ACT_RELU6: be->relu6_forward(n, x, y); break;
    case IST_ACT_HARDSWISH: be->hardswish_forward(n, x, y); break;
    case IST_ACT_SILU: be->silu_forward(n, x, y); break;
    case IST_ACT_NONE:
      if (y != x) be->copy(y, x, n);
      break;
  }
}

void ist_act_backward(const ist_backend *be, ist_act act, int64_t n, const float *dy, const float *x, const float *y,
                      float *dx) {
  switch (act) {
    /* ReLU and ReLU6 read their output, the smooth ones their input. */
    case IST_ACT_RELU: be->relu_backward(n, dy, y, dx); break;
    case IST_ACT_RELU6: be->relu6_backward(n, dy, y, dx); break;
    case IST_ACT_HARDSWISH: be->hardswish_backward(n, dy, x, dx); break;
    case IST_ACT_SILU: be->silu_backward(n, dy, x, dx); break;
    case IST_ACT_NONE:
      if (dx != dy) be->copy(dx, dy, n);
      break;
  }
}

ist_status ist_act_quant_register(ist_model *m, ist_act_quant *q, const char *name, int64_t per_image) {
  memset(q, 0, sizeof *q);
  q->per_image = per_image;
  if (m->act_bits >= 32) return IST_OK;
  char pn[IST_NAME_LEN + 16];
  snprintf(pn, sizeof pn, "%s.act_range", name);
  IST_TRY(ist_model_add_param(m, pn, IST_PARAM_BUFFER, 32, 1, (int64_t[]){2}, &q->range, NULL));
  IST_TRY(ist_model_scratch(m, 2, &q->used));
  return ist_model_scratch(m, per_image * m->batch, &q->xq);
}

const float *ist_act_quant_forward(ist_model *m, ist_act_quant *q, int n, const float *x) {
  if (!q->xq) return x;
  q->x = x;
  m->be->act_quantize_forward(q->per_image * n, m->act_bits, x, q->xq, q->range, q->used, IST_ACT_MOMENTUM,
                              m->act_training);
  return q->xq;
}

void ist_act_quant_backward(ist_model *m, ist_act_quant *q, int n, float *dx) {
  if (q->xq && dx) m->be->act_quantize_backward(q->per_image * n, m->act_bits, q->used, q->x, dx, dx);
}

int64_t ist_model_largest_activation(const ist_model *m) {
  int64_t best = (int64_t)m->in_c * m->in_h * m->in_w;
  for (int i = 0; i < m->nconvs; i++) {
    const ist_conv_shape *s = &m->convs[i]->shape;
    const int64_t in = (int64_t)s->ci * s->h * s->w, out = (int64_t)s->co * s->ho * s->wo;
    if (in > best) best = in;
    if (out > best) best = out;
  }
  return best;
}
