/* The PASCAL VOC detection metric (the devkit's VOCevaldet, per class) and its mean. */
#include "train/voc_map.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

ist_voc_map_options ist_voc_map_defaults(void) {
  ist_voc_map_options o = {IST_VOC_IOU_THRESHOLD, 1};
  return o;
}

double ist_voc_ap11(int64_t n, const double *recall, const double *precision) {
  double ap = 0;
  for (int k = 0; k <= 10; k++) {
    /* The devkit's thresholds 0:0.1:1 (so k·0.1, e.g. 0.30000000000000004, as numpy's arange). */
    double t = k * 0.1, p = 0;
    for (int64_t i = 0; i < n; i++)
      if (recall[i] >= t && precision[i] > p) p = precision[i];
    ap += p / 11;
  }
  return ap;
}

double ist_voc_ap_area(int64_t n, const double *recall, const double *precision) {
  /* The precision envelope (max of the precisions at larger recall), integrated over the recall
   * steps, with the end points (0, 0) and (1, 0) added as the devkit. */
  double ap = 0, envelope = 0;
  for (int64_t i = n - 1; i >= 0; i--) {
    envelope = precision[i] > envelope ? precision[i] : envelope;
    double before = i > 0 ? recall[i - 1] : 0;
    if (recall[i] != before) ap += (recall[i] - before) * envelope;
  }
  return ap;
}

void ist_voc_detections_from_ssd(int n, const ist_detection *d, int64_t image, int size, int width, int height,
                                 ist_voc_detection *out) {
  const float sx = (float)width / size, sy = (float)height / size;
  for (int i = 0; i < n; i++) {
    out[i].image = image;
    out[i].label = d[i].label - 1;
    out[i].score = d[i].score;
    out[i].box[0] = d[i].box[0] * sx + 1;
    out[i].box[1] = d[i].box[1] * sy + 1;
    out[i].box[2] = d[i].box[2] * sx;
    out[i].box[3] = d[i].box[3] * sy;
  }
}

static double overlap(const float *a, const float *b, int inclusive) {
  double e = inclusive ? 1 : 0;
  double iw = fmin(a[2], b[2]) - fmax(a[0], b[0]) + e, ih = fmin(a[3], b[3]) - fmax(a[1], b[1]) + e;
  if (iw <= 0 || ih <= 0) return 0;
  double uni = ((double)a[2] - a[0] + e) * ((double)a[3] - a[1] + e) + ((double)b[2] - b[0] + e) * ((double)b[3] - b[1] + e) -
               iw * ih;
  return iw * ih / uni;
}

/* qsort has no context argument: the detections being sorted are passed through this. */
static _Thread_local const ist_voc_detection *sort_dets;
static int by_score_desc(const void *pa, const void *pb) {
  int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
  float sa = sort_dets[a].score, sb = sort_dets[b].score;
  if (sa != sb) return sa > sb ? -1 : 1;
  return (a > b) - (a < b);
}

ist_status ist_voc_map(int64_t images, const ist_voc_annotation *truth, int64_t n, const ist_voc_detection *dets,
                       const ist_voc_map_options *o, ist_voc_map_result *out) {
  memset(out, 0, sizeof *out);
  for (int64_t d = 0; d < n; d++)
    if (dets[d].image < 0 || dets[d].image >= images || dets[d].label < 0 || dets[d].label >= IST_VOC_CLASSES)
      return ist_fail(IST_ERR_ARG, "VOC mAP: detection %lld names image %lld of %lld, class %d of %d", (long long)d,
                      (long long)dets[d].image, (long long)images, dets[d].label, IST_VOC_CLASSES);
  /* Where each image's objects start in one flat array of "taken" flags. */
  int64_t *first = malloc((size_t)(images + 1) * sizeof *first);
  int64_t *order = malloc((size_t)(n > 0 ? n : 1) * sizeof *order);
  double *recall = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
  double *precision = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
  int64_t objects = 0;
  for (int64_t i = 0; i < images; i++) objects += truth[i].n;
  char *taken = calloc((size_t)(objects > 0 ? objects : 1), 1);
  ist_status s = IST_OK;
  if (!first || !order || !recall || !precision || !taken) {
    s = ist_fail(IST_ERR_MEMORY, "VOC mAP: out of memory (%lld detections)", (long long)n);
    goto done;
  }
  first[0] = 0;
  for (int64_t i = 0; i < images; i++) first[i + 1] = first[i] + truth[i].n;
  double sum11 = 0, sum_area = 0;
  for (int c = 0; c < IST_VOC_CLASSES; c++) {
    int64_t npos = 0, m = 0;
    for (int64_t i = 0; i < images; i++)
      for (int j = 0; j < truth[i].n; j++) npos += truth[i].objects[j].label == c && !truth[i].objects[j].difficult;
    for (int64_t d = 0; d < n; d++)
      if (dets[d].label == c) order[m++] = d;
    out->objects[c] = npos;
    out->detections[c] = m;
    if (npos == 0) {
      out->ap11[c] = out->ap_area[c] = NAN;
      continue;
    }
    sort_dets = dets;
    qsort(order, (size_t)m, sizeof *order, by_score_desc);
    int64_t tp = 0, fp = 0;
    for (int64_t k = 0; k < m; k++) {
      const ist_voc_detection *d = &dets[order[k]];
      const ist_voc_annotation *g = &truth[d->image];
      double best = -INFINITY;
      int arg = -1;
      for (int j = 0; j < g->n; j++) {
        if (g->objects[j].label != c) continue;
        double v = overlap(d->box, g->objects[j].box, o->inclusive);
        if (v > best) best = v, arg = j;
      }
      if (arg >= 0 && best >= o->iou_threshold) {
        if (!g->objects[arg].difficult) {
          char *t = &taken[first[d->image] + arg];
          if (!*t)
            tp++, *t = 1;
          else
            fp++;
        }
      } else {
        fp++;
      }
      recall[k] = (double)tp / npos;
      precision[k] = tp + fp > 0 ? (double)tp / (tp + fp) : 0;
    }
    out->ap11[c] = ist_voc_ap11(m, recall, precision);
    out->ap_area[c] = ist_voc_ap_area(m, recall, precision);
    sum11 += out->ap11[c];
    sum_area += out->ap_area[c];
    out->classes++;
  }
  out->map11 = out->classes ? sum11 / out->classes : NAN;
  out->map_area = out->classes ? sum_area / out->classes : NAN;
done:
  free(first), free(order), free(recall), free(precision), free(taken);
  return s;
}
