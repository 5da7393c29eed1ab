/* JPEG loading throughput: images per second decoded, cropped, flipped and normalized into batches
 * by insitu's JPEG data sets (libjpeg-turbo on worker threads), against PIL + NumPy with a pool of
 * worker processes (what a torchvision DataLoader does) in the same run, with the ratio.
 * Without --data it writes synthetic data sets first (ImageNet-like 500×375 photos-like JPEGs and
 * TinyImageNet-like 64×64 ones) under --work. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <turbojpeg.h>

#include "host/cli.h"
#include "host/spawn.h"
#include "host/dataset.h"
#include "host/rng.h"

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* A w × h JPEG (quality 90, 4:2:0, like most photos) of smooth colour fields, edges and noise, so
 * that it compresses about as well as a photo does. */
static ist_status write_photo(const char *path, int w, int h, ist_rng *rng) {
  unsigned char *rgb = malloc((size_t)w * h * 3);
  if (!rgb) return ist_fail(IST_ERR_MEMORY, "out of memory");
  const float fx = 0.01f + 0.05f * ist_rng_uniform(rng), fy = 0.01f + 0.05f * ist_rng_uniform(rng);
  const float base[3] = {255 * ist_rng_uniform(rng), 255 * ist_rng_uniform(rng), 255 * ist_rng_uniform(rng)};
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++) {
        float v = base[c] * (0.6f + 0.4f * sinf(fx * x * (c + 1) + fy * y)) + 40 * ((x / 37 + y / 29) % 2) +
                  14 * ist_rng_normal(rng);
        rgb[((size_t)y * w + x) * 3 + c] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
      }
  tjhandle tj = tjInitCompress();
  unsigned char *out = NULL;
  unsigned long size = 0;
  ist_status st = IST_OK;
  if (!tj || tjCompress2(tj, rgb, w, 0, h, TJPF_RGB, &out, &size, TJSAMP_420, 90, 0) != 0) {
    st = ist_fail(IST_ERR_IO, "%s: cannot compress", path);
  } else {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(out, 1, size, f) != size) st = ist_fail(IST_ERR_IO, "%s: cannot write", path);
    if (f) fclose(f);
  }
  tjFree(out);
  if (tj) tjDestroy(tj);
  free(rgb);
  return st;
}

static void make_dir(const char *path) { mkdir(path, 0777); }

/* dir/train/cNN/iNNNN.jpg: classes × per_class images of w × h (kept if already there). */
static ist_status make_folder(const char *dir, int classes, int per_class, int w, int h) {
  char path[4096];
  ist_rng rng;
  ist_rng_seed(&rng, 1, 5);
  make_dir(dir);
  snprintf(path, sizeof path, "%s/train", dir);
  make_dir(path);
  for (int c = 0; c < classes; c++) {
    snprintf(path, sizeof path, "%s/train/c%02d", dir, c);
    make_dir(path);
    for (int i = 0; i < per_class; i++) {
      struct stat sb;
      snprintf(path, sizeof path, "%s/train/c%02d/i%04d.jpg", dir, c, i);
      if (stat(path, &sb) != 0) IST_TRY(write_photo(path, w, h, &rng));
    }
  }
  return IST_OK;
}

typedef struct {
  const char *name, *dir;
  int size, train; /* train: random-resized crop (or padded crop) + flip; else resize + centre crop */
  float rrc, eval_resize;
  int crop_pad;
} bench_case;

/* Images per second over `epochs` timed passes through d in a shuffled order (one untimed first). */
static ist_status time_case(const bench_case *c, int threads, int batch, int epochs, double *ips, int64_t *n) {
  const ist_jpeg_options o = {c->size, c->eval_resize, threads, 0};
  ist_dataset d;
  IST_TRY(ist_image_folder_load(c->dir, "train", &o, 0, &d));
  const ist_augment aug = {1, c->crop_pad, c->rrc, 0};
  float *x = malloc(sizeof(float) * (size_t)batch * 3 * c->size * c->size);
  int32_t *y = malloc(sizeof(int32_t) * (size_t)batch), *order = malloc(sizeof(int32_t) * (size_t)d.n);
  ist_status st = x && y && order ? IST_OK : ist_fail(IST_ERR_MEMORY, "out of memory");
  ist_rng rng;
  ist_rng_seed(&rng, 3, 1);
  double t0 = 0;
  for (int e = 0; st == IST_OK && e <= epochs; e++) {
    if (e == 1) t0 = now_s();
    for (int64_t i = 0; i < d.n; i++) order[i] = (int32_t)i;
    ist_rng_shuffle(&rng, order, d.n);
    for (int64_t s = 0; st == IST_OK && s + batch <= d.n; s += batch)
      st = ist_dataset_batch(&d, order, s, batch, x, y, c->train ? &aug : NULL, (uint64_t)e);
  }
  *n = d.n / batch * batch;
  *ips = (double)*n * epochs / (now_s() - t0);
  free(x);
  free(y);
  free(order);
  ist_dataset_free(&d);
  return st;
}

/* The PIL peer's images per second for case c ("RESULT ips" line), or 0 if it did not run. */
static double run_pil(const char *python, const char *script, const bench_case *c, int threads, int batch, int epochs) {
  char size[16], rrc[32], pad[16], resize[32], workers[16], b[16], e[16];
  snprintf(size, sizeof size, "%d", c->size);
  snprintf(rrc, sizeof rrc, "%g", (double)c->rrc);
  snprintf(pad, sizeof pad, "%d", c->crop_pad);
  snprintf(resize, sizeof resize, "%g", (double)c->eval_resize);
  snprintf(workers, sizeof workers, "%d", threads);
  snprintf(b, sizeof b, "%d", batch);
  snprintf(e, sizeof e, "%d", epochs);
  char *argv[] = {(char *)python, (char *)script, "--data", (char *)c->dir, "--size", size, "--mode",
                  c->train ? "train" : "eval", "--rrc", rrc, "--crop-pad", pad, "--eval-resize", resize, "--workers",
                  workers, "--batch", b, "--epochs", e, NULL};
  FILE *p;
  pid_t pid;
  if (ist_spawn_reader(argv, &p, &pid) != 0) return 0;
  char line[512];
  double ips = 0;
  while (fgets(line, sizeof line, p))
    if (sscanf(line, "RESULT %lf", &ips) != 1) fputs(line, stderr);
  return ist_spawn_finish(p, pid) == 0 ? ips : 0;
}

int main(int argc, char **argv) {
  int threads = 2, batch = 64, epochs = 2, no_pil = 0, help;
  const char *work = "/tmp/insitu_bench_jpeg", *script = "bench/jpeg_load_pil.py", *python = "/usr/bin/python3";
  ist_option opts[] = {
      {"threads", IST_OPT_INT, &threads, "decoding threads (ours) and worker processes (PIL's)", 1, 1024},
      {"batch", IST_OPT_INT, &batch, "batch size", 1, 65536},
      {"epochs", IST_OPT_INT, &epochs, "timed passes over each data set (after one untimed pass)", 1, 10000},
      {"work", IST_OPT_STRING, &work, "where the synthetic data sets are written (kept for the next run)", 0, 0},
      {"pil-script", IST_OPT_STRING, &script, "the PIL peer", 0, 0},
      {"python", IST_OPT_STRING, &python, "the Python that has PIL and NumPy (Debian: python3-pil, python3-numpy)", 0, 0},
      {"no-pil", IST_OPT_FLAG, &no_pil, "skip the PIL peer", 0, 0},
  };
  enum { NOPTS = sizeof opts / sizeof opts[0] };
  if (ist_cli_parse(argc, argv, 1, opts, NOPTS, &help) != IST_OK || threads < 1 || batch < 1 || epochs < 1) {
    fprintf(stderr, "bench_jpeg_load: error: %s\n",
            threads < 1 || batch < 1 || epochs < 1 ? "--threads, --batch, --epochs must be ≥ 1" : ist_last_error());
    return 1;
  }
  if (help) {
    ist_cli_print_help(stdout, "usage: bench_jpeg_load [flags]  (run from the repository root)", opts, NOPTS);
    return 0;
  }
  char imagenet[4096], tiny[4096];
  snprintf(imagenet, sizeof imagenet, "%s/imagenet", work);
  snprintf(tiny, sizeof tiny, "%s/tiny", work);
  make_dir(work);
  ist_status st = make_folder(imagenet, 4, 128, 500, 375);
  if (st == IST_OK) st = make_folder(tiny, 8, 256, 64, 64);
  if (st != IST_OK) {
    fprintf(stderr, "bench_jpeg_load: error: %s\n", ist_last_error());
    return 1;
  }
  const bench_case cases[] = {
      {"500x375 -> 224 train (RRC 0.08, flip)", imagenet, 224, 1, 0.08f, 1.0f, 0},
      {"500x375 -> 224 eval (256, centre)", imagenet, 224, 0, 0, 256.0f / 224.0f, 0},
      {"64x64 -> 64 train (pad 4, flip)", tiny, 64, 1, 0, 1.0f, 4},
  };
  enum { NCASES = sizeof cases / sizeof cases[0] };
  printf("JPEG loading: decode + crop + flip + normalize into float batches of %d, %d threads/processes\n", batch,
         threads);
  printf("%-40s %8s %14s %14s %10s\n", "case", "images", "insitu img/s", "PIL img/s", "ratio (x)");
  for (int i = 0; i < NCASES; i++) {
    double ours, pil = 0;
    int64_t n;
    if (time_case(&cases[i], threads, batch, epochs, &ours, &n) != IST_OK) {
      fprintf(stderr, "bench_jpeg_load: error: %s\n", ist_last_error());
      return 1;
    }
    if (!no_pil) pil = run_pil(python, script, &cases[i], threads, batch, epochs);
    if (pil > 0) printf("%-40s %8lld %14.0f %14.0f %10.2f\n", cases[i].name, (long long)n, ours, pil, ours / pil);
    else printf("%-40s %8lld %14.0f %14s %10s\n", cases[i].name, (long long)n, ours, "n/a", "n/a");
    fflush(stdout);
  }
  return 0;
}
