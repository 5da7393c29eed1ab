/* Detection training batches from a VOC set: decode, augment, normalize, match anchors. Threads
 * are started per batch for now (a persistent pool as host/jpeg.c's is the next step). */
#include "host/voc_batch.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "train/boxes.h"

typedef struct {
  const ist_voc_set *set;
  const ist_voc_batch_options *o;
  const int32_t *order;
  int64_t start;
  int n;
  const ist_det_augment *aug;
  uint64_t seed;
  float *x, *offsets;
  int32_t *labels, *positives;
  atomic_int next;
  pthread_mutex_t mu;
  int failed;
  char err[1024];
} job;

typedef struct {
  tjhandle tj;
  unsigned char *bytes, *pixels;
  float *img, *scratch, *boxes, *boxes_out;
  int32_t *obj_labels, *labels_out, *matches;
  size_t bytes_cap, pixels_cap, img_cap, scratch_cap;
} worker;

static int grow(void *pp, size_t *cap, size_t need) {
  if (need <= *cap) return 1;
  void *p = realloc(*(void **)pp, need);
  if (!p) return 0;
  *(void **)pp = p, *cap = need;
  return 1;
}

/* Image i of the batch; on failure the reason (naming the file) goes to err. */
static int one_image(job *j, worker *w, int i, char *err, size_t errcap) {
  const int64_t pos = j->start + i, idx = j->order ? j->order[pos] : pos;
  const char *path = j->set->jpeg_paths[idx];
  const ist_voc_annotation *an = &j->set->annotations[idx];
  const ist_voc_batch_options *o = j->o;
  FILE *fp = fopen(path, "rb");
  if (!fp) return snprintf(err, errcap, "%s: cannot open (%s)", path, strerror(errno)), 0;
  long len = -1;
  if (fseek(fp, 0, SEEK_END) == 0) len = ftell(fp);
  int ok = len > 0 && fseek(fp, 0, SEEK_SET) == 0 && grow(&w->bytes, &w->bytes_cap, (size_t)len) &&
           fread(w->bytes, 1, (size_t)len, fp) == (size_t)len;
  fclose(fp);
  if (!ok) return snprintf(err, errcap, "%s: cannot read", path), 0;
  int W, H, subsamp, cs;
  if (tjDecompressHeader3(w->tj, w->bytes, (unsigned long)len, &W, &H, &subsamp, &cs) != 0)
    return snprintf(err, errcap, "%s: not a JPEG file (%s)", path, tjGetErrorStr2(w->tj)), 0;
  if (W != an->width || H != an->height)
    return snprintf(err, errcap, "%s: %d×%d pixels, but its annotation's <size> says %d×%d", path, W, H, an->width,
                    an->height),
           0;
  const size_t hw = (size_t)W * H;
  if (!grow(&w->pixels, &w->pixels_cap, hw * 3) || !grow(&w->img, &w->img_cap, hw * 3 * sizeof(float)) ||
      !grow(&w->scratch, &w->scratch_cap, (size_t)ist_det_augment_scratch(j->aug, 3, H, W) * sizeof(float)))
    return snprintf(err, errcap, "%s: out of memory for %d×%d pixels", path, W, H), 0;
  if (tjDecompress2(w->tj, w->bytes, (unsigned long)len, w->pixels, W, 0, H, TJPF_RGB, 0) != 0)
    return snprintf(err, errcap, "%s: corrupt or truncated JPEG (%s)", path, tjGetErrorStr2(w->tj)), 0;
  for (size_t p = 0; p < hw; p++)
    for (int c = 0; c < 3; c++) w->img[c * hw + p] = w->pixels[3 * p + c] / 255.0f;
  /* Objects (difficult ones only if asked) in continuous pixel coordinates. */
  int n = 0;
  size_t need = (size_t)(an->n > 0 ? an->n : 1);
  free(w->boxes), free(w->boxes_out), free(w->obj_labels), free(w->labels_out);
  w->boxes = malloc(need * 4 * sizeof(float)), w->boxes_out = malloc(need * 4 * sizeof(float));
  w->obj_labels = malloc(need * sizeof(int32_t)), w->labels_out = malloc(need * sizeof(int32_t));
  if (!w->boxes || !w->boxes_out || !w->obj_labels || !w->labels_out)
    return snprintf(err, errcap, "%s: out of memory", path), 0;
  for (int k = 0; k < an->n; k++)
    if (o->keep_difficult || !an->objects[k].difficult) {
      ist_det_boxes_from_voc(1, &an->objects[k], w->boxes + 4 * n, w->obj_labels + n);
      n++;
    }
  ist_rng rng;
  ist_rng_for(&rng, j->seed, (uint64_t)pos);
  const int S = o->size;
  float *dst = j->x + (size_t)i * 3 * S * S;
  int n_out;
  ist_det_augment_image(j->aug, 3, H, W, w->img, n, w->boxes, w->obj_labels, S, dst, w->boxes_out, w->labels_out,
                        &n_out, w->scratch, &rng);
  for (int c = 0; c < 3; c++)
    for (size_t p = 0; p < (size_t)S * S; p++) {
      float *v = dst + (size_t)c * S * S + p;
      *v = (*v - o->mean[c]) / o->std[c];
    }
  int pos_count = ist_ssd_targets(o->n_anchors, o->anchors, n_out, w->boxes_out, w->labels_out, IST_SSD_IOU_THRESHOLD,
                                  w->matches, j->labels + (size_t)i * o->n_anchors,
                                  j->offsets + (size_t)i * o->n_anchors * 4);
  if (j->positives) j->positives[i] = pos_count;
  return 1;
}

static void *worker_main(void *arg) {
  job *j = arg;
  worker w;
  memset(&w, 0, sizeof w);
  w.tj = tjInitDecompress();
  w.matches = malloc((size_t)j->o->n_anchors * sizeof(int32_t));
  char err[1024];
  for (int i; (i = atomic_fetch_add(&j->next, 1)) < j->n;) {
    err[0] = 0;
    int ok = w.tj && w.matches ? one_image(j, &w, i, err, sizeof err)
                               : (snprintf(err, sizeof err, "VOC batch: out of memory"), 0);
    if (!ok) {
      pthread_mutex_lock(&j->mu);
      if (!j->failed) {
        j->failed = 1;
        snprintf(j->err, sizeof j->err, "%s", err);
      }
      pthread_mutex_unlock(&j->mu);
      break;
    }
  }
  if (w.tj) tjDestroy(w.tj);
  free(w.bytes), free(w.pixels), free(w.img), free(w.scratch), free(w.boxes), free(w.boxes_out), free(w.obj_labels),
      free(w.labels_out), free(w.matches);
  return NULL;
}

ist_status ist_voc_batch(const ist_voc_set *set, const ist_voc_batch_options *o, const int32_t *order, int64_t start,
                         int n, const ist_det_augment *aug, uint64_t seed, float *x, int32_t *labels, float *offsets,
                         int32_t *positives) {
  if (start < 0 || n < 0 || start + n > set->n)
    return ist_fail(IST_ERR_ARG, "VOC batch [%lld, %lld) outside the set's %lld images", (long long)start,
                    (long long)(start + n), (long long)set->n);
  job j = {set, o, order, start, n, aug, seed, x, offsets, labels, positives, 0, PTHREAD_MUTEX_INITIALIZER, 0, {0}};
  int threads = o->threads < 1 ? 1 : o->threads > n ? (n > 0 ? n : 1) : o->threads;
  pthread_t tid[threads];
  int started = 0;
  for (; started < threads; started++)
    if (pthread_create(&tid[started], NULL, worker_main, &j) != 0) break;
  if (started == 0) worker_main(&j);
  for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);
  pthread_mutex_destroy(&j.mu);
  if (j.failed) return ist_fail(IST_ERR_IO, "VOC batch: %s", j.err);
  return IST_OK;
}
