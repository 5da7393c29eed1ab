/* IDX reader through zlib (gzread reads uncompressed files as they are). */
#include "host/idx.h"

#include <stdlib.h>
#include <zlib.h>

#include "host/checked.h"

/* The largest dimension and data size an IDX file may declare, and the first read's size. */
#define IDX_MAX_DIM (1 << 28)
#define IDX_MAX_BYTES ((int64_t)1 << 34)
#define IDX_FIRST_CHUNK ((int64_t)1 << 20)

/* Reads n bytes; `base` bytes of `whole` (for the message) were read before. */
static ist_status read_exact(gzFile f, const char *path, void *buf, size_t n, const char *what, size_t base, size_t whole) {
  size_t got = 0;
  while (got < n) {
    unsigned chunk = (n - got) > (1u << 30) ? (1u << 30) : (unsigned)(n - got);
    int r = gzread(f, (char *)buf + got, chunk);
    if (r < 0) {
      int errnum;
      const char *msg = gzerror(f, &errnum);
      return ist_fail(IST_ERR_FORMAT, "%s: corrupt data while reading %s (%s)", path, what, msg);
    }
    if (r == 0) return ist_fail(IST_ERR_FORMAT, "%s: truncated: %s has %zu of %zu bytes", path, what, base + got, whole);
    got += (size_t)r;
  }
  return IST_OK;
}

ist_status ist_idx_read_u8(const char *path, int ndim, int64_t *dims, uint8_t **data) {
  *data = NULL;
  gzFile f = gzopen(path, "rb");
  if (!f) return ist_fail(IST_ERR_IO, "%s: cannot open (missing or unreadable)", path);
  unsigned char head[4];
  ist_status st = read_exact(f, path, head, 4, "the header", 0, 4);
  if (st == IST_OK && (head[0] != 0 || head[1] != 0 || head[2] != 0x08 || head[3] != ndim))
    st = ist_fail(IST_ERR_FORMAT, "%s: wrong magic number %02x%02x%02x%02x (expected 000008%02x: unsigned bytes, %d dims)",
                  path, head[0], head[1], head[2], head[3], ndim, ndim);
  int64_t total = 1;
  for (int i = 0; st == IST_OK && i < ndim; i++) {
    unsigned char b[4];
    st = read_exact(f, path, b, 4, "the dimension sizes", 0, 4);
    if (st != IST_OK) break;
    dims[i] = ((int64_t)b[0] << 24) | ((int64_t)b[1] << 16) | ((int64_t)b[2] << 8) | (int64_t)b[3];
    if (dims[i] < 1 || dims[i] > IDX_MAX_DIM)
      st = ist_fail(IST_ERR_FORMAT, "%s: dimension %d has size %lld (allowed 1..%d)", path, i, (long long)dims[i],
                    IDX_MAX_DIM);
    else if (!ist_mul_i64(total, dims[i], &total) || total > IDX_MAX_BYTES)
      st = ist_fail(IST_ERR_FORMAT, "%s: dimensions give more than %lld bytes (allowed 1..%lld)", path,
                    (long long)IDX_MAX_BYTES, (long long)IDX_MAX_BYTES);
  }
  /* The data grow as they arrive: a small file that declares a huge size fails as truncated
   * before it costs more memory than it holds. */
  uint8_t *buf = NULL;
  for (int64_t got = 0; st == IST_OK && got < total;) {
    const int64_t want = got ? (got * 2 < total ? got * 2 : total) : (total < IDX_FIRST_CHUNK ? total : IDX_FIRST_CHUNK);
    uint8_t *nb = realloc(buf, (size_t)want);
    if (!nb) {
      st = ist_fail(IST_ERR_MEMORY, "%s: cannot allocate %lld bytes", path, (long long)want);
      break;
    }
    buf = nb;
    st = read_exact(f, path, buf + got, (size_t)(want - got), "the data", (size_t)got, (size_t)total);
    got = want;
  }
  if (st == IST_OK) {
    char extra;
    int r = gzread(f, &extra, 1);
    if (r != 0) st = ist_fail(IST_ERR_FORMAT, "%s: %s after %lld data bytes", path, r > 0 ? "trailing bytes" : "corrupt data", (long long)total);
  }
  gzclose(f);
  if (st != IST_OK) {
    free(buf);
    return st;
  }
  *data = buf;
  return IST_OK;
}
