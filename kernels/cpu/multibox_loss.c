/* The SSD multibox loss (smooth-L1 + cross-entropy with hard-negative mining) and the detection
 * distillation loss: CPU reference. */
#include "kernels/cpu/multibox_loss.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu.h"

/* −log softmax(z)[label], in double. */
static double cross_entropy_row(int c, const float *z, int label) {
  float mx = z[0];
  for (int j = 1; j < c; j++) mx = z[j] > mx ? z[j] : mx;
  double s = 0;
  for (int j = 0; j < c; j++) s += exp((double)z[j] - mx);
  return log(s) - ((double)z[label] - mx);
}

/* qsort has no context argument: the losses being sorted are passed through this. */
static _Thread_local const float *sort_ce;
static int by_loss_desc(const void *pa, const void *pb) {
  int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
  if (sort_ce[a] != sort_ce[b]) return sort_ce[a] > sort_ce[b] ? -1 : 1;
  return (a > b) - (a < b);
}

float ist_cpu_multibox_loss(int n, int anchors, int classes, const float *logits, const float *box,
                            const int32_t *labels, const float *offsets, int ratio, ist_multibox_scratch *scratch,
                            int32_t *selected, float *parts, float *dlogits, float *dbox) {
  int64_t total = (int64_t)n * anchors, positives = 0;
  for (int64_t a = 0; a < total; a++) {
    scratch->ce[a] = (float)cross_entropy_row(classes, logits + a * classes, labels[a]);
    selected[a] = labels[a] > 0;
    positives += labels[a] > 0;
  }
  /* Mining, image by image: the largest-loss background anchors, ratio per positive. */
  for (int i = 0; i < n; i++) {
    const int32_t *lab = labels + (int64_t)i * anchors;
    int pos = 0, neg = 0;
    for (int a = 0; a < anchors; a++) {
      if (lab[a] > 0)
        pos++;
      else
        scratch->order[neg++] = a;
    }
    int64_t want = (int64_t)ratio * pos;
    int keep = want < neg ? (int)want : neg;
    if (keep == 0) continue;
    sort_ce = scratch->ce + (int64_t)i * anchors;
    qsort(scratch->order, (size_t)neg, sizeof(int32_t), by_loss_desc);
    for (int k = 0; k < keep; k++) selected[(int64_t)i * anchors + scratch->order[k]] = 1;
  }
  double norm = positives > 0 ? (double)positives : 1.0, box_sum = 0, cls_sum = 0;
  float p[classes];
  for (int64_t a = 0; a < total; a++) {
    float *dl = dlogits ? dlogits + a * classes : NULL, *db = dbox ? dbox + 4 * a : NULL;
    if (selected[a]) {
      cls_sum += scratch->ce[a];
      if (dl) {
        ist_cpu_softmax_row(classes, logits + a * classes, 1.0f, p);
        for (int j = 0; j < classes; j++) dl[j] = (float)((p[j] - (j == labels[a])) / norm);
      }
    } else if (dl) {
      memset(dl, 0, (size_t)classes * sizeof(float));
    }
    for (int e = 0; e < 4; e++) {
      float g = 0;
      if (labels[a] > 0) {
        double d = (double)box[4 * a + e] - offsets[4 * a + e], ad = fabs(d);
        box_sum += ad < 1 ? 0.5 * d * d : ad - 0.5;
        g = (float)((ad < 1 ? d : (d > 0 ? 1 : -1)) / norm);
      }
      if (db) db[e] = g;
    }
  }
  if (parts) {
    parts[0] = (float)(box_sum / norm);
    parts[1] = (float)(cls_sum / norm);
  }
  return (float)((box_sum + cls_sum) / norm);
}

float ist_cpu_detect_kd_loss(int n, int anchors, int classes, const float *logits, const float *box,
                             const float *teacher_logits, const float *teacher_box, const int32_t *labels,
                             const float *offsets, int ratio, float beta, float temperature, float box_weight,
                             ist_multibox_scratch *scratch, int32_t *selected, float *parts, float *dlogits,
                             float *dbox) {
  float mb_parts[2];
  float mb = ist_cpu_multibox_loss(n, anchors, classes, logits, box, labels, offsets, ratio, scratch, selected,
                                   mb_parts, dlogits, dbox);
  int64_t total = (int64_t)n * anchors, positives = 0;
  for (int64_t a = 0; a < total; a++) positives += labels[a] > 0;
  const double norm = positives > 0 ? (double)positives : 1.0, t = temperature;
  double kl = 0, l2 = 0;
  float q[classes], p[classes];
  for (int64_t a = 0; a < total; a++) {
    float *dl = dlogits ? dlogits + a * classes : NULL, *db = dbox ? dbox + 4 * a : NULL;
    if (dl)
      for (int j = 0; j < classes; j++) dl[j] *= 1 - beta;
    if (db)
      for (int e = 0; e < 4; e++) db[e] *= 1 - beta;
    if (selected[a]) {
      ist_cpu_softmax_row(classes, teacher_logits + a * classes, temperature, q);
      ist_cpu_softmax_row(classes, logits + a * classes, temperature, p);
      for (int j = 0; j < classes; j++)
        if (q[j] > 0) kl += q[j] * (log(q[j]) - log(p[j] > 1e-30f ? p[j] : 1e-30f));
      /* ∂(T²·KL)/∂z_s = T·(p_T − q_T) */
      if (dl)
        for (int j = 0; j < classes; j++) dl[j] += (float)(beta * t * (p[j] - q[j]) / norm);
    }
    if (labels[a] > 0)
      for (int e = 0; e < 4; e++) {
        double d = (double)box[4 * a + e] - teacher_box[4 * a + e];
        l2 += 0.5 * d * d;
        if (db) db[e] += (float)(beta * box_weight * d / norm);
      }
  }
  double kd_cls = t * t * kl / norm, kd_box = box_weight * l2 / norm;
  if (parts) {
    parts[0] = mb_parts[0];
    parts[1] = mb_parts[1];
    parts[2] = (float)kd_cls;
    parts[3] = (float)kd_box;
  }
  return (float)((1 - beta) * mb + beta * (kd_cls + kd_box));
}
