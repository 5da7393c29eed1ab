/* The activation functions by name (ist_act), forward and backward, through the op table. */
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
