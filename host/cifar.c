/* CIFAR-10 and CIFAR-100, binary version: records of label byte(s) + 3072 bytes (R, G, B planes
 * of 32×32), CIFAR-10 in data_batch_1..5.bin / test_batch.bin, CIFAR-100 in train.bin / test.bin
 * with a coarse and a fine label byte (the fine label is the class). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/checked.h"
#include "host/dataset.h"

#define CIFAR_SIDE 32
#define CIFAR_PIXELS (3 * CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR10_TRAIN_FILES 5
/* A CIFAR file is 30 MB; this bounds what a wrong --data can make us read. */
#define CIFAR_MAX_FILE_BYTES ((size_t)1 << 32)

/* Per-channel statistics of each training set (the values torchvision users normalize with). */
static const float CIFAR10_MEAN[3] = {0.4914f, 0.4822f, 0.4465f}, CIFAR10_STD[3] = {0.2470f, 0.2435f, 0.2616f};
static const float CIFAR100_MEAN[3] = {0.5071f, 0.4865f, 0.4409f}, CIFAR100_STD[3] = {0.2673f, 0.2564f, 0.2762f};

/* Appends the records of one file to out (images normalized with mean/std). */
static ist_status append_file(const char *path, int classes, int64_t limit, const float *mean, const float *std,
                              ist_dataset *out) {
  const int label_bytes = classes == 100 ? 2 : 1, rec = label_bytes + CIFAR_PIXELS;
  uint8_t *data;
  size_t size;
  ist_status rs = ist_read_file(path, CIFAR_MAX_FILE_BYTES, &data, &size);
  if (rs != IST_OK)
    return rs == IST_ERR_IO ? ist_fail(rs, "%s (is --data the CIFAR binary directory?)", ist_last_error()) : rs;
  ist_status st = IST_OK;
  if (size == 0 || size % (size_t)rec)
    st = ist_fail(IST_ERR_FORMAT, "%s: %zu bytes is not a whole number of %d-byte CIFAR-%d records (truncated?)",
                  path, size, rec, classes);
  int64_t n = (int64_t)(size / (size_t)rec);
  if (limit > 0 && out->n + n > limit) n = limit > out->n ? limit - out->n : 0;
  for (int64_t i = 0; st == IST_OK && i < n; i++) {
    const uint8_t label = data[i * rec + label_bytes - 1];
    if (label >= classes)
      st = ist_fail(IST_ERR_FORMAT, "%s: record %lld has label %d (classes are 0..%d)", path, (long long)i, label,
                    classes - 1);
  }
  if (st == IST_OK) {
    float *img = realloc(out->images, sizeof(float) * (size_t)(out->n + n) * CIFAR_PIXELS);
    if (img) out->images = img;
    int32_t *lab = realloc(out->labels, sizeof(int32_t) * (size_t)(out->n + n ? out->n + n : 1));
    if (lab) out->labels = lab;
    if (!img || !lab) st = ist_fail(IST_ERR_MEMORY, "%s: cannot allocate %lld images", path, (long long)(out->n + n));
  }
  for (int64_t i = 0; st == IST_OK && i < n; i++) {
    const uint8_t *r = data + i * rec;
    float *dst = out->images + (out->n + i) * CIFAR_PIXELS;
    for (int p = 0; p < CIFAR_PIXELS; p++) {
      const int c = p / (CIFAR_SIDE * CIFAR_SIDE);
      dst[p] = (r[label_bytes + p] / 255.0f - mean[c]) / std[c];
    }
    out->labels[out->n + i] = r[label_bytes - 1];
  }
  if (st == IST_OK) out->n += n;
  free(data);
  return st;
}

ist_status ist_cifar_load(const char *dir, int classes, const char *split, int64_t limit, ist_dataset *out) {
  memset(out, 0, sizeof *out);
  if (classes != 10 && classes != 100) return ist_fail(IST_ERR_ARG, "CIFAR: %d classes (10 or 100)", classes);
  const int train = !strcmp(split, "train");
  if (!train && strcmp(split, "test")) return ist_fail(IST_ERR_ARG, "CIFAR: split '%s' (train or test)", split);
  const float *mean = classes == 10 ? CIFAR10_MEAN : CIFAR100_MEAN, *std = classes == 10 ? CIFAR10_STD : CIFAR100_STD;
  out->c = 3;
  out->h = out->w = CIFAR_SIDE;
  out->classes = classes;
  for (int c = 0; c < 3; c++) out->mean[c] = mean[c], out->std[c] = std[c];
  ist_status st = IST_OK;
  char path[4096];
  if (classes == 100) {
    snprintf(path, sizeof path, "%s/%s.bin", dir, split);
    st = append_file(path, classes, limit, mean, std, out);
  } else if (!train) {
    snprintf(path, sizeof path, "%s/test_batch.bin", dir);
    st = append_file(path, classes, limit, mean, std, out);
  } else {
    for (int i = 1; st == IST_OK && i <= CIFAR10_TRAIN_FILES && (limit <= 0 || out->n < limit); i++) {
      snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, i);
      st = append_file(path, classes, limit, mean, std, out);
    }
  }
  if (st != IST_OK) ist_dataset_free(out);
  return st;
}
