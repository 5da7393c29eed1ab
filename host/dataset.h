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
} ist_dataset;

#define IST_FMNIST_DIR "/usr/share/datasets/fashion-mnist"

/* Loads the FashionMNIST split ("train" or "t10k") from dir; limit > 0 keeps the first limit images. */
ist_status ist_fashion_mnist_load(const char *dir, const char *split, int64_t limit, ist_dataset *out);
void ist_dataset_free(ist_dataset *d);

/* Copies batch [start, start+n) of the order into x and y (order NULL: identity). With flip, each
 * image is mirrored left-right with probability ½ drawn from rng. */
void ist_dataset_batch(const ist_dataset *d, const int32_t *order, int64_t start, int n, float *x, int32_t *y,
                       ist_rng *flip_rng);

#ifdef __cplusplus
}
#endif
#endif
