/* JPEG data sets: the file lists of an ImageFolder tree or of TinyImageNet-200, and batches
 * decoded by libjpeg-turbo on worker threads. After handing out a batch, the workers start on
 * the one the caller will most likely ask for next (the next slice of the same order and seed),
 * so decoding overlaps the training step. A guess that turns out wrong
 * is dropped and the batch decoded then: results never depend on the prefetch. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <turbojpeg.h>

#include "host/checked.h"
#include "host/dataset.h"

/* The statistics torchvision's ImageNet models are trained with. */
static const float IMAGENET_MEAN[3] = {0.485f, 0.456f, 0.406f}, IMAGENET_STD[3] = {0.229f, 0.224f, 0.225f};

/* ---- file lists ---- */

typedef struct {
  char **v;
  int64_t n, cap;
} strvec;

static int strvec_push(strvec *s, const char *str) {
  if (s->n == s->cap) {
    int64_t cap = s->cap ? 2 * s->cap : 64;
    char **v = realloc(s->v, sizeof(char *) * (size_t)cap);
    if (!v) return 0;
    s->v = v, s->cap = cap;
  }
  return (s->v[s->n] = strdup(str)) ? (s->n++, 1) : 0;
}

static void strvec_free(strvec *s) {
  for (int64_t i = 0; i < s->n; i++) free(s->v[i]);
  free(s->v);
  memset(s, 0, sizeof *s);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int is_jpeg_name(const char *name) {
  const char *dot = strrchr(name, '.');
  return dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

/* The sorted names in dir: its subdirectories (dirs = 1) or its JPEG files (dirs = 0). */
static ist_status list_dir(const char *dir, int dirs, strvec *out) {
  DIR *dp = opendir(dir);
  if (!dp) return ist_fail(IST_ERR_IO, "%s: cannot open directory (%s)", dir, strerror(errno));
  ist_status st = IST_OK;
  for (struct dirent *e; st == IST_OK && (e = readdir(dp));) {
    if (e->d_name[0] == '.') continue;
    if (!dirs && !is_jpeg_name(e->d_name)) continue;
    /* The entry's type from readdir where the filesystem gives it (no stat per file: ImageNet's
     * training set is 1.28 million files), else from stat (symbolic links are followed). */
    int is_dir = e->d_type == DT_DIR, is_file = e->d_type == DT_REG;
    if (e->d_type == DT_UNKNOWN || e->d_type == DT_LNK) {
      char path[4096];
      struct stat sb;
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      if (stat(path, &sb) != 0) continue;
      is_dir = S_ISDIR(sb.st_mode), is_file = S_ISREG(sb.st_mode);
    }
    if (dirs ? is_dir : is_file)
      if (!strvec_push(out, e->d_name)) st = ist_fail(IST_ERR_MEMORY, "%s: out of memory listing files", dir);
  }
  closedir(dp);
  if (st == IST_OK && out->n > 1) qsort(out->v, (size_t)out->n, sizeof(char *), cmp_str);
  return st;
}

/* Appends the JPEG files of dir with label. */
static ist_status add_class_dir(const char *dir, int32_t label, strvec *paths, int32_t **labels) {
  strvec names = {0};
  ist_status st = list_dir(dir, 0, &names);
  if (st == IST_OK && names.n == 0) st = ist_fail(IST_ERR_FORMAT, "%s: no .jpg/.jpeg files", dir);
  int32_t *lab = st == IST_OK ? realloc(*labels, sizeof(int32_t) * (size_t)(paths->n + names.n)) : NULL;
  if (st == IST_OK && !lab) st = ist_fail(IST_ERR_MEMORY, "%s: out of memory listing files", dir);
  if (lab) *labels = lab;
  for (int64_t i = 0; st == IST_OK && i < names.n; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, names.v[i]);
    lab[paths->n] = label;
    if (!strvec_push(paths, path)) st = ist_fail(IST_ERR_MEMORY, "%s: out of memory listing files", dir);
  }
  strvec_free(&names);
  return st;
}

static int class_index(const strvec *classes, const char *name) {
  char *const *hit = classes->n ? bsearch(&name, classes->v, (size_t)classes->n, sizeof(char *), cmp_str) : NULL;
  return hit ? (int)(hit - classes->v) : -1;
}

/* ---- decoding ---- */

struct ist_image_files {
  char **paths;
  int64_t n;
  const int32_t *labels;
  ist_dataset shape; /* c, h, w, mean, std of the outputs (no data) */
  ist_jpeg_options o;
  pthread_t *workers;
  int nworkers, stop;
  pthread_mutex_t mu;
  pthread_cond_t wake, done;
  /* The job: images jidx[0..jn) (order positions jstart…) into buf/ybuf, augmented with jaug (if
   * jaug_on) and seed jseed. */
  int64_t *jidx, jstart;
  int64_t last_start; /* of the previous request (-1: none), to guess the stride of the next */
  int jn, jnext, jfinished, jposted, jaug_on, cap;
  ist_augment jaug;
  uint64_t jseed;
  float *buf;
  int32_t *ybuf;
  int failed;
  char err[1024];
};

/* What one worker keeps between images. */
typedef struct {
  tjhandle tj;
  unsigned char *bytes, *pixels;
  size_t bytes_cap, pixels_cap;
  float *tmp;
} scratch;

static int grow(void *pp, size_t *cap, size_t need) {
  if (need <= *cap) return 1;
  void *p = realloc(*(void **)pp, need);
  if (!p) return 0;
  *(void **)pp = p, *cap = need;
  return 1;
}

/* The bytes a JPEG of at most max_pixels pixels may take: far more than any encoder writes. */
static size_t max_file_bytes(int64_t max_pixels) { return (size_t)max_pixels * 8 + ((size_t)1 << 24); }

/* Reads the file at path into s->bytes (*len bytes); on failure writes the reason into err. */
static int read_jpeg(const char *path, int64_t max_pixels, scratch *s, size_t *len, char *err, size_t errcap) {
  uint8_t *data;
  if (ist_read_file(path, max_file_bytes(max_pixels), &data, len) != IST_OK) {
    snprintf(err, errcap, "%s", ist_last_error());
    return 0;
  }
  if (*len == 0) {
    free(data);
    snprintf(err, errcap, "%s: cannot read (empty file)", path);
    return 0;
  }
  free(s->bytes);
  s->bytes = data, s->bytes_cap = *len + 1;
  return 1;
}

/* The frame's size and colour space from the header, checked against max_pixels before any
 * pixel memory is sized from them; a stream without a frame (tables only) is an error. */
static int jpeg_header(tjhandle tj, const char *path, const unsigned char *bytes, size_t len, int64_t max_pixels,
                       int *W, int *H, int *subsamp, int *cs, char *err, size_t errcap) {
  *W = *H = 0;
  if (tjDecompressHeader3(tj, bytes, (unsigned long)len, W, H, subsamp, cs) != 0) {
    snprintf(err, errcap, "%s: not a JPEG file (%s)", path, tjGetErrorStr2(tj));
    return 0;
  }
  if (*W < 1 || *H < 1) {
    snprintf(err, errcap, "%s: JPEG header has no frame (width × height %d × %d; tables only?)", path, *W, *H);
    return 0;
  }
  if ((int64_t)*W * *H > max_pixels) {
    snprintf(err, errcap, "%s: header declares %d × %d = %lld pixels, more than --max-image-pixels %lld allows",
             path, *W, *H, (long long)*W * *H, (long long)max_pixels);
    return 0;
  }
  return 1;
}

/* Decodes image i of the job into dst (c × size × size, normalized and augmented); on failure
 * writes the reason, naming the file, into err. */
static void decode_one(ist_image_files *f, int i, scratch *s, float *dst, char *err, size_t errcap) {
  const char *path = f->paths[f->jidx[i]];
  const ist_augment *aug = f->jaug_on ? &f->jaug : NULL;
  const int size = f->o.size;
  size_t len = 0;
  if (!read_jpeg(path, f->o.max_pixels, s, &len, err, errcap)) return;
  int W = 0, H = 0, subsamp, cs;
  if (!jpeg_header(s->tj, path, s->bytes, len, f->o.max_pixels, &W, &H, &subsamp, &cs, err, errcap)) return;
  ist_rng rng;
  ist_rng_for(&rng, f->jseed, (uint64_t)(f->jstart + i));
  /* The box of the original image that becomes the output, in original pixels. */
  double by, bx, bh, bw;
  if (aug && aug->rrc_min_scale > 0) {
    int iy, ix, ih, iw;
    ist_rrc_box(H, W, aug->rrc_min_scale, &rng, &iy, &ix, &ih, &iw);
    by = iy, bx = ix, bh = ih, bw = iw;
  } else { /* shorter side resized to S, then the centre size × size */
    const double S = aug ? size : size * (double)f->o.eval_resize, side = (W < H ? W : H) * size / S;
    bh = bw = side;
    by = (H - side) / 2, bx = (W - side) / 2;
  }
  /* libjpeg-turbo's DCT scaling: the smallest decoded size that keeps at least size pixels across
   * the box (so resampling only shrinks, by less than 2×), which also skips most of the IDCT work. */
  int nsf, sw = W, sh = H;
  const tjscalingfactor *sf = tjGetScalingFactors(&nsf);
  for (int k = 0; sf && k < nsf; k++) {
    const int w2 = TJSCALED(W, sf[k]), h2 = TJSCALED(H, sf[k]);
    if (sf[k].num <= sf[k].denom && w2 < sw && bw * w2 / W >= size && bh * h2 / H >= size) sw = w2, sh = h2;
  }
  const int cmyk = cs == TJCS_CMYK || cs == TJCS_YCCK, px = cmyk ? 4 : 3;
  if (!grow(&s->pixels, &s->pixels_cap, (size_t)sw * sh * px)) {
    snprintf(err, errcap, "%s: out of memory for %dx%d pixels", path, sw, sh);
    return;
  }
  /* Warnings (a truncated file, corrupt data) fail too: a damaged image is never trained on. */
  if (tjDecompress2(s->tj, s->bytes, (unsigned long)len, s->pixels, sw, 0, sh, cmyk ? TJPF_CMYK : TJPF_RGB,
                    TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS) != 0) {
    snprintf(err, errcap, "%s: corrupt or truncated JPEG (%s)", path, tjGetErrorStr2(s->tj));
    return;
  }
  /* Bilinear resampling of the box (pixel centres, align_corners = false) into size × size. */
  float *out = aug ? s->tmp : dst;
  const double ky = (double)sh / H, kx = (double)sw / W;
  const int64_t plane = (int64_t)size * size;
  for (int y = 0; y < size; y++) {
    double fy = (by + (y + 0.5) * bh / size) * ky - 0.5;
    fy = fy < 0 ? 0 : fy > sh - 1 ? sh - 1 : fy;
    const int y0 = (int)fy, y1 = y0 + 1 < sh ? y0 + 1 : y0;
    const float wy = (float)(fy - y0);
    for (int x = 0; x < size; x++) {
      double fx = (bx + (x + 0.5) * bw / size) * kx - 0.5;
      fx = fx < 0 ? 0 : fx > sw - 1 ? sw - 1 : fx;
      const int x0 = (int)fx, x1 = x0 + 1 < sw ? x0 + 1 : x0;
      const float wx = (float)(fx - x0);
      const unsigned char *p[4] = {s->pixels + ((size_t)y0 * sw + x0) * px, s->pixels + ((size_t)y0 * sw + x1) * px,
                                   s->pixels + ((size_t)y1 * sw + x0) * px, s->pixels + ((size_t)y1 * sw + x1) * px};
      for (int c = 0; c < 3; c++) {
        float v[4];
        for (int q = 0; q < 4; q++) /* Adobe CMYK JPEGs store inverted inks: R = C·K/255 etc. */
          v[q] = cmyk ? p[q][c] * p[q][3] / 255.0f : p[q][c];
        const float val = (1 - wy) * ((1 - wx) * v[0] + wx * v[1]) + wy * ((1 - wx) * v[2] + wx * v[3]);
        out[c * plane + (int64_t)y * size + x] = (val / 255.0f - f->shape.mean[c]) / f->shape.std[c];
      }
    }
  }
  if (aug) { /* the crop is done: the flip, padded crop and jitter of the in-memory path */
    ist_augment rest = *aug;
    rest.rrc_min_scale = 0;
    ist_augment_image(&f->shape, s->tmp, dst, &rest, &rng);
  }
}

static void *worker_main(void *arg) {
  ist_image_files *f = arg;
  scratch s = {.tj = tjInitDecompress(), .tmp = malloc(sizeof(float) * 3 * (size_t)f->o.size * f->o.size)};
  const int64_t sz = 3 * (int64_t)f->o.size * f->o.size;
  pthread_mutex_lock(&f->mu);
  for (;;) {
    while (!f->stop && f->jnext >= f->jn) pthread_cond_wait(&f->wake, &f->mu);
    if (f->stop) break;
    const int i = f->jnext++;
    pthread_mutex_unlock(&f->mu);
    char err[1024] = "";
    if (!s.tj || !s.tmp) snprintf(err, sizeof err, "JPEG decoder: out of memory");
    else decode_one(f, i, &s, f->buf + i * sz, err, sizeof err);
    pthread_mutex_lock(&f->mu);
    f->ybuf[i] = f->labels[f->jidx[i]];
    if (err[0] && !f->failed) {
      f->failed = 1;
      snprintf(f->err, sizeof f->err, "%s", err);
    }
    f->jfinished++;
    pthread_cond_broadcast(&f->done);
  }
  pthread_mutex_unlock(&f->mu);
  if (s.tj) tjDestroy(s.tj);
  free(s.bytes);
  free(s.pixels);
  free(s.tmp);
  return NULL;
}

/* With f->mu held: lets the workers finish what they took of the current job and drops the rest. */
static void drop_job(ist_image_files *f) {
  const int taken = f->jnext;
  f->jn = f->jnext = taken;
  while (f->jfinished < taken) pthread_cond_wait(&f->done, &f->mu);
  f->jposted = 0;
}

/* With f->mu held and no job running: posts images order[start..start+n) (order NULL: identity). */
static int post_job(ist_image_files *f, const int32_t *order, int64_t start, int n, const ist_augment *aug,
                    uint64_t seed) {
  if (n > f->cap) {
    const int64_t sz = 3 * (int64_t)f->o.size * f->o.size;
    int64_t *idx = realloc(f->jidx, sizeof(int64_t) * (size_t)n);
    if (idx) f->jidx = idx;
    float *buf = realloc(f->buf, sizeof(float) * (size_t)(n * sz));
    if (buf) f->buf = buf;
    int32_t *y = realloc(f->ybuf, sizeof(int32_t) * (size_t)n);
    if (y) f->ybuf = y;
    if (!idx || !buf || !y) return 0;
    f->cap = n;
  }
  for (int i = 0; i < n; i++) f->jidx[i] = order ? order[start + i] : start + i;
  f->jstart = start;
  f->jaug_on = aug != NULL;
  if (aug) f->jaug = *aug;
  f->jseed = seed;
  f->failed = 0;
  f->jfinished = f->jnext = 0;
  f->jn = n;
  f->jposted = 1;
  pthread_cond_broadcast(&f->wake);
  return 1;
}

static int job_is(const ist_image_files *f, const int32_t *order, int64_t start, int n, const ist_augment *aug,
                  uint64_t seed) {
  if (!f->jposted || f->jn != n || f->jstart != start || f->jaug_on != (aug != NULL) || f->jseed != seed) return 0;
  if (aug && memcmp(&f->jaug, aug, sizeof *aug)) return 0;
  for (int i = 0; i < n; i++)
    if (f->jidx[i] != (order ? order[start + i] : start + i)) return 0;
  return 1;
}

ist_status ist_image_files_batch(const ist_dataset *d, const int32_t *order, int64_t start, int n, float *x,
                                 int32_t *y, const ist_augment *aug, uint64_t seed) {
  ist_image_files *f = d->files;
  const int64_t sz = 3 * (int64_t)f->o.size * f->o.size;
  ist_status st = IST_OK;
  pthread_mutex_lock(&f->mu);
  if (!job_is(f, order, start, n, aug, seed)) {
    drop_job(f);
    if (!post_job(f, order, start, n, aug, seed)) st = ist_fail(IST_ERR_MEMORY, "JPEG batch of %d: out of memory", n);
  }
  if (st == IST_OK) {
    while (f->jfinished < f->jn) pthread_cond_wait(&f->done, &f->mu);
    f->jposted = 0;
    if (f->failed) {
      st = ist_fail(IST_ERR_FORMAT, "%s", f->err);
    } else {
      memcpy(x, f->buf, sizeof(float) * (size_t)(n * sz));
      memcpy(y, f->ybuf, sizeof(int32_t) * (size_t)n);
      /* The likely next request: as far on in the same order (and seed) as this one was from the
       * previous one (a data-parallel rank strides over the other ranks' batches), else the next slice. */
      const int64_t next = start + (f->last_start >= 0 && start > f->last_start ? start - f->last_start : n);
      f->last_start = start;
      if (next < d->n) post_job(f, order, next, (int)(d->n - next < n ? d->n - next : n), aug, seed);
    }
  }
  pthread_mutex_unlock(&f->mu);
  return st;
}

void ist_image_files_free(ist_image_files *f) {
  pthread_mutex_lock(&f->mu);
  f->stop = 1;
  pthread_cond_broadcast(&f->wake);
  pthread_mutex_unlock(&f->mu);
  for (int t = 0; t < f->nworkers; t++) pthread_join(f->workers[t], NULL);
  pthread_mutex_destroy(&f->mu);
  pthread_cond_destroy(&f->wake);
  pthread_cond_destroy(&f->done);
  for (int64_t i = 0; i < f->n; i++) free(f->paths[i]);
  free(f->paths);
  free(f->workers);
  free(f->jidx);
  free(f->buf);
  free(f->ybuf);
  free(f);
}

/* Makes out a file data set over paths/labels (taking both), keeping an evenly spread subset of
 * limit images when 0 < limit < paths->n. */
/* Every file's header (size and frame within o->max_pixels), before any training step: a bad
 * validation image fails now, not after the first epoch. Reads each file's first 64 KiB, all of it
 * when the frame comes later. */
static ist_status check_headers(char *const *paths, int64_t n, const ist_jpeg_options *o) {
  tjhandle tj = tjInitDecompress();
  if (!tj) return ist_fail(IST_ERR_MEMORY, "JPEG decoder: out of memory");
  enum { PREFIX = 1 << 16 };
  unsigned char *head = malloc(PREFIX);
  scratch s = {.tj = tj};
  char err[1024] = "";
  for (int64_t i = 0; head && !err[0] && i < n; i++) {
    FILE *fp = fopen(paths[i], "rb");
    size_t got = fp ? fread(head, 1, PREFIX, fp) : 0;
    if (fp) fclose(fp);
    int W, H, subsamp, cs;
    if (got > 0 && tjDecompressHeader3(tj, head, (unsigned long)got, &W, &H, &subsamp, &cs) == 0 && W > 0 && H > 0) {
      jpeg_header(tj, paths[i], head, got, o->max_pixels, &W, &H, &subsamp, &cs, err, sizeof err);
      continue;
    }
    size_t len;
    if (read_jpeg(paths[i], o->max_pixels, &s, &len, err, sizeof err))
      jpeg_header(tj, paths[i], s.bytes, len, o->max_pixels, &W, &H, &subsamp, &cs, err, sizeof err);
  }
  tjDestroy(tj);
  free(s.bytes);
  ist_status st = !head ? ist_fail(IST_ERR_MEMORY, "JPEG headers: out of memory") : err[0] ? ist_fail(IST_ERR_FORMAT, "%s", err) : IST_OK;
  free(head);
  return st;
}

static ist_status make_dataset(strvec *paths, int32_t *labels, int classes, const ist_jpeg_options *o, int64_t limit,
                               int check, ist_dataset *out) {
  if (limit > 0 && limit < paths->n) {
    for (int64_t i = 0; i < limit; i++) {
      const int64_t j = i * paths->n / limit;
      char *keep = paths->v[j];
      paths->v[j] = paths->v[i]; /* j ≥ i: the slot j held is not needed again */
      paths->v[i] = keep;
      labels[i] = labels[j];
    }
    for (int64_t i = limit; i < paths->n; i++) free(paths->v[i]);
    paths->n = limit;
  }
  ist_status cs = check ? check_headers(paths->v, paths->n, o) : IST_OK;
  if (cs != IST_OK) {
    strvec_free(paths);
    free(labels);
    return cs;
  }
  ist_image_files *f = calloc(1, sizeof *f);
  if (!f || !(f->workers = calloc((size_t)o->threads, sizeof(pthread_t)))) {
    free(f);
    strvec_free(paths);
    free(labels);
    return ist_fail(IST_ERR_MEMORY, "JPEG data set: out of memory");
  }
  *out = (ist_dataset){.n = paths->n, .c = 3, .h = o->size, .w = o->size, .classes = classes, .labels = labels, .files = f};
  memcpy(out->mean, IMAGENET_MEAN, sizeof IMAGENET_MEAN);
  memcpy(out->std, IMAGENET_STD, sizeof IMAGENET_STD);
  f->paths = paths->v;
  f->n = paths->n;
  f->labels = labels;
  f->shape = *out;
  f->shape.files = NULL, f->shape.labels = NULL;
  f->o = *o;
  f->last_start = -1;
  pthread_mutex_init(&f->mu, NULL);
  pthread_cond_init(&f->wake, NULL);
  pthread_cond_init(&f->done, NULL);
  for (int t = 0; t < o->threads; t++) {
    if (pthread_create(&f->workers[t], NULL, worker_main, f) != 0) {
      f->nworkers = t;
      ist_dataset_free(out);
      return ist_fail(IST_ERR_MEMORY, "JPEG data set: cannot start decoding thread %d", t);
    }
  }
  f->nworkers = o->threads;
  return IST_OK;
}

static ist_status check_options(const ist_jpeg_options *o) {
  if (o->size < 8 || o->size > 4096) return ist_fail(IST_ERR_ARG, "--input-size: %d (8..4096 for JPEG data)", o->size);
  if (o->threads < 1 || o->threads > 256) return ist_fail(IST_ERR_ARG, "--loader-threads: %d (1..256)", o->threads);
  if (!(o->eval_resize >= 1.0f && o->eval_resize <= 4.0f))
    return ist_fail(IST_ERR_ARG, "--eval-resize: %g (1..4)", (double)o->eval_resize);
  if (o->max_pixels < 0 || o->max_pixels > IST_JPEG_MAX_PIXELS_LIMIT)
    return ist_fail(IST_ERR_ARG, "--max-image-pixels: %lld (1..%lld; 0: %d)", (long long)o->max_pixels,
                    (long long)IST_JPEG_MAX_PIXELS_LIMIT, IST_JPEG_MAX_PIXELS);
  return IST_OK;
}

static ist_status check_split(const char *split) {
  if (strcmp(split, "train") && strcmp(split, "val")) return ist_fail(IST_ERR_ARG, "JPEG split '%s' (train or val)", split);
  return IST_OK;
}

/* The sorted class folders of dir/train; fails when there are none. */
static ist_status train_classes(const char *dir, strvec *classes) {
  char path[4096];
  snprintf(path, sizeof path, "%s/train", dir);
  IST_TRY(list_dir(path, 1, classes));
  return classes->n ? IST_OK : ist_fail(IST_ERR_FORMAT, "%s: no class folders", path);
}

int ist_image_folder_classes(const char *dir) {
  strvec classes = {0};
  const int n = train_classes(dir, &classes) == IST_OK ? (int)classes.n : 0;
  strvec_free(&classes);
  return n;
}

/* An ImageFolder split: dir/split/<class>/ for each class folder, named as in dir/train. */
static ist_status list_folder_split(const char *dir, const char *split, const strvec *classes, strvec *paths,
                                    int32_t **labels) {
  char path[4096];
  strvec here = {0};
  snprintf(path, sizeof path, "%s/%s", dir, split);
  ist_status st = list_dir(path, 1, &here);
  for (int64_t k = 0; st == IST_OK && k < here.n; k++) {
    const int label = class_index(classes, here.v[k]);
    snprintf(path, sizeof path, "%s/%s/%s", dir, split, here.v[k]);
    st = label < 0 ? ist_fail(IST_ERR_FORMAT, "%s: class '%s' has no folder in %s/train", path, here.v[k], dir)
                   : add_class_dir(path, label, paths, labels);
  }
  if (st == IST_OK && paths->n == 0) st = ist_fail(IST_ERR_FORMAT, "%s/%s: no class folders", dir, split);
  strvec_free(&here);
  return st;
}

/* TinyImageNet's validation labels: lines "file<TAB>wnid<TAB>box…" of val_annotations.txt. */
static ist_status read_val_annotations(const char *dir, const strvec *classes, strvec *paths, int32_t **labels) {
  char path[4096], line[1024];
  snprintf(path, sizeof path, "%s/val/val_annotations.txt", dir);
  FILE *fp = fopen(path, "r");
  if (!fp) return ist_fail(IST_ERR_IO, "%s: cannot open (%s)", path, strerror(errno));
  ist_status st = IST_OK;
  for (int lineno = 1; st == IST_OK && fgets(line, sizeof line, fp); lineno++) {
    if (!strchr(line, '\n') && !feof(fp)) {
      st = ist_fail(IST_ERR_FORMAT, "%s:%d: line longer than %zu characters", path, lineno, sizeof line - 2);
      break;
    }
    if (line[0] == '\n' || line[0] == '\r') continue;
    char *save, *file = strtok_r(line, "\t\r\n", &save), *wnid = strtok_r(NULL, "\t\r\n", &save);
    int label = wnid ? class_index(classes, wnid) : -1;
    /* The box (x0, y0, x1, y1) is not used, but a line that has one must have a whole one. */
    int nbox = 0, box_ok = 1;
    for (char *b; (b = strtok_r(NULL, "\t\r\n", &save));) {
      int v;
      box_ok = box_ok && nbox < 4 && ist_parse_int(b, 0, 65535, &v);
      nbox++;
    }
    char img[4096];
    struct stat sb;
    if (!file || !wnid || !box_ok || (nbox != 0 && nbox != 4)) {
      st = ist_fail(IST_ERR_FORMAT, "%s:%d: expected 'file<TAB>wnid<TAB>x0<TAB>y0<TAB>x1<TAB>y1' (box values 0..65535)",
                    path, lineno);
    } else if (strchr(file, '/') || !strcmp(file, "..") || !strcmp(file, ".")) {
      st = ist_fail(IST_ERR_FORMAT, "%s:%d: file '%s' is not a plain file name in val/images", path, lineno, file);
    } else if (label < 0) {
      st = ist_fail(IST_ERR_FORMAT, "%s:%d: class '%s' has no folder in %s/train", path, lineno, wnid, dir);
    } else if (snprintf(img, sizeof img, "%s/val/images/%s", dir, file), stat(img, &sb) != 0 || !S_ISREG(sb.st_mode)) {
      st = ist_fail(IST_ERR_IO, "%s:%d: %s does not exist or is not a file", path, lineno, img);
    } else {
      int32_t *lab = realloc(*labels, sizeof(int32_t) * (size_t)(paths->n + 1));
      if (lab) *labels = lab, lab[paths->n] = label;
      if (!lab || !strvec_push(paths, img)) st = ist_fail(IST_ERR_MEMORY, "%s: out of memory", path);
    }
  }
  fclose(fp);
  if (st == IST_OK && paths->n == 0) st = ist_fail(IST_ERR_FORMAT, "%s: no images listed", path);
  return st;
}

/* A TinyImageNet split: train/<wnid>/images per class, or val/images by its annotations. */
static ist_status list_tiny_split(const char *dir, const char *split, const strvec *classes, strvec *paths,
                                  int32_t **labels) {
  if (strcmp(split, "train")) return read_val_annotations(dir, classes, paths, labels);
  ist_status st = IST_OK;
  for (int64_t k = 0; st == IST_OK && k < classes->n; k++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/train/%s/images", dir, classes->v[k]);
    st = add_class_dir(path, (int32_t)k, paths, labels);
  }
  return st;
}

typedef ist_status (*split_lister)(const char *dir, const char *split, const strvec *classes, strvec *paths,
                                   int32_t **labels);

/* Either layout: the classes from dir/train, the split's files from list, then the data set. */
static ist_status load_layout(const char *dir, const char *split, const ist_jpeg_options *o, int64_t limit,
                              ist_dataset *out, split_lister list) {
  memset(out, 0, sizeof *out);
  IST_TRY(check_options(o));
  ist_jpeg_options jo = *o;
  if (!jo.max_pixels) jo.max_pixels = IST_JPEG_MAX_PIXELS;
  IST_TRY(check_split(split));
  strvec classes = {0}, paths = {0};
  int32_t *labels = NULL;
  ist_status st = train_classes(dir, &classes);
  if (st == IST_OK) st = list(dir, split, &classes, &paths, &labels);
  const int nclasses = (int)classes.n;
  strvec_free(&classes);
  if (st != IST_OK) {
    strvec_free(&paths);
    free(labels);
    return st;
  }
  return make_dataset(&paths, labels, nclasses, &jo, limit, strcmp(split, "train") != 0, out);
}

ist_status ist_image_folder_load(const char *dir, const char *split, const ist_jpeg_options *o, int64_t limit,
                                 ist_dataset *out) {
  return load_layout(dir, split, o, limit, out, list_folder_split);
}

ist_status ist_tiny_imagenet_load(const char *dir, const char *split, const ist_jpeg_options *o, int64_t limit,
                                  ist_dataset *out) {
  return load_layout(dir, split, o, limit, out, list_tiny_split);
}
