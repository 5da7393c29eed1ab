/* The SSD multibox loss and the detection distillation loss (CPU reference). The lead wires them
 * into the op table (kernels/backend.h); until then they are plain functions. */
#ifndef IST_MULTIBOX_LOSS_H
#define IST_MULTIBOX_LOSS_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Hard negatives per positive (torchvision's SSD neg_to_pos_ratio). */
#define IST_SSD_NEG_POS_RATIO 3
/* Weight of the ℓ2 term between student and teacher box regressions in the detection KD loss. */
#define IST_DETECT_KD_BOX_WEIGHT 1.0f

/* Scratch of the losses: per-anchor cross-entropies and a sort buffer. */
typedef struct {
  float *ce;      /* n × anchors */
  int32_t *order; /* anchors */
} ist_multibox_scratch;

/* torchvision's SSD loss over a batch of n images with `anchors` anchors each:
 *   L = (Σ_pos smoothL1_β=1(box − offsets) + Σ_{pos ∪ mined} CE(logits, label)) / max(1, #pos),
 * positives being anchors with label > 0 (labels: n × anchors, 0 = background), the mined ones per
 * image the min(ratio·#pos_i, #neg_i) background anchors of largest CE (ties: lower anchor
 * first); logits n × anchors × classes, box and offsets n × anchors × 4. Writes selected (n ×
 * anchors: 1 for positives and mined anchors, else 0), parts[0] the box term and parts[1] the
 * class term (both divided by max(1, #pos)), and the gradients (NULL: skipped; the mining is held
 * fixed, as torchvision). Returns L. */
float ist_cpu_multibox_loss(int n, int anchors, int classes, const float *logits, const float *box,
                            const int32_t *labels, const float *offsets, int ratio, ist_multibox_scratch *scratch,
                            int32_t *selected, float *parts, float *dlogits, float *dbox);

/* The detection distillation loss (docs/METHOD.md, "Detection distillation"):
 *   L = (1 − β)·L_multibox + β·[T²·Σ_{pos ∪ mined} KL(q_T ‖ p_T) + λ·½·Σ_pos ‖box_s − box_t‖²] / max(1, #pos)
 * with q_T, p_T the teacher's and student's softmax at temperature T over the classes of an anchor,
 * the mined anchors those of the student's multibox loss, λ = box_weight. parts: [box, class,
 * KD class, KD box] (each already divided by max(1, #pos), before the β weights). Gradients with
 * respect to the student's logits and boxes (NULL: skipped). */
float ist_cpu_detect_kd_loss(int n, int anchors, int classes, const float *logits, const float *box,
                             const float *teacher_logits, const float *teacher_box, const int32_t *labels,
                             const float *offsets, int ratio, float beta, float temperature, float box_weight,
                             ist_multibox_scratch *scratch, int32_t *selected, float *parts, float *dlogits,
                             float *dbox);

#ifdef __cplusplus
}
#endif
#endif
