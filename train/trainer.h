/* Training loops: a teacher with cross-entropy, a student with KD + orthogonality (SPEC §4). */
#ifndef IST_TRAINER_H
#define IST_TRAINER_H
#include <stdio.h>

#include "host/comm.h"
#include "host/dataset.h"
#include "models/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  const char *stage;      /* "teacher" or "distill": names progress lines and metrics */
  int epochs;
  float lr, lr_decay, weight_decay;
  float kd_beta, kd_temperature; /* used when a teacher is given */
  float lambda_ort;
  ist_augment augment;    /* of the training batches */
  int bn_recalib;         /* batches that re-estimate BN running statistics before each evaluation */
  uint64_t seed;
  int log_every;          /* steps between progress lines (0: none) */
  FILE *metrics;          /* JSON lines, one per epoch (may be NULL) */
  const char *checkpoint; /* written (atomically) after every epoch, may be NULL */
  /* Data parallelism: comm NULL or of size 1 is one process. Rank r trains on positions
   * [s·B·R + r·B, +B) of step s of the shared order; gradients are averaged over the ranks. */
  ist_comm *comm;
  int sync_bn;            /* BatchNorm statistics over every rank's batch (else per rank, as DDP) */
  /* The whole training state (parameters, RAdam moments and step, epoch, step, progress sums) is
   * written atomically to state_path every state_every steps (0: only after each epoch); with
   * resume, an existing state file is continued from (same flags required). */
  const char *state_path;
  int state_every, resume;
} ist_train_config;

typedef struct {
  float train_loss, train_acc, test_acc, seconds;
} ist_train_result;

/* Fails naming --data and --model when d's images or classes do not fit m. */
ist_status ist_check_data(const ist_model *m, const ist_dataset *d);

/* Trains m on train (teacher NULL: cross-entropy; else distillation from teacher), evaluating on
 * test after each epoch. */
ist_status ist_train(ist_model *m, ist_model *teacher, const ist_dataset *train, const ist_dataset *test,
                     const ist_train_config *cfg, ist_train_result *res);
/* Re-estimates the BatchNorm running statistics with the current weights: training-mode forward
 * passes over the first `batches` batches of d (no parameter changes). The statistics gathered
 * during an epoch lag behind weights that keep moving — under quantization they jump. */
ist_status ist_bn_recalibrate(ist_model *m, const ist_dataset *d, int batches);
/* Top-1 accuracy (0..1) and mean cross-entropy (loss may be NULL) of m on d, in eval mode. */
ist_status ist_evaluate(ist_model *m, const ist_dataset *d, float *acc, float *loss);
/* The same with the images split over comm's ranks (comm may be NULL). */
ist_status ist_evaluate_on(ist_model *m, const ist_dataset *d, ist_comm *comm, float *acc, float *loss);

/* Adds Σ over generated layers of the orthogonality penalty to m->ortho_sum (backend memory);
 * with scale > 0 also adds scale·∂L/∂θ. */
void ist_ortho_total(ist_model *m, float scale);

#ifdef __cplusplus
}
#endif
#endif
