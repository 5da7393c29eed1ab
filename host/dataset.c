/* FashionMNIST loading (IDX, gzip), batch assembly and augmentation. */
#include "host/dataset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/idx.h"

/* Per-pixel statistics of the FashionMNIST training images. */
#define FMNIST_MEAN 0.2860f
#define FMNIST_STD 0.3530f

ist_status ist_fashion_mnist_load(const char *dir, const char *split, int64_t limit, ist_dataset *out) {
  memset(out, 0, sizeof *out);
  char ipath[4096], lpath[4096];
  snprintf(ipath, sizeof ipath, "%s/%s-images-idx3-ubyte.gz", dir, split);
  snprintf(lpath, sizeof lpath, "%s/%s-labels-idx1-ubyte.gz", dir, split);
  int64_t idims[3], ldims[1];
  uint8_t *img = NULL, *lab = NULL;
  IST_TRY(ist_idx_read_u8(ipath, 3, idims, &img));
  ist_status st = ist_idx_read_u8(lpath, 1, ldims, &lab);
  if (st == IST_OK && ldims[0] != idims[0])
    st = ist_fail(IST_ERR_FORMAT, "%s: %lld labels for %lld images in %s", lpath, (long long)ldims[0],
                  (long long)idims[0], ipath);
  if (st == IST_OK && (idims[1] != 28 || idims[2] != 28))
    st = ist_fail(IST_ERR_FORMAT, "%s: images are %lldx%lld, FashionMNIST's are 28x28", ipath, (long long)idims[1],
                  (long long)idims[2]);
  for (int64_t i = 0; st == IST_OK && i < ldims[0]; i++)
    if (lab[i] > 9) st = ist_fail(IST_ERR_FORMAT, "%s: label %lld is %d (classes are 0..9)", lpath, (long long)i, lab[i]);
  if (st == IST_OK) {
    int64_t n = limit > 0 && limit < idims[0] ? limit : idims[0];
    out->n = n;
    out->c = 1;
    out->h = out->w = 28;
    out->classes = 10;
    out->black[0] = -FMNIST_MEAN / FMNIST_STD;
    out->images = malloc(sizeof(float) * (size_t)n * 784);
    out->labels = malloc(sizeof(int32_t) * (size_t)n);
    if (!out->images || !out->labels) {
      st = ist_fail(IST_ERR_MEMORY, "%s: cannot allocate %lld images", ipath, (long long)n);
    } else {
      for (int64_t i = 0; i < n * 784; i++) out->images[i] = (img[i] / 255.0f - FMNIST_MEAN) / FMNIST_STD;
      for (int64_t i = 0; i < n; i++) out->labels[i] = lab[i];
    }
  }
  free(img);
  free(lab);
  if (st != IST_OK) ist_dataset_free(out);
  return st;
}

void ist_dataset_free(ist_dataset *d) {
  free(d->images);
  free(d->labels);
  memset(d, 0, sizeof *d);
}

void ist_dataset_batch(const ist_dataset *d, const int32_t *order, int64_t start, int n, float *x, int32_t *y,
                       const ist_augment *aug, ist_rng *rng) {
  const int64_t plane = (int64_t)d->h * d->w, sz = d->c * plane;
  for (int i = 0; i < n; i++) {
    int64_t idx = order ? order[start + i] : start + i;
    const float *src = d->images + idx * sz;
    float *dst = x + i * sz;
    y[i] = d->labels[idx];
    const int flip = aug && aug->flip && (ist_rng_u32(rng) & 1u);
    int dy = 0, dx = 0; /* the crop's offset from the unpadded image, in [−pad, pad] */
    if (aug && aug->crop_pad > 0) {
      const uint32_t span = 2u * (uint32_t)aug->crop_pad + 1u;
      dy = (int)(ist_rng_u32(rng) % span) - aug->crop_pad;
      dx = (int)(ist_rng_u32(rng) % span) - aug->crop_pad;
    }
    if (!flip && !dy && !dx) {
      memcpy(dst, src, sizeof(float) * sz);
      continue;
    }
    for (int c = 0; c < d->c; c++)
      for (int r = 0; r < d->h; r++)
        for (int col = 0; col < d->w; col++) {
          /* Output pixel (r, col) shows padded-image pixel (r + dy, col + dx) of the (flipped) image. */
          const int sr = r + dy, sc = col + dx;
          const int inside = sr >= 0 && sr < d->h && sc >= 0 && sc < d->w;
          dst[c * plane + r * d->w + col] =
              inside ? src[c * plane + sr * d->w + (flip ? d->w - 1 - sc : sc)] : d->black[c];
        }
  }
}
