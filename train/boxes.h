/* SSD boxes: IoU, the box coder, SSDLite320's default boxes (anchors), anchor–object matching and
 * per-class NMS. Boxes are float[4] (x0, y0, x1, y1) in pixels, continuous coordinates (area
 * (x1 − x0)(y1 − y0)), as torchvision's box ops. Matching and encoding run on the host per image
 * (in the loader, like the augmentation), so the training step receives per-anchor targets;
 * decoding and NMS run on the host at evaluation. */
#ifndef IST_BOXES_H
#define IST_BOXES_H
#include <stdint.h>

#include "host/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* torchvision's SSD BoxCoder weights (wx, wy, ww, wh) = 1 / the variances (0.1, 0.1, 0.2, 0.2). */
#define IST_SSD_BOX_WEIGHTS {10.0f, 10.0f, 5.0f, 5.0f}
/* Decoded log-sizes are clamped to log(1000/16), as torchvision's bbox_xform_clip. */
#define IST_SSD_BOX_LOG_CLIP 4.135166556742356
/* An anchor matches an object when their IoU ≥ this (besides each object's forced best anchor). */
#define IST_SSD_IOU_THRESHOLD 0.5f

float ist_box_iou(const float *a, const float *b);
/* The offsets (4) of box relative to anchor: (10·Δcx/w_a, 10·Δcy/h_a, 5·log(w/w_a), 5·log(h/h_a)). */
void ist_box_encode(const float *anchor, const float *box, float *offsets);
/* The inverse of ist_box_encode (log-sizes clamped to IST_SSD_BOX_LOG_CLIP). */
void ist_box_decode(const float *anchor, const float *offsets, float *box);

/* torchvision's DefaultBoxGenerator: per feature map k of grid g_k × g_k, scale s_k = min + (max −
 * min)·k/(K − 1) (s_K = 1), boxes at the cell centres ((j + ½)/g_k, (i + ½)/g_k) of sizes s_k,
 * √(s_k·s_{k+1}) and s_k·(√r, 1/√r), s_k·(1/√r, √r) per aspect ratio r; sizes clipped to [0, 1]
 * (clip), then scaled to the image. Order: map, row, column, box. */
#define IST_SSD_MAX_MAPS 8
#define IST_SSD_MAX_RATIOS 4
typedef struct {
  int image_size; /* square input, pixels */
  int maps;       /* feature maps K */
  int grid[IST_SSD_MAX_MAPS];
  int ratios[IST_SSD_MAX_MAPS];                       /* aspect ratios per map */
  float ratio[IST_SSD_MAX_MAPS][IST_SSD_MAX_RATIOS]; /* r ≥ 1 */
  float min_ratio, max_ratio;
  int clip;
} ist_ssd_anchor_config;

/* SSDLite320 (torchvision's ssdlite320_mobilenet_v3_large): 320 × 320, grids 20, 10, 5, 3, 2, 1
 * (strides 16 … 320), ratios {2, 3} on every map, scales 0.2 … 0.95, clipped: 6 boxes per cell, 3234. */
ist_ssd_anchor_config ist_ssdlite320_anchor_config(void);
/* Boxes per cell of map k, and the total over all maps. */
int ist_ssd_anchors_per_cell(const ist_ssd_anchor_config *c, int k);
int ist_ssd_anchor_count(const ist_ssd_anchor_config *c);
/* Writes the ist_ssd_anchor_count(c) anchors (x0, y0, x1, y1, pixels) into out. */
void ist_ssd_anchors(const ist_ssd_anchor_config *c, float *out);

/* torchvision's SSDMatcher: each anchor takes the object of highest IoU (the first on ties) if
 * that IoU ≥ threshold, else −1; then each object's best anchor (the first on ties) is forced to
 * it, objects in order (a later object wins an anchor two share). matches: n_anchors entries. */
void ist_ssd_match(int n_anchors, const float *anchors, int n_objects, const float *objects, float threshold,
                   int32_t *matches);
/* The training targets of one image: labels[a] = object_labels[m] (classes 1..C−1; 0 background)
 * and offsets[a] = the encoding of object m for matched anchors (zeros for the background);
 * returns the number of matched anchors. matches: scratch of n_anchors. */
int ist_ssd_targets(int n_anchors, const float *anchors, int n_objects, const float *objects,
                    const int32_t *object_labels, float threshold, int32_t *matches, int32_t *labels, float *offsets);

/* Greedy NMS: indices of the kept boxes by decreasing score (ties: lower index first), a box
 * being dropped when its IoU with a kept one is > iou_threshold. keep: n entries; returns the count. */
int ist_box_nms(int n, const float *boxes, const float *scores, float iou_threshold, int32_t *keep);

/* One detection. */
typedef struct {
  float box[4];
  float score;
  int label; /* 1..C−1 */
} ist_detection;

/* torchvision's SSD post-processing (SSDLite's defaults in brackets). */
typedef struct {
  float score_threshold; /* a class score must be > this [0.001] */
  int topk_candidates;   /* per class, before NMS [300] */
  float nms_threshold;   /* [0.55] */
  int max_detections;    /* per image [300] */
} ist_ssd_postprocess;
ist_ssd_postprocess ist_ssdlite_postprocess_defaults(void);

/* Detections of one image from its anchors, per-anchor offsets (n_anchors × 4) and class
 * probabilities (n_anchors × classes, class 0 the background): decode, clip to width × height,
 * per class keep scores > threshold and the top-k, NMS per class, then the max_detections best
 * by score. out: max_detections entries; returns the count. */
ist_status ist_ssd_detect(int n_anchors, int classes, const float *anchors, const float *offsets,
                          const float *probs, int width, int height, const ist_ssd_postprocess *p,
                          ist_detection *out, int *count);

#ifdef __cplusplus
}
#endif
#endif
