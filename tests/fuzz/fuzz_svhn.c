/* libFuzzer: SVHN's MATLAB files through libmatio and the shape checks around it; the input is
 * test_32x32.mat. */
#include <matio.h>

#include "host/dataset.h"
#include "tests/fuzz/fuzz_util.h"

static char dir[1024], mat[1100];

/* A .mat with X (32 × 32 × 3 × n uint8) and y (n × 1 of class cls) in MATLAB 5 format. */
static void write_mat(const char *path, int n, enum matio_classes cls, enum matio_compression comp) {
  mat_t *m = Mat_CreateVer(path, NULL, MAT_FT_MAT5);
  if (!m) abort();
  size_t xd[4] = {32, 32, 3, (size_t)n}, yd[2] = {(size_t)n, 1};
  uint8_t *x = malloc((size_t)n * 3072);
  double yv[8];
  float yf[8];
  uint8_t yu[8];
  for (int i = 0; i < n * 3072; i++) x[i] = (uint8_t)(i * 31);
  for (int i = 0; i < n; i++) yv[i] = 1 + i % 10, yf[i] = (float)yv[i], yu[i] = (uint8_t)yv[i];
  const enum matio_types t = cls == MAT_C_DOUBLE ? MAT_T_DOUBLE : cls == MAT_C_SINGLE ? MAT_T_SINGLE : MAT_T_UINT8;
  void *y = cls == MAT_C_DOUBLE ? (void *)yv : cls == MAT_C_SINGLE ? (void *)yf : (void *)yu;
  matvar_t *vx = Mat_VarCreate("X", MAT_C_UINT8, MAT_T_UINT8, 4, xd, x, 0);
  matvar_t *vy = Mat_VarCreate("y", cls, t, 2, yd, y, 0);
  if (!vx || !vy || Mat_VarWrite(m, vx, comp) != 0 || Mat_VarWrite(m, vy, comp) != 0) abort();
  Mat_VarFree(vx);
  Mat_VarFree(vy);
  Mat_Close(m);
  free(x);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  fuzz_path(dir, sizeof dir, "svhn");
  fuzz_mkdir(dir);
  snprintf(mat, sizeof mat, "%s/test_32x32.mat", dir);
  if (fuzz_seed_dir()) {
    char p[1100];
    snprintf(p, sizeof p, "%s/seed.mat", dir);
    write_mat(p, 1, MAT_C_DOUBLE, MAT_COMPRESSION_NONE);
    fuzz_seed_file("one_image_double_labels", p);
    write_mat(p, 2, MAT_C_UINT8, MAT_COMPRESSION_ZLIB);
    fuzz_seed_file("two_images_uint8_labels_zlib", p);
    write_mat(p, 1, MAT_C_SINGLE, MAT_COMPRESSION_ZLIB);
    fuzz_seed_file("one_image_single_labels_zlib", p);
    exit(0);
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_write(mat, data, size);
  ist_dataset d;
  if (ist_svhn_load(dir, "test", 0, &d) == IST_OK) ist_dataset_free(&d);
  return 0;
}
