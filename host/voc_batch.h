/* Detection training batches from a VOC set: JPEG decoding on worker threads, the detection
 * augmentation, normalization, and the per-anchor targets (labels and encoded offsets). */
#ifndef IST_VOC_BATCH_H
#define IST_VOC_BATCH_H
#include <stdint.h>

#include "host/detect_augment.h"
#include "host/status.h"
#include "host/voc.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int size;               /* network input side (SSDLite: 320; the anchors' image size) */
  int threads;            /* decoding threads (≥ 1) */
  float mean[3], std[3];  /* inputs are (pixel in [0, 1] − mean) / std per channel */
  int keep_difficult;     /* train on difficult objects too [0, as ssd.pytorch] */
  int n_anchors;
  const float *anchors;   /* n_anchors × 4, pixels of the size × size input */
} ist_voc_batch_options;

/* Fills batch [start, start + n) of order (NULL: identity) into x (n × 3 × size × size), labels
 * (n × n_anchors; 0 = background, VOC class k → k + 1) and offsets (n × n_anchors × 4), and
 * positives (n, may be NULL) with each image's matched anchors. The image at order position p is
 * augmented (aug NULL: only resized) with ist_rng_for(seed, p). Fails on an unreadable or corrupt
 * JPEG, or one whose size differs from its annotation's (the message names the file). */
ist_status ist_voc_batch(const ist_voc_set *set, const ist_voc_batch_options *o, const int32_t *order, int64_t start,
                         int n, const ist_det_augment *aug, uint64_t seed, float *x, int32_t *labels, float *offsets,
                         int32_t *positives);

#ifdef __cplusplus
}
#endif
#endif
