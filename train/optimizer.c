/* RAdam state and the step over every trainable parameter. */
#include "train/optimizer.h"

#include <math.h>

#define RADAM_BETA1 0.9f
#define RADAM_BETA2 0.999f
#define RADAM_EPS 1e-8f

ist_status ist_radam_create(ist_radam *o, const ist_model *m, float lr, float decay, float weight_decay) {
  o->h = (ist_radam_hparams){lr, RADAM_BETA1, RADAM_BETA2, RADAM_EPS, weight_decay};
  o->lr0 = lr;
  o->decay = decay;
  o->step = 0;
  return ist_arena_create(&o->state, 2 * sizeof(float) * (size_t)ist_model_param_floats(m), IST_CPU);
}

void ist_radam_destroy(ist_radam *o) { ist_arena_destroy(&o->state); }

void ist_radam_set_epoch(ist_radam *o, int epoch) { o->h.lr = o->lr0 * powf(o->decay, (float)epoch); }

void ist_radam_step(ist_radam *o, ist_model *m) {
  o->step++;
  const int64_t total = ist_model_param_floats(m);
  float *mom = (float *)o->state.base, *var = mom + total;
  int64_t off = 0;
  for (int i = 0; i < m->nparams; i++) {
    ist_param *p = &m->params[i];
    if (!p->grad) continue;
    m->be->radam_update(p->numel, p->data, p->grad, mom + off, var + off, o->step, &o->h);
    off += p->numel;
  }
}
