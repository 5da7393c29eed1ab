/* What the libFuzzer harnesses share: a scratch folder per process (on /dev/shm when there is
 * one), writing an input to a file there, and the seed-writing mode (FUZZ_WRITE_SEEDS=DIR makes a
 * harness write its seed corpus into DIR and exit, so the committed seeds can be regenerated). */
#ifndef IST_FUZZ_UTIL_H
#define IST_FUZZ_UTIL_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char fuzz_dir_buf[512];

/* A fresh folder for this process, removed by nobody: it lives on tmpfs and holds a few files. */
static inline const char *fuzz_dir(void) {
  if (fuzz_dir_buf[0]) return fuzz_dir_buf;
  struct stat sb;
  const char *base = getenv("TMPDIR");
  if (!base) base = stat("/dev/shm", &sb) == 0 ? "/dev/shm" : "/tmp";
  snprintf(fuzz_dir_buf, sizeof fuzz_dir_buf, "%s/insitu_fuzz_XXXXXX", base);
  if (!mkdtemp(fuzz_dir_buf)) {
    perror("fuzz: mkdtemp");
    abort();
  }
  return fuzz_dir_buf;
}

/* dir/name (a static buffer per call site is the caller's). */
static inline void fuzz_path(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", fuzz_dir(), name); }

static inline void fuzz_write(const char *path, const void *data, size_t size) {
  FILE *f = fopen(path, "wb");
  if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
    perror(path);
    abort();
  }
}

static inline void fuzz_mkdir(const char *path) {
  if (mkdir(path, 0777) != 0) {
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
      perror(path);
      abort();
    }
  }
}

/* FUZZ_WRITE_SEEDS: the folder to write seeds into, or NULL. */
static inline const char *fuzz_seed_dir(void) { return getenv("FUZZ_WRITE_SEEDS"); }

static inline void fuzz_seed(const char *name, const void *data, size_t size) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", fuzz_seed_dir(), name);
  fuzz_write(path, data, size);
}

/* Copies a whole file into a seed. */
static inline void fuzz_seed_file(const char *name, const char *from) {
  FILE *f = fopen(from, "rb");
  if (!f) {
    perror(from);
    abort();
  }
  fseek(f, 0, SEEK_END);
  const long n = ftell(f);
  rewind(f);
  char *buf = malloc((size_t)n + 1);
  if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) abort();
  fclose(f);
  fuzz_seed(name, buf, (size_t)n);
  free(buf);
}
#endif
