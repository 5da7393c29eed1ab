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
  ist_arena state; /* m and v for every trainable parameter, in parameter order */
} ist_radam;

ist_status ist_radam_create(ist_radam *o, const ist_model *m, float lr, float decay, float weight_decay);
void ist_radam_destroy(ist_radam *o);
void ist_radam_set_epoch(ist_radam *o, int epoch); /* lr = lr0 · decay^epoch */
void ist_radam_step(ist_radam *o, ist_model *m);

#ifdef __cplusplus
}
#endif
#endif
