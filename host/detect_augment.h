/* Detection augmentation (torchvision's detection reference recipe for SSD): photometric
 * distortion, zoom-out, IoU-constrained random crop, horizontal flip and the resize to the network's
 * input, on one c × h × w float image (pixel values in [0, 1]) and its boxes. Boxes here are
 * continuous pixel coordinates (x0, y0, x1, y1): a VOC box (xmin, ymin, xmax, ymax) (1-based,
 * inclusive) is (xmin − 1, ymin − 1, xmax, ymax). */
#ifndef IST_DETECT_AUGMENT_H
#define IST_DETECT_AUGMENT_H
#include <stdint.h>

#include "host/rng.h"
#include "host/status.h"
#include "host/voc.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int photometric;      /* torchvision's RandomPhotometricDistort: brightness ×[0.875, 1.125],
                         * contrast and saturation ×[0.5, 1.5], hue ±0.05, each with probability ½,
                         * contrast before or after saturation and hue at random, then the colour
                         * channels permuted at random with probability ½ */
  float zoom_out_max;   /* > 1: with probability ½, place the image on a canvas r ∈ [1, this] times
                         * larger (each side), filled with fill [4 = torchvision's] */
  float fill[3];        /* zoom-out canvas colour [ImageNet's mean: 0.485, 0.456, 0.406] */
  int iou_crop;         /* SSD's crop: minimum IoU ∈ {0, 0.1, 0.3, 0.5, 0.7, 0.9, none} drawn at
                         * random, sides ∈ [0.3, 1] of the image, aspect ∈ [½, 2], objects kept when
                         * their centre is inside, 40 tries per drawn IoU */
  int flip;             /* mirror left-right with probability ½ */
} ist_det_augment;

ist_det_augment ist_det_augment_defaults(void);

/* VOC's inclusive 1-based boxes → continuous pixel boxes, for n objects. */
void ist_det_boxes_from_voc(int n, const ist_voc_object *objects, float *boxes, int32_t *labels);

/* Floats of scratch ist_det_augment_image needs for a c × h × w source. */
int64_t ist_det_augment_scratch(const ist_det_augment *a, int c, int h, int w);

/* Augments (a NULL: only the resize) src (c × h × w) with its n boxes and labels into dst (c ×
 * size × size, bilinear, half-pixel centres), writing the surviving boxes (scaled to size) and
 * their labels and their count n_out (≤ n). scratch: ist_det_augment_scratch floats. */
void ist_det_augment_image(const ist_det_augment *a, int c, int h, int w, const float *src, int n,
                           const float *boxes, const int32_t *labels, int size, float *dst, float *boxes_out,
                           int32_t *labels_out, int *n_out, float *scratch, ist_rng *rng);

/* The pieces, each on an image and its boxes (in place where the size does not change). */
void ist_det_photometric(int c, int h, int w, float *img, ist_rng *rng);
/* Rotates the hue of every pixel of a 3 × hw image by f (a fraction of the circle) through HSV,
 * as torchvision's adjust_hue. */
void ist_det_adjust_hue(int64_t hw, float *img, float f);
/* Zoom-out by r ≥ 1 at offset (left, top) of the (h·r) × (w·r) canvas dst; boxes shifted in place. */
void ist_det_zoom_out(int c, int h, int w, const float *src, int oh, int ow, int top, int left, const float *fill,
                      float *dst, int n, float *boxes);
/* Draws SSD's crop: returns 0 for no crop, else the window and which boxes it keeps. */
int ist_det_iou_crop_window(int h, int w, int n, const float *boxes, ist_rng *rng, int *top, int *left, int *ch,
                            int *cw, uint8_t *keep);
void ist_det_flip(int c, int h, int w, float *img, int n, float *boxes);
void ist_det_resize(int c, int h, int w, const float *src, int oh, int ow, float *dst);

#ifdef __cplusplus
}
#endif
#endif
