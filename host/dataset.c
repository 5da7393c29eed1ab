/* FashionMNIST loading (IDX, gzip), batch assembly and augmentation. */
#include "host/dataset.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/idx.h"

/* Per-pixel statistics of the FashionMNIST training images. */
#define FMNIST_MEAN 0.2860f
#define FMNIST_STD 0.3530f

const char *ist_fashion_mnist_dir(void) {
  const char *env = getenv(IST_FMNIST_DIR_ENV);
  return env && *env ? env : IST_FMNIST_DIR;
}

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
    out->mean[0] = FMNIST_MEAN;
    out->std[0] = FMNIST_STD;
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
  if (d->files) ist_image_files_free(d->files);
  free(d->images);
  free(d->labels);
  memset(d, 0, sizeof *d);
}

void ist_rrc_box(int h, int w, float min_scale, ist_rng *rng, int *by, int *bx, int *bh, int *bw) {
  *bh = h, *bw = w, *by = 0, *bx = 0;
  for (int attempt = 0; attempt < 10; attempt++) {
    const double area = (double)h * w * (min_scale + (1.0 - min_scale) * ist_rng_uniform(rng));
    const double ratio = exp(log(3.0 / 4.0) + (log(4.0 / 3.0) - log(3.0 / 4.0)) * ist_rng_uniform(rng));
    const int cw = (int)lround(sqrt(area * ratio)), ch = (int)lround(sqrt(area / ratio));
    if (cw >= 1 && ch >= 1 && cw <= w && ch <= h) {
      *bh = ch, *bw = cw;
      *by = (int)(ist_rng_u32(rng) % (uint32_t)(h - ch + 1));
      *bx = (int)(ist_rng_u32(rng) % (uint32_t)(w - cw + 1));
      return;
    }
  }
}

/* Random-resized crop of one image (c × h × w) into dst, the same size, bilinear resampling. */
static void random_resized_crop(const ist_dataset *d, const float *src, float *dst, float min_scale, ist_rng *rng) {
  const int h = d->h, w = d->w;
  int by, bx, bh, bw;
  ist_rrc_box(h, w, min_scale, rng, &by, &bx, &bh, &bw);
  const int64_t plane = (int64_t)h * w;
  for (int y = 0; y < h; y++) {
    /* Pixel centres of the output mapped into the box (align_corners = false). */
    const float sy = fminf(fmaxf(by + ((float)y + 0.5f) * bh / h - 0.5f, 0.0f), (float)(h - 1));
    const int y0 = (int)sy, y1 = y0 + 1 < h ? y0 + 1 : y0;
    const float fy = sy - (float)y0;
    for (int x = 0; x < w; x++) {
      const float sx = fminf(fmaxf(bx + ((float)x + 0.5f) * bw / w - 0.5f, 0.0f), (float)(w - 1));
      const int x0 = (int)sx, x1 = x0 + 1 < w ? x0 + 1 : x0;
      const float fx = sx - (float)x0;
      for (int c = 0; c < d->c; c++) {
        const float *p = src + c * plane;
        dst[c * plane + (int64_t)y * w + x] = (1 - fy) * ((1 - fx) * p[y0 * w + x0] + fx * p[y0 * w + x1]) +
                                              fy * ((1 - fx) * p[y1 * w + x0] + fx * p[y1 * w + x1]);
      }
    }
  }
}

/* Brightness, contrast, then saturation (a fixed order), on the pixel values in [0, 1]. */
static void color_jitter(const ist_dataset *d, float *img, float j, ist_rng *rng) {
  const int64_t plane = (int64_t)d->h * d->w, n = d->c * plane;
  const float bright = 1 + j * (2 * ist_rng_uniform(rng) - 1), contrast = 1 + j * (2 * ist_rng_uniform(rng) - 1),
              sat = 1 + j * (2 * ist_rng_uniform(rng) - 1);
  for (int c = 0; c < d->c; c++)
    for (int64_t i = 0; i < plane; i++) img[c * plane + i] = img[c * plane + i] * d->std[c] + d->mean[c];
  /* Grey level of a pixel (ITU-R 601 luma for RGB). */
  const float lw[3] = {0.299f, 0.587f, 0.114f};
  double mean_grey = 0;
  for (int64_t i = 0; i < n; i++) img[i] = fminf(fmaxf(img[i] * bright, 0.0f), 1.0f);
  for (int64_t i = 0; i < plane; i++) {
    float g = 0;
    for (int c = 0; c < d->c; c++) g += (d->c == 3 ? lw[c] : 1.0f) * img[c * plane + i];
    mean_grey += g;
  }
  mean_grey /= (double)plane;
  for (int64_t i = 0; i < n; i++) img[i] = fminf(fmaxf((float)((img[i] - mean_grey) * contrast + mean_grey), 0.0f), 1.0f);
  if (d->c == 3)
    for (int64_t i = 0; i < plane; i++) {
      const float g = lw[0] * img[i] + lw[1] * img[plane + i] + lw[2] * img[2 * plane + i];
      for (int c = 0; c < 3; c++) img[c * plane + i] = fminf(fmaxf(g + (img[c * plane + i] - g) * sat, 0.0f), 1.0f);
    }
  for (int c = 0; c < d->c; c++)
    for (int64_t i = 0; i < plane; i++) img[c * plane + i] = (img[c * plane + i] - d->mean[c]) / d->std[c];
}

void ist_augment_image(const ist_dataset *d, const float *src, float *dst, const ist_augment *aug, ist_rng *rng) {
  const int64_t plane = (int64_t)d->h * d->w, sz = d->c * plane;
  if (aug && aug->rrc_min_scale > 0) {
    random_resized_crop(d, src, dst, aug->rrc_min_scale, rng);
    if (aug->flip && (ist_rng_u32(rng) & 1u))
      for (int64_t r = 0; r < (int64_t)d->c * d->h; r++)
        for (int col = 0; col < d->w / 2; col++) {
          float t = dst[r * d->w + col];
          dst[r * d->w + col] = dst[r * d->w + d->w - 1 - col];
          dst[r * d->w + d->w - 1 - col] = t;
        }
  } else {
    const int flip = aug && aug->flip && (ist_rng_u32(rng) & 1u);
    int dy = 0, dx = 0; /* the crop's offset from the unpadded image, in [−pad, pad] */
    if (aug && aug->crop_pad > 0) {
      const uint32_t span = 2u * (uint32_t)aug->crop_pad + 1u;
      dy = (int)(ist_rng_u32(rng) % span) - aug->crop_pad;
      dx = (int)(ist_rng_u32(rng) % span) - aug->crop_pad;
    }
    if (!flip && !dy && !dx) {
      memcpy(dst, src, sizeof(float) * sz);
    } else {
      for (int c = 0; c < d->c; c++)
        for (int r = 0; r < d->h; r++)
          for (int col = 0; col < d->w; col++) {
            /* Output pixel (r, col) shows padded-image pixel (r + dy, col + dx) of the (flipped) image. */
            const int sr = r + dy, sc = col + dx;
            const int inside = sr >= 0 && sr < d->h && sc >= 0 && sc < d->w;
            dst[c * plane + r * d->w + col] =
                inside ? src[c * plane + sr * d->w + (flip ? d->w - 1 - sc : sc)] : -d->mean[c] / d->std[c];
          }
    }
  }
  if (aug && aug->jitter > 0) color_jitter(d, dst, aug->jitter, rng);
}

ist_status ist_dataset_batch(const ist_dataset *d, const int32_t *order, int64_t start, int n, float *x, int32_t *y,
                             const ist_augment *aug, uint64_t seed) {
  if (d->files) return ist_image_files_batch(d, order, start, n, x, y, aug, seed);
  const int64_t sz = (int64_t)d->c * d->h * d->w;
  for (int i = 0; i < n; i++) {
    const int64_t idx = order ? order[start + i] : start + i;
    ist_rng rng;
    ist_rng_for(&rng, seed, (uint64_t)(start + i));
    y[i] = d->labels[idx];
    ist_augment_image(d, d->images + idx * sz, x + i * sz, aug, &rng);
  }
  return IST_OK;
}
