/* SVHN's MATLAB files (read with libmatio): X is 32 × 32 × 3 × n uint8 in MATLAB's column-major
 * order (row fastest), y holds labels 1..10 with 10 for the digit 0. */
#include <matio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "host/dataset.h"

#define SVHN_SIDE 32
/* The extra split has 531131 images; a file declaring more than this is not SVHN. */
#define SVHN_MAX_IMAGES (1 << 21)
/* zlib's best compression ratio: a compressed variable holds at most this many bytes per file byte. */
#define ZLIB_MAX_RATIO 1032u
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
  /* The range first: converting a value outside int's (or NaN) to int is undefined. */
  if (!(v >= 1 && v <= 10) || v != (int)v) return -1;
  return (int)v % 10;
}

/* MATLAB 5 data elements: an 8-byte tag (type, byte count), or a small element packing both in
 * 4 bytes when the upper half of the first word is not zero. */
#define MAT_MI_INT8 1
#define MAT_MI_INT32 5
#define MAT_MI_UINT32 6
#define MAT_MI_MATRIX 14
#define MAT_MI_COMPRESSED 15
#define MAT_MX_DOUBLE 6
#define MAT_MX_UINT64 15
#define MAT_MAX_RANK 32
#define MAT_MAX_NAME 63

static uint32_t mat_u32(const unsigned char *p, int swap) {
  return swap ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
              : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* The leading sub-elements of a matrix (m: its n bytes after the tag, possibly only a prefix):
 * array flags, dimensions (2..32 int32), name (at most 63 bytes), each within the matrix. */
static int matrix_ok(const unsigned char *m, size_t n, size_t declared, int swap) {
  static const uint32_t want[3] = {MAT_MI_UINT32, MAT_MI_INT32, MAT_MI_INT8};
  size_t off = 0;
  for (int k = 0; k < 3 && off + 8 <= n; k++) {
    const uint32_t w0 = mat_u32(m + off, swap), type = w0 & 0xffff, small = w0 >> 16;
    const uint32_t bytes = small ? small : mat_u32(m + off + 4, swap);
    if (type != want[k]) return 0;
    if (k == 0 && bytes != 8) return 0;
    /* Numeric arrays only (mxDOUBLE_CLASS 6 … mxUINT64_CLASS 15): for cells, structs, objects and
     * functions libmatio allocates a pointer per element of the declared dimensions at once. */
    if (k == 0 && (off + 16 > n || m[off + 8 + (swap ? 3 : 0)] < MAT_MX_DOUBLE || m[off + 8 + (swap ? 3 : 0)] > MAT_MX_UINT64))
      return 0;
    if (k == 1 && (bytes % 4 || bytes < 8 || bytes > 4 * MAT_MAX_RANK)) return 0;
    if (k == 2 && bytes > MAT_MAX_NAME) return 0;
    const size_t len = small ? 4 : 8 + ((bytes + 7u) & ~7u);
    if (off + len > declared) return 0;
    off += len;
  }
  return 1;
}

/* Every top-level element of a MATLAB 5 file lies within the file, and every matrix (also the
 * start of each compressed one) has sane flags, rank and name sizes: libmatio allocates what these
 * say before it reads them. */
static ist_status check_elements(const char *path, int swap, uint64_t size) {
  FILE *f = fopen(path, "rb");
  if (!f) return ist_fail(IST_ERR_IO, "%s: cannot open", path);
  /* What is read of each element: enough for its matrix tag and leading sub-elements (inflated). */
  enum { PEEK = 4096 };
  unsigned char *buf = malloc(PEEK);
  ist_status st = buf ? IST_OK : ist_fail(IST_ERR_MEMORY, "%s: out of memory", path);
  for (uint64_t p = 128; st == IST_OK && p < size;) {
    unsigned char tag[8];
    if (size - p < 8 || fseek(f, (long)p, SEEK_SET) != 0 || fread(tag, 1, 8, f) != 8) {
      st = ist_fail(IST_ERR_FORMAT, "%s: truncated element tag at byte %llu", path, (unsigned long long)p);
      break;
    }
    const uint32_t type = mat_u32(tag, swap), bytes = mat_u32(tag + 4, swap);
    if (bytes > size - p - 8) {
      st = ist_fail(IST_ERR_FORMAT, "%s: element at byte %llu declares %u bytes, the file has %llu after it", path,
                    (unsigned long long)p, bytes, (unsigned long long)(size - p - 8));
      break;
    }
    const size_t peek = bytes < PEEK ? bytes : PEEK;
    int ok = 1;
    if ((type == MAT_MI_MATRIX || type == MAT_MI_COMPRESSED) && fread(buf, 1, peek, f) != peek) ok = 0;
    else if (type == MAT_MI_MATRIX) ok = matrix_ok(buf, peek, bytes, swap);
    else if (type == MAT_MI_COMPRESSED) {
      unsigned char head[8 + 8 + 8 + 8 + 4 * MAT_MAX_RANK + 8 + MAT_MAX_NAME + 1];
      z_stream z = {.next_in = buf, .avail_in = (uInt)peek, .next_out = head, .avail_out = sizeof head};
      ok = inflateInit(&z) == Z_OK;
      if (ok) {
        const int r = inflate(&z, Z_SYNC_FLUSH);
        const size_t got = sizeof head - z.avail_out;
        ok = (r == Z_OK || r == Z_STREAM_END || r == Z_BUF_ERROR) && got >= 8 && mat_u32(head, swap) == MAT_MI_MATRIX &&
             matrix_ok(head + 8, got - 8, mat_u32(head + 4, swap), swap);
        inflateEnd(&z);
      }
    }
    if (!ok)
      st = ist_fail(IST_ERR_FORMAT, "%s: malformed variable at byte %llu (a numeric array: flags, 2..%d dimensions, a name of at most %d bytes)",
                    path, (unsigned long long)p, MAT_MAX_RANK, MAT_MAX_NAME);
    p += 8 + (uint64_t)bytes;
    if (type == MAT_MI_MATRIX) p = (p + 7) & ~(uint64_t)7;
  }
  free(buf);
  fclose(f);
  return st;
}

/* A MATLAB 5 header: 116 bytes of text starting "MATLAB 5.0 MAT-file", then the version 0x0100
 * and the byte-order mark at bytes 124..127. libmatio reads
 * anything else as a headerless MATLAB 4 file, whose sizes it trusts (a few bytes can make it
 * clear gigabytes). */
static ist_status check_header(const char *path, uint64_t size) {
  unsigned char h[128];
  FILE *f = fopen(path, "rb");
  const size_t got = f ? fread(h, 1, sizeof h, f) : 0;
  if (f) fclose(f);
  /* libmatio takes the version from bytes 124..125 whatever the text says: both must say 5.0.
   * (SVHN's files are MATLAB 5; version 7.3 files would reach HDF5's parser, not checked here.) */
  const int v5 = got == sizeof h && !memcmp(h, "MATLAB 5.0 MAT-file", 19) &&
                 ((h[124] == 0x00 && h[125] == 0x01 && h[126] == 'I' && h[127] == 'M') ||
                  (h[124] == 0x01 && h[125] == 0x00 && h[126] == 'M' && h[127] == 'I'));
  if (!v5)
    return ist_fail(IST_ERR_FORMAT, "%s: no MATLAB 5.0 file header (the first 128 bytes: \"MATLAB 5.0 MAT-file\"…, "
                    "version 0x0100 and IM/MI at byte 124; SVHN's files are MATLAB 5.0)", path);
  return check_elements(path, h[126] == 'M', size);
}

/* X's and y's declared shapes: X 32 × 32 × 3 × n uint8 with n ≤ SVHN_MAX_IMAGES and no more
 * pixels than the file could hold compressed; y one label per image. */
static ist_status check_info(const char *path, mat_t *mat, uint64_t file_bytes) {
  matvar_t *x = Mat_VarReadInfo(mat, "X");
  ist_status st = IST_OK;
  if (!x) st = ist_fail(IST_ERR_FORMAT, "%s: no readable X variable (truncated?)", path);
  else if (x->class_type != MAT_C_UINT8 || x->rank != 4 || !x->dims || x->dims[0] != SVHN_SIDE ||
           x->dims[1] != SVHN_SIDE || x->dims[2] != 3)
    st = ist_fail(IST_ERR_FORMAT, "%s: X is not a 32x32x3xN uint8 array", path);
  else if (x->dims[3] < 1 || x->dims[3] > SVHN_MAX_IMAGES || (uint64_t)x->dims[3] * 3 * SVHN_SIDE * SVHN_SIDE > file_bytes * ZLIB_MAX_RATIO)
    st = ist_fail(IST_ERR_FORMAT, "%s: X declares %zu images (allowed 1..%d, and no more than the file's %llu bytes can hold)",
                  path, x->dims[3], SVHN_MAX_IMAGES, (unsigned long long)file_bytes);
  const size_t n = st == IST_OK ? x->dims[3] : 0;
  if (x) Mat_VarFree(x);
  if (st != IST_OK) return st;
  matvar_t *y = Mat_VarReadInfo(mat, "y");
  if (!y) return ist_fail(IST_ERR_FORMAT, "%s: no readable y variable (truncated?)", path);
  /* Each of y's dimensions bounded before their product: libmatio allocates it when reading y. */
  const int ok = y->rank == 2 && y->dims && y->dims[0] <= SVHN_MAX_IMAGES && y->dims[1] <= SVHN_MAX_IMAGES &&
                 (uint64_t)y->dims[0] * y->dims[1] == n;
  Mat_VarFree(y);
  if (!ok) return ist_fail(IST_ERR_FORMAT, "%s: y does not hold one label per image of X (%zu)", path, n);
  return IST_OK;
}

static ist_status convert(const char *path, const matvar_t *x, const matvar_t *y, int64_t limit, ist_dataset *out) {
  if (x->class_type != MAT_C_UINT8 || x->rank != 4 || x->dims[0] != SVHN_SIDE || x->dims[1] != SVHN_SIDE ||
      x->dims[2] != 3 || !x->data)
    return ist_fail(IST_ERR_FORMAT, "%s: X is not a 32x32x3xN uint8 array", path);
  const int64_t n_all = (int64_t)x->dims[3];
  const size_t ysize = y->class_type == MAT_C_DOUBLE ? 8 : y->class_type == MAT_C_SINGLE ? 4 : 1;
  /* A complex array's data are two pointers (real, imaginary parts), not the values. */
  if (x->isComplex || y->isComplex) return ist_fail(IST_ERR_FORMAT, "%s: X and y must be real arrays, not complex", path);
  if (x->nbytes < (size_t)n_all * 3 * SVHN_SIDE * SVHN_SIDE)
    return ist_fail(IST_ERR_FORMAT, "%s: X holds fewer bytes than its shape needs", path);
  if (!y->data || y->rank != 2 || (int64_t)(y->dims[0] * y->dims[1]) != n_all || y->nbytes < (size_t)n_all * ysize)
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
  struct stat sb;
  if (stat(path, &sb) != 0) return ist_fail(IST_ERR_IO, "%s: cannot open (is --data the SVHN directory?)", path);
  if (!S_ISREG(sb.st_mode)) return ist_fail(IST_ERR_IO, "%s: is not a regular file", path);
  IST_TRY(check_header(path, (uint64_t)sb.st_size));
  mat_t *mat = Mat_Open(path, MAT_ACC_RDONLY);
  if (!mat) return ist_fail(IST_ERR_FORMAT, "%s: not a MATLAB file libmatio can read", path);
  /* The variables' headers first: their sizes are checked before libmatio allocates for the data. */
  matvar_t *x = NULL, *y = NULL;
  ist_status st = check_info(path, mat, (uint64_t)sb.st_size);
  if (st == IST_OK) {
    x = Mat_VarRead(mat, "X");
    y = Mat_VarRead(mat, "y");
    if (!x || !y) st = ist_fail(IST_ERR_FORMAT, "%s: no readable %s variable (truncated?)", path, !x ? "X" : "y");
  }
  if (st == IST_OK) st = convert(path, x, y, limit, out);
  if (x) Mat_VarFree(x);
  if (y) Mat_VarFree(y);
  Mat_Close(mat);
  if (st != IST_OK) ist_dataset_free(out);
  return st;
}
