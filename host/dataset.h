/* In-memory image classification data sets and the batch order over them. */
#ifndef IST_DATASET_H
#define IST_DATASET_H
#include <stdint.h>

#include "host/rng.h"
#include "host/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int64_t n;
  int c, h, w, classes;
  float *images; /* n × c × h × w, normalized */
  int32_t *labels;
  float mean[4], std[4]; /* per channel: images hold (pixel in [0, 1] − mean) / std */
} ist_dataset;

/* Training-time augmentation (SPEC §4). */
typedef struct {
  int flip;            /* mirror left-right with probability ½ */
  int crop_pad;        /* > 0: pad by this many black pixels on each side, then crop back at a random offset */
  float rrc_min_scale; /* > 0: random-resized crop instead (area ∈ [this, 1] of the image, aspect ratio
                        * ∈ [3/4, 4/3] log-uniform, bilinear back to the image size) */
  float jitter;        /* > 0: brightness, contrast, saturation each scaled by a factor ∈ [1 − j, 1 + j] */
} ist_augment;

#define IST_FMNIST_DIR "/usr/share/datasets/fashion-mnist"

/* Loads the FashionMNIST split ("train" or "t10k") from dir; limit > 0 keeps the first limit images. */
ist_status ist_fashion_mnist_load(const char *dir, const char *split, int64_t limit, ist_dataset *out);
/* CIFAR-10 (classes 10: data_batch_1..5.bin, test_batch.bin) or CIFAR-100 (classes 100: train.bin,
 * test.bin), binary version, from dir; split "train" or "test"; limit > 0 keeps the first limit. */
ist_status ist_cifar_load(const char *dir, int classes, const char *split, int64_t limit, ist_dataset *out);
/* SVHN (cropped digits): dir/<split>_32x32.mat (split "train", "test" or "extra"), MATLAB files
 * with X (32 × 32 × 3 × n, uint8) and y (n labels 1..10, 10 meaning the digit 0). */
ist_status ist_svhn_load(const char *dir, const char *split, int64_t limit, ist_dataset *out);
void ist_dataset_free(ist_dataset *d);

/* Copies batch [start, start+n) of the order into x and y (order NULL: identity), augmented by
 * aug (NULL: not) with draws from rng: per image, the flip, then the crop offsets. */
void ist_dataset_batch(const ist_dataset *d, const int32_t *order, int64_t start, int n, float *x, int32_t *y,
                       const ist_augment *aug, ist_rng *rng);

#ifdef __cplusplus
}
#endif
#endif
