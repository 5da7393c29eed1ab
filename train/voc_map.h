/* The PASCAL VOC detection metric: average precision per class at IoU ≥ 0.5 (the VOC2007 11-point
 * interpolation and the area under the interpolated curve of VOC2010+), and their means. */
#ifndef IST_VOC_MAP_H
#define IST_VOC_MAP_H
#include <stdint.h>

#include "host/status.h"
#include "host/voc.h"
#include "train/boxes.h"

#ifdef __cplusplus
extern "C" {
#endif

#define IST_VOC_IOU_THRESHOLD 0.5f

/* One detection of an evaluated image. */
typedef struct {
  int64_t image; /* index into the ground truth */
  int label;     /* 0..IST_VOC_CLASSES−1 (ist_voc_classes) */
  float score;
  float box[4]; /* x0, y0, x1, y1 in the image's pixel coordinates */
} ist_voc_detection;

typedef struct {
  float iou_threshold; /* a detection is a hit when its overlap ≥ this [0.5] */
  int inclusive;       /* 1: the devkit's inclusive pixel boxes (width x1 − x0 + 1) [1]; 0: continuous */
} ist_voc_map_options;

typedef struct {
  double ap11[IST_VOC_CLASSES], ap_area[IST_VOC_CLASSES]; /* NaN for a class without objects */
  int64_t objects[IST_VOC_CLASSES];                      /* non-difficult ground-truth objects */
  int64_t detections[IST_VOC_CLASSES];
  double map11, map_area; /* means over the classes with objects */
  int classes;            /* classes with objects */
} ist_voc_map_result;

ist_voc_map_options ist_voc_map_defaults(void);

/* The devkit's VOCevaldet for every class: detections sorted by decreasing score (ties keep
 * their order in dets), each assigned to the unmatched object of its image and class with the
 * largest overlap if that overlap ≥ the threshold (a true positive), a false positive otherwise
 * or when that object was already taken; a detection whose best object is difficult counts as
 * neither; difficult objects are not counted in the recall. Fails on a detection naming an
 * image or class out of range. */
ist_status ist_voc_map(int64_t images, const ist_voc_annotation *truth, int64_t n, const ist_voc_detection *dets,
                       const ist_voc_map_options *o, ist_voc_map_result *out);

/* The detections of one image (from ist_ssd_detect on the size × size input) in the image's VOC
 * coordinates: scaled to width × height, continuous → 1-based inclusive (the inverse of
 * ist_det_boxes_from_voc), detector class k → VOC class k − 1. */
void ist_voc_detections_from_ssd(int n, const ist_detection *d, int64_t image, int size, int width, int height,
                                 ist_voc_detection *out);

/* The 11-point and area APs of one precision/recall curve (n points, recall non-decreasing). */
double ist_voc_ap11(int64_t n, const double *recall, const double *precision);
double ist_voc_ap_area(int64_t n, const double *recall, const double *precision);

#ifdef __cplusplus
}
#endif
#endif
