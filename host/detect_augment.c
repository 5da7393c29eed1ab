/* Detection augmentation: photometric distortion, zoom-out, SSD's IoU crop, flip, resize. */
#include "host/detect_augment.h"

#include <math.h>
#include <string.h>

/* torchvision's detection reference values for SSD. */
#define BRIGHTNESS_LO 0.875f
#define BRIGHTNESS_HI 1.125f
#define CONTRAST_LO 0.5f
#define CONTRAST_HI 1.5f
#define SATURATION_LO 0.5f
#define SATURATION_HI 1.5f
#define HUE_SHIFT 0.05f /* of the hue circle */
#define CROP_MIN_SCALE 0.3f
#define CROP_MAX_SCALE 1.0f
#define CROP_MIN_ASPECT 0.5f
#define CROP_MAX_ASPECT 2.0f
#define CROP_TRIALS 40
/* torchvision draws minimum IoUs until a crop is found; bounded here (then no crop). */
#define CROP_DRAWS 50

ist_det_augment ist_det_augment_defaults(void) {
  ist_det_augment a = {1, 4.0f, {0.485f, 0.456f, 0.406f}, 1, 1};
  return a;
}

void ist_det_boxes_from_voc(int n, const ist_voc_object *o, float *boxes, int32_t *labels) {
  for (int i = 0; i < n; i++) {
    boxes[4 * i + 0] = o[i].box[0] - 1;
    boxes[4 * i + 1] = o[i].box[1] - 1;
    boxes[4 * i + 2] = o[i].box[2];
    boxes[4 * i + 3] = o[i].box[3];
    labels[i] = o[i].label + 1; /* detector classes: 0 is the background */
  }
}

static float uniform(ist_rng *r, float lo, float hi) { return lo + (hi - lo) * ist_rng_uniform(r); }
static float clamp01(float v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

/* ITU-R 601 luma, as torchvision's rgb_to_grayscale. */
static float luma(const float *img, int64_t hw, int64_t p, int c) {
  return c >= 3 ? 0.299f * img[p] + 0.587f * img[hw + p] + 0.114f * img[2 * hw + p] : img[p];
}

static void contrast(int c, int64_t hw, float *img, float f) {
  double mean = 0;
  for (int64_t p = 0; p < hw; p++) mean += luma(img, hw, p, c);
  mean /= (double)hw;
  for (int64_t i = 0; i < c * hw; i++) img[i] = clamp01(f * img[i] + (1 - f) * (float)mean);
}

void ist_det_adjust_hue(int64_t hw, float *img, float f) {
  for (int64_t p = 0; p < hw; p++) {
    float r = img[p], g = img[hw + p], b = img[2 * hw + p];
    float mx = fmaxf(r, fmaxf(g, b)), mn = fminf(r, fminf(g, b)), d = mx - mn;
    if (d <= 0) continue; /* grey: no hue */
    float hh = mx == r ? (g - b) / d : mx == g ? 2 + (b - r) / d : 4 + (r - g) / d;
    hh = hh / 6 + f;
    hh -= floorf(hh);
    float s = d / mx, v = mx, x = hh * 6;
    int k = (int)x % 6;
    float fr = x - floorf(x), pp = v * (1 - s), q = v * (1 - s * fr), t = v * (1 - s * (1 - fr));
    float out[6][3] = {{v, t, pp}, {q, v, pp}, {pp, v, t}, {pp, q, v}, {t, pp, v}, {v, pp, q}};
    img[p] = out[k][0], img[hw + p] = out[k][1], img[2 * hw + p] = out[k][2];
  }
}

void ist_det_photometric(int c, int h, int w, float *img, ist_rng *rng) {
  int64_t hw = (int64_t)h * w;
  if (ist_rng_uniform(rng) < 0.5f) {
    float f = uniform(rng, BRIGHTNESS_LO, BRIGHTNESS_HI);
    for (int64_t i = 0; i < c * hw; i++) img[i] = clamp01(f * img[i]);
  }
  int contrast_first = ist_rng_uniform(rng) < 0.5f;
  if (contrast_first && ist_rng_uniform(rng) < 0.5f) contrast(c, hw, img, uniform(rng, CONTRAST_LO, CONTRAST_HI));
  if (c >= 3 && ist_rng_uniform(rng) < 0.5f) {
    float f = uniform(rng, SATURATION_LO, SATURATION_HI);
    for (int64_t p = 0; p < hw; p++) {
      float g = luma(img, hw, p, c);
      for (int k = 0; k < 3; k++) img[k * hw + p] = clamp01(f * img[k * hw + p] + (1 - f) * g);
    }
  }
  if (c >= 3 && ist_rng_uniform(rng) < 0.5f) ist_det_adjust_hue(hw, img, uniform(rng, -HUE_SHIFT, HUE_SHIFT));
  if (!contrast_first && ist_rng_uniform(rng) < 0.5f) contrast(c, hw, img, uniform(rng, CONTRAST_LO, CONTRAST_HI));
  if (c >= 3 && ist_rng_uniform(rng) < 0.5f) { /* a random permutation of the colour channels */
    int perm[3] = {0, 1, 2};
    for (int k = 2; k > 0; k--) {
      int j = (int)ist_rng_below(rng, (uint32_t)k + 1), t = perm[k];
      perm[k] = perm[j], perm[j] = t;
    }
    for (int64_t p = 0; p < hw; p++) {
      float v[3] = {img[p], img[hw + p], img[2 * hw + p]};
      for (int k = 0; k < 3; k++) img[k * hw + p] = v[perm[k]];
    }
  }
}

void ist_det_zoom_out(int c, int h, int w, const float *src, int oh, int ow, int top, int left, const float *fill,
                      float *dst, int n, float *boxes) {
  for (int k = 0; k < c; k++) {
    float *d = dst + (int64_t)k * oh * ow;
    for (int64_t p = 0; p < (int64_t)oh * ow; p++) d[p] = fill[k < 3 ? k : 2];
    for (int y = 0; y < h; y++)
      memcpy(d + (int64_t)(y + top) * ow + left, src + ((int64_t)k * h + y) * w, (size_t)w * sizeof(float));
  }
  for (int i = 0; i < n; i++) {
    boxes[4 * i + 0] += left, boxes[4 * i + 2] += left;
    boxes[4 * i + 1] += top, boxes[4 * i + 3] += top;
  }
}

static float iou(const float *a, const float *b) {
  float iw = fminf(a[2], b[2]) - fmaxf(a[0], b[0]), ih = fminf(a[3], b[3]) - fmaxf(a[1], b[1]);
  if (iw <= 0 || ih <= 0) return 0;
  float inter = iw * ih;
  return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
}

int ist_det_iou_crop_window(int h, int w, int n, const float *boxes, ist_rng *rng, int *top, int *left, int *ch,
                            int *cw, uint8_t *keep) {
  static const float options[7] = {0.0f, 0.1f, 0.3f, 0.5f, 0.7f, 0.9f, 1.0f};
  for (int draw = 0; draw < CROP_DRAWS; draw++) {
    float min_iou = options[ist_rng_below(rng, 7)];
    if (min_iou >= 1.0f) return 0;
    for (int t = 0; t < CROP_TRIALS; t++) {
      int nw = (int)(w * uniform(rng, CROP_MIN_SCALE, CROP_MAX_SCALE));
      int nh = (int)(h * uniform(rng, CROP_MIN_SCALE, CROP_MAX_SCALE));
      if (nw < 1 || nh < 1) continue;
      float aspect = (float)nw / nh;
      if (aspect < CROP_MIN_ASPECT || aspect > CROP_MAX_ASPECT) continue;
      int l = (int)((w - nw) * ist_rng_uniform(rng)), tp = (int)((h - nh) * ist_rng_uniform(rng));
      float win[4] = {(float)l, (float)tp, (float)(l + nw), (float)(tp + nh)};
      int any = 0;
      float best = 0;
      for (int i = 0; i < n; i++) {
        const float *b = boxes + 4 * i;
        float cx = 0.5f * (b[0] + b[2]), cy = 0.5f * (b[1] + b[3]);
        keep[i] = win[0] < cx && cx < win[2] && win[1] < cy && cy < win[3];
        if (keep[i]) {
          any = 1;
          float v = iou(b, win);
          best = v > best ? v : best;
        }
      }
      if (!any || best < min_iou) continue;
      *top = tp, *left = l, *ch = nh, *cw = nw;
      return 1;
    }
  }
  return 0;
}

void ist_det_flip(int c, int h, int w, float *img, int n, float *boxes) {
  for (int64_t row = 0; row < (int64_t)c * h; row++) {
    float *r = img + row * w;
    for (int x = 0; x < w / 2; x++) {
      float t = r[x];
      r[x] = r[w - 1 - x];
      r[w - 1 - x] = t;
    }
  }
  for (int i = 0; i < n; i++) {
    float x0 = boxes[4 * i], x1 = boxes[4 * i + 2];
    boxes[4 * i] = (float)w - x1;
    boxes[4 * i + 2] = (float)w - x0;
  }
}

void ist_det_resize(int c, int h, int w, const float *src, int oh, int ow, float *dst) {
  float sy = (float)h / oh, sx = (float)w / ow;
  for (int y = 0; y < oh; y++) {
    float fy = fmaxf((y + 0.5f) * sy - 0.5f, 0.0f);
    int y0 = (int)fy, y1 = y0 + 1 < h ? y0 + 1 : h - 1;
    float wy = fy - y0;
    for (int x = 0; x < ow; x++) {
      float fx = fmaxf((x + 0.5f) * sx - 0.5f, 0.0f);
      int x0 = (int)fx, x1 = x0 + 1 < w ? x0 + 1 : w - 1;
      float wx = fx - x0;
      for (int k = 0; k < c; k++) {
        const float *s = src + (int64_t)k * h * w;
        float top = s[(int64_t)y0 * w + x0] * (1 - wx) + s[(int64_t)y0 * w + x1] * wx;
        float bot = s[(int64_t)y1 * w + x0] * (1 - wx) + s[(int64_t)y1 * w + x1] * wx;
        dst[((int64_t)k * oh + y) * ow + x] = top * (1 - wy) + bot * wy;
      }
    }
  }
}

int64_t ist_det_augment_scratch(const ist_det_augment *a, int c, int h, int w) {
  float z = a && a->zoom_out_max > 1 ? a->zoom_out_max : 1;
  int64_t canvas = (int64_t)c * (int64_t)ceilf(h * z) * (int64_t)ceilf(w * z);
  return 2 * canvas;
}

void ist_det_augment_image(const ist_det_augment *a, int c, int h, int w, const float *src, int n,
                           const float *boxes, const int32_t *labels, int size, float *dst, float *boxes_out,
                           int32_t *labels_out, int *n_out, float *scratch, ist_rng *rng) {
  int64_t half = ist_det_augment_scratch(a, c, h, w) / 2;
  float *cur = scratch, *other = scratch + half;
  memcpy(cur, src, (size_t)c * h * w * sizeof(float));
  memcpy(boxes_out, boxes, (size_t)n * 4 * sizeof(float));
  memcpy(labels_out, labels, (size_t)n * sizeof(int32_t));
  if (a && a->photometric) ist_det_photometric(c, h, w, cur, rng);
  if (a && a->zoom_out_max > 1 && ist_rng_uniform(rng) < 0.5f) {
    float r = uniform(rng, 1.0f, a->zoom_out_max);
    int oh = (int)(h * r), ow = (int)(w * r);
    int top = (int)((oh - h) * ist_rng_uniform(rng)), left = (int)((ow - w) * ist_rng_uniform(rng));
    ist_det_zoom_out(c, h, w, cur, oh, ow, top, left, a->fill, other, n, boxes_out);
    float *t = cur;
    cur = other, other = t, h = oh, w = ow;
  }
  if (a && a->iou_crop && n > 0) {
    uint8_t keep[n];
    int top, left, ch, cw;
    if (ist_det_iou_crop_window(h, w, n, boxes_out, rng, &top, &left, &ch, &cw, keep)) {
      for (int k = 0; k < c; k++)
        for (int y = 0; y < ch; y++)
          memcpy(other + ((int64_t)k * ch + y) * cw, cur + ((int64_t)k * h + y + top) * w + left,
                 (size_t)cw * sizeof(float));
      int m = 0;
      for (int i = 0; i < n; i++) {
        if (!keep[i]) continue;
        float *b = boxes_out + 4 * m;
        memmove(b, boxes_out + 4 * i, 4 * sizeof(float));
        b[0] = fminf(fmaxf(b[0] - left, 0.0f), (float)cw), b[2] = fminf(fmaxf(b[2] - left, 0.0f), (float)cw);
        b[1] = fminf(fmaxf(b[1] - top, 0.0f), (float)ch), b[3] = fminf(fmaxf(b[3] - top, 0.0f), (float)ch);
        labels_out[m++] = labels_out[i];
      }
      n = m;
      float *t = cur;
      cur = other, other = t, h = ch, w = cw;
    }
  }
  if (a && a->flip && ist_rng_uniform(rng) < 0.5f) ist_det_flip(c, h, w, cur, n, boxes_out);
  ist_det_resize(c, h, w, cur, size, size, dst);
  float sx = (float)size / w, sy = (float)size / h;
  for (int i = 0; i < n; i++) {
    boxes_out[4 * i + 0] *= sx, boxes_out[4 * i + 2] *= sx;
    boxes_out[4 * i + 1] *= sy, boxes_out[4 * i + 3] *= sy;
  }
  *n_out = n;
}
