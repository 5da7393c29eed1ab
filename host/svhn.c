/* SVHN's MATLAB files (read with libmatio): X is 32 × 32 × 3 × n uint8 in MATLAB's column-major
 * order (row fastest), y holds labels 1..10 with 10 for the digit 0. */
#include <matio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/dataset.h"

#define SVHN_SIDE 32
static const float SVHN_MEAN[3] = {0.4377f, 0.4438f, 0.4728f}, SVHN_STD[3] = {0.1980f, 0.2010f, 0.1970f};

/* Label i of y as a class 0..9, or −1 when it is not 1..10. */
static int label_at(const matvar_t *y, int64_t i) {
  double v;
  switch (y->class_type) {
    case MAT_C_DOUBLE: v = ((const double *)y->data)[i]; break;
    case MAT_C_SINGLE: v = ((const float *)y->data)[i]; break;
    case MAT_C_UINT8: v = ((const uint8_t *)y->data)[i]; break;
    default: return -1;
  }
  if (v != (int)v || v < 1 || v > 10) return -1;
  return (int)v % 10;
}

static ist_status convert(const char *path, const matvar_t *x, const matvar_t *y, int64_t limit, ist_dataset *out) {
  if (x->class_type != MAT_C_UINT8 || x->rank != 4 || x->dims[0] != SVHN_SIDE || x->dims[1] != SVHN_SIDE ||
      x->dims[2] != 3 || !x->data)
    return ist_fail(IST_ERR_FORMAT, "%s: X is not a 32x32x3xN uint8 array", path);
  const int64_t n_all = (int64_t)x->dims[3];
  if (!y->data || y->rank != 2 || (int64_t)(y->dims[0] * y->dims[1]) != n_all)
    return ist_fail(IST_ERR_FORMAT, "%s: y does not hold one label per image of X (%lld)", path, (long long)n_all);
  const int64_t n = limit > 0 && limit < n_all ? limit : n_all, pixels = 3 * SVHN_SIDE * SVHN_SIDE;
  out->n = n;
  out->c = 3;
  out->h = out->w = SVHN_SIDE;
  out->classes = 10;
  for (int c = 0; c < 3; c++) out->mean[c] = SVHN_MEAN[c], out->std[c] = SVHN_STD[c];
  out->images = malloc(sizeof(float) * (size_t)(n * pixels));
  out->labels = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
  if (!out->images || !out->labels) return ist_fail(IST_ERR_MEMORY, "%s: cannot allocate %lld images", path, (long long)n);
  const uint8_t *px = x->data;
  for (int64_t i = 0; i < n; i++) {
    const int lab = label_at(y, i);
    if (lab < 0) return ist_fail(IST_ERR_FORMAT, "%s: label %lld of y is not 1..10", path, (long long)i);
    out->labels[i] = lab;
    for (int ch = 0; ch < 3; ch++)
      for (int r = 0; r < SVHN_SIDE; r++)
        for (int col = 0; col < SVHN_SIDE; col++) {
          const uint8_t v = px[r + SVHN_SIDE * (col + SVHN_SIDE * (ch + 3 * i))];
          out->images[i * pixels + (ch * SVHN_SIDE + r) * SVHN_SIDE + col] = (v / 255.0f - SVHN_MEAN[ch]) / SVHN_STD[ch];
        }
  }
  return IST_OK;
}

ist_status ist_svhn_load(const char *dir, const char *split, int64_t limit, ist_dataset *out) {
  memset(out, 0, sizeof *out);
  char path[4096];
  snprintf(path, sizeof path, "%s/%s_32x32.mat", dir, split);
  FILE *probe = fopen(path, "rb");
  if (!probe) return ist_fail(IST_ERR_IO, "%s: cannot open (is --data the SVHN directory?)", path);
  fclose(probe);
  mat_t *mat = Mat_Open(path, MAT_ACC_RDONLY);
  if (!mat) return ist_fail(IST_ERR_FORMAT, "%s: not a MATLAB file libmatio can read", path);
  matvar_t *x = Mat_VarRead(mat, "X"), *y = Mat_VarRead(mat, "y");
  ist_status st;
  if (!x || !y) st = ist_fail(IST_ERR_FORMAT, "%s: no readable %s variable (truncated?)", path, !x ? "X" : "y");
  else st = convert(path, x, y, limit, out);
  if (x) Mat_VarFree(x);
  if (y) Mat_VarFree(y);
  Mat_Close(mat);
  if (st != IST_OK) ist_dataset_free(out);
  return st;
}
