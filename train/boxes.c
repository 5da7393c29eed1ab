/* SSD boxes: IoU, the box coder, default boxes, matching, NMS and post-processing (host side). */
#include "train/boxes.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

float ist_box_iou(const float *a, const float *b) {
  float iw = fminf(a[2], b[2]) - fmaxf(a[0], b[0]);
  float ih = fminf(a[3], b[3]) - fmaxf(a[1], b[1]);
  if (iw <= 0 || ih <= 0) return 0;
  float inter = iw * ih;
  float uni = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return uni > 0 ? inter / uni : 0;
}

void ist_box_encode(const float *anchor, const float *box, float *d) {
  static const float wt[4] = IST_SSD_BOX_WEIGHTS;
  float aw = anchor[2] - anchor[0], ah = anchor[3] - anchor[1];
  float ax = anchor[0] + 0.5f * aw, ay = anchor[1] + 0.5f * ah;
  float bw = box[2] - box[0], bh = box[3] - box[1];
  float bx = box[0] + 0.5f * bw, by = box[1] + 0.5f * bh;
  d[0] = wt[0] * (bx - ax) / aw;
  d[1] = wt[1] * (by - ay) / ah;
  d[2] = wt[2] * logf(bw / aw);
  d[3] = wt[3] * logf(bh / ah);
}

void ist_box_decode(const float *anchor, const float *d, float *box) {
  static const float wt[4] = IST_SSD_BOX_WEIGHTS;
  float aw = anchor[2] - anchor[0], ah = anchor[3] - anchor[1];
  float ax = anchor[0] + 0.5f * aw, ay = anchor[1] + 0.5f * ah;
  float dw = fminf(d[2] / wt[2], (float)IST_SSD_BOX_LOG_CLIP), dh = fminf(d[3] / wt[3], (float)IST_SSD_BOX_LOG_CLIP);
  float cx = d[0] / wt[0] * aw + ax, cy = d[1] / wt[1] * ah + ay;
  float w = expf(dw) * aw, h = expf(dh) * ah;
  box[0] = cx - 0.5f * w;
  box[1] = cy - 0.5f * h;
  box[2] = cx + 0.5f * w;
  box[3] = cy + 0.5f * h;
}

ist_ssd_anchor_config ist_ssdlite320_anchor_config(void) {
  ist_ssd_anchor_config c;
  memset(&c, 0, sizeof c);
  static const int grid[6] = {20, 10, 5, 3, 2, 1};
  c.image_size = 320;
  c.maps = 6;
  for (int k = 0; k < 6; k++) {
    c.grid[k] = grid[k];
    c.ratios[k] = 2;
    c.ratio[k][0] = 2;
    c.ratio[k][1] = 3;
  }
  c.min_ratio = 0.2f;
  c.max_ratio = 0.95f;
  c.clip = 1;
  return c;
}

int ist_ssd_anchors_per_cell(const ist_ssd_anchor_config *c, int k) { return 2 + 2 * c->ratios[k]; }

int ist_ssd_anchor_count(const ist_ssd_anchor_config *c) {
  int n = 0;
  for (int k = 0; k < c->maps; k++) n += c->grid[k] * c->grid[k] * ist_ssd_anchors_per_cell(c, k);
  return n;
}

static double anchor_scale(const ist_ssd_anchor_config *c, int k) {
  if (k >= c->maps) return 1.0;
  if (c->maps == 1) return c->min_ratio;
  return c->min_ratio + (double)(c->max_ratio - c->min_ratio) * k / (c->maps - 1);
}

void ist_ssd_anchors(const ist_ssd_anchor_config *c, float *out) {
  float size = (float)c->image_size;
  for (int k = 0; k < c->maps; k++) {
    double s = anchor_scale(c, k), s_next = anchor_scale(c, k + 1);
    float wh[2 + 2 * IST_SSD_MAX_RATIOS][2];
    int m = 0;
    wh[m][0] = wh[m][1] = (float)s, m++;
    wh[m][0] = wh[m][1] = (float)sqrt(s * s_next), m++;
    for (int r = 0; r < c->ratios[k]; r++) {
      double q = sqrt((double)c->ratio[k][r]);
      wh[m][0] = (float)(s * q), wh[m][1] = (float)(s / q), m++;
      wh[m][0] = (float)(s / q), wh[m][1] = (float)(s * q), m++;
    }
    if (c->clip)
      for (int b = 0; b < m; b++)
        for (int e = 0; e < 2; e++) wh[b][e] = fminf(fmaxf(wh[b][e], 0.0f), 1.0f);
    int g = c->grid[k];
    for (int i = 0; i < g; i++)
      for (int j = 0; j < g; j++) {
        float cx = (j + 0.5f) / g * size, cy = (i + 0.5f) / g * size;
        for (int b = 0; b < m; b++, out += 4) {
          float w = wh[b][0] * size, h = wh[b][1] * size;
          out[0] = cx - 0.5f * w;
          out[1] = cy - 0.5f * h;
          out[2] = cx + 0.5f * w;
          out[3] = cy + 0.5f * h;
        }
      }
  }
}

void ist_ssd_match(int n_anchors, const float *anchors, int n_objects, const float *objects, float threshold,
                   int32_t *matches) {
  for (int a = 0; a < n_anchors; a++) {
    float best = -1;
    int arg = -1;
    for (int o = 0; o < n_objects; o++) {
      float v = ist_box_iou(objects + 4 * o, anchors + 4 * a);
      if (v > best) best = v, arg = o;
    }
    matches[a] = arg >= 0 && best >= threshold ? arg : -1;
  }
  for (int o = 0; o < n_objects; o++) {
    float best = -1;
    int arg = 0;
    for (int a = 0; a < n_anchors; a++) {
      float v = ist_box_iou(objects + 4 * o, anchors + 4 * a);
      if (v > best) best = v, arg = a;
    }
    if (n_anchors > 0) matches[arg] = o;
  }
}

int ist_ssd_targets(int n_anchors, const float *anchors, int n_objects, const float *objects,
                    const int32_t *object_labels, float threshold, int32_t *matches, int32_t *labels, float *offsets) {
  ist_ssd_match(n_anchors, anchors, n_objects, objects, threshold, matches);
  int pos = 0;
  for (int a = 0; a < n_anchors; a++) {
    int m = matches[a];
    if (m >= 0) {
      labels[a] = object_labels[m];
      ist_box_encode(anchors + 4 * a, objects + 4 * m, offsets + 4 * a);
      pos++;
    } else {
      labels[a] = 0;
      memset(offsets + 4 * a, 0, 4 * sizeof(float));
    }
  }
  return pos;
}

/* qsort has no context argument: the scores being sorted are passed through this. */
static _Thread_local const float *sort_scores;
static int by_score_desc(const void *pa, const void *pb) {
  int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
  float sa = sort_scores[a], sb = sort_scores[b];
  if (sa != sb) return sa > sb ? -1 : 1;
  return (a > b) - (a < b);
}

static void sort_by_score(int n, const float *scores, int32_t *idx) {
  for (int i = 0; i < n; i++) idx[i] = i;
  sort_scores = scores;
  qsort(idx, (size_t)n, sizeof *idx, by_score_desc);
}

int ist_box_nms(int n, const float *boxes, const float *scores, float iou_threshold, int32_t *keep) {
  int32_t *order = malloc((size_t)(n > 0 ? n : 1) * sizeof *order);
  char *dropped = calloc((size_t)(n > 0 ? n : 1), 1);
  int kept = 0;
  if (!order || !dropped) {
    free(order), free(dropped);
    return -1;
  }
  sort_by_score(n, scores, order);
  for (int i = 0; i < n; i++) {
    int a = order[i];
    if (dropped[i]) continue;
    keep[kept++] = a;
    for (int j = i + 1; j < n; j++)
      if (!dropped[j] && ist_box_iou(boxes + 4 * a, boxes + 4 * order[j]) > iou_threshold) dropped[j] = 1;
  }
  free(order);
  free(dropped);
  return kept;
}

ist_ssd_postprocess ist_ssdlite_postprocess_defaults(void) {
  ist_ssd_postprocess p = {0.001f, 300, 0.55f, 300};
  return p;
}

ist_status ist_ssd_detect(int n_anchors, int classes, const float *anchors, const float *offsets,
                          const float *probs, int width, int height, const ist_ssd_postprocess *p,
                          ist_detection *out, int *count) {
  *count = 0;
  int cap = (classes - 1) * (p->topk_candidates < n_anchors ? p->topk_candidates : n_anchors);
  float *boxes = malloc((size_t)n_anchors * 4 * sizeof(float));
  float *cand_boxes = malloc((size_t)(cap > 0 ? cap : 1) * 4 * sizeof(float));
  float *cand_scores = malloc((size_t)(cap > 0 ? cap : 1) * sizeof(float));
  float *score = malloc((size_t)n_anchors * sizeof(float));
  int32_t *order = malloc((size_t)n_anchors * sizeof(int32_t));
  int32_t *keep = malloc((size_t)(cap > 0 ? cap : 1) * sizeof(int32_t));
  ist_detection *all = malloc((size_t)(cap > 0 ? cap : 1) * sizeof *all);
  float *all_scores = calloc((size_t)(cap > 0 ? cap : 1), sizeof(float));
  ist_status s = IST_OK;
  if (!boxes || !cand_boxes || !cand_scores || !score || !order || !keep || !all || !all_scores) {
    s = ist_fail(IST_ERR_MEMORY, "SSD post-processing: out of memory (%d anchors, %d classes)", n_anchors, classes);
    goto done;
  }
  for (int a = 0; a < n_anchors; a++) {
    float *b = boxes + 4 * a;
    ist_box_decode(anchors + 4 * a, offsets + 4 * a, b);
    b[0] = fminf(fmaxf(b[0], 0.0f), (float)width);
    b[2] = fminf(fmaxf(b[2], 0.0f), (float)width);
    b[1] = fminf(fmaxf(b[1], 0.0f), (float)height);
    b[3] = fminf(fmaxf(b[3], 0.0f), (float)height);
  }
  int n_all = 0;
  for (int c = 1; c < classes; c++) {
    int n = 0;
    for (int a = 0; a < n_anchors; a++) {
      float v = probs[(int64_t)a * classes + c];
      score[a] = v > p->score_threshold ? v : -INFINITY;
      n += v > p->score_threshold;
    }
    sort_by_score(n_anchors, score, order);
    if (n > p->topk_candidates) n = p->topk_candidates;
    for (int i = 0; i < n; i++) {
      memcpy(cand_boxes + 4 * i, boxes + 4 * order[i], 4 * sizeof(float));
      cand_scores[i] = score[order[i]];
    }
    int kept = ist_box_nms(n, cand_boxes, cand_scores, p->nms_threshold, keep);
    if (kept < 0) {
      s = ist_fail(IST_ERR_MEMORY, "SSD post-processing: out of memory in NMS");
      goto done;
    }
    for (int i = 0; i < kept; i++, n_all++) {
      memcpy(all[n_all].box, cand_boxes + 4 * keep[i], 4 * sizeof(float));
      all[n_all].score = cand_scores[keep[i]];
      all[n_all].label = c;
      all_scores[n_all] = all[n_all].score;
    }
  }
  /* The best max_detections over all classes (ties: lower class first, as collected). */
  sort_by_score(n_all, all_scores, keep);
  int n_out = n_all < p->max_detections ? n_all : p->max_detections;
  for (int i = 0; i < n_out; i++) out[i] = all[keep[i]];
  *count = n_out;
done:
  free(boxes), free(cand_boxes), free(cand_scores), free(score), free(order), free(keep), free(all),
      free(all_scores);
  return s;
}
