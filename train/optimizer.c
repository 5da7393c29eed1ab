/* RAdam state and the step over every trainable parameter: one radam_update over the whole
 * trainable block, whose layout the gradients and the moments share. */
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
  /* The trainable parameters lie at the start of the parameter block, each at its gradient's
   * offset in the gradient block (models/model.c lays them out so); check it, as the one step
   * below depends on it. */
  o->n = (int64_t)(m->grads_arena.used / sizeof(float));
  const float *p0 = (const float *)m->params_arena.base, *g0 = (const float *)m->grads_arena.base;
  for (int i = 0; i < m->nparams; i++) {
    const ist_param *p = &m->params[i];
    if (p->grad && (p->data - p0 != p->grad - g0 || p->grad - g0 + p->numel > o->n))
      return ist_fail(IST_ERR_STATE, "optimizer: %s lies at float %lld of the parameters but its gradient at %lld",
                      p->name, (long long)(p->data - p0), (long long)(p->grad - g0));
  }
  return ist_arena_create(&o->state, 2 * sizeof(float) * (size_t)(o->n > 0 ? o->n : 1), m->be);
}

void ist_radam_destroy(ist_radam *o) { ist_arena_destroy(&o->state); }

void ist_radam_set_epoch(ist_radam *o, int epoch) { o->h.lr = o->lr0 * powf(o->decay, (float)epoch); }

float *ist_radam_moment(const ist_radam *o, int which) { return (float *)o->state.base + (which ? o->n : 0); }

void ist_radam_step(ist_radam *o, ist_model *m) {
  o->step++;
  if (o->n == 0) return;
  m->be->radam_update(o->n, (float *)m->params_arena.base, (const float *)m->grads_arena.base, ist_radam_moment(o, 0),
                      ist_radam_moment(o, 1), o->step, &o->h);
}
