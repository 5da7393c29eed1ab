/* RAdam over a model's trainable parameters, with the per-epoch exponential lr decay of SPEC §4. */
#ifndef IST_OPTIMIZER_H
#define IST_OPTIMIZER_H
#include "models/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  ist_radam_hparams h;
  float lr0, decay;
  int step;
  int64_t n;       /* floats of the trainable block (the gradient block's size, alignment gaps included) */
  ist_arena state; /* m, then v, each n floats laid out as the gradient block (backend memory) */
} ist_radam;

ist_status ist_radam_create(ist_radam *o, const ist_model *m, float lr, float decay, float weight_decay);
void ist_radam_destroy(ist_radam *o);
void ist_radam_set_epoch(ist_radam *o, int epoch); /* lr = lr0 · decay^epoch */
void ist_radam_step(ist_radam *o, ist_model *m);
/* The first (which = 0) or second moment: backend memory, n floats, a parameter's at its gradient's offset. */
float *ist_radam_moment(const ist_radam *o, int which);

#ifdef __cplusplus
}
#endif
#endif
