/* IDX reader through zlib (gzread reads uncompressed files as they are). */
#include "host/idx.h"

#include <stdlib.h>
#include <zlib.h>

static ist_status read_exact(gzFile f, const char *path, void *buf, size_t n, const char *what) {
  size_t got = 0;
  while (got < n) {
    unsigned chunk = (n - got) > (1u << 30) ? (1u << 30) : (unsigned)(n - got);
    int r = gzread(f, (char *)buf + got, chunk);
    if (r < 0) {
      int errnum;
      const char *msg = gzerror(f, &errnum);
      return ist_fail(IST_ERR_FORMAT, "%s: corrupt data while reading %s (%s)", path, what, msg);
    }
    if (r == 0) return ist_fail(IST_ERR_FORMAT, "%s: truncated: %s has %zu of %zu bytes", path, what, got, n);
    got += (size_t)r;
  }
  return IST_OK;
}

ist_status ist_idx_read_u8(const char *path, int ndim, int64_t *dims, uint8_t **data) {
  *data = NULL;
  gzFile f = gzopen(path, "rb");
  if (!f) return ist_fail(IST_ERR_IO, "%s: cannot open (missing or unreadable)", path);
  unsigned char head[4];
  ist_status st = read_exact(f, path, head, 4, "the header");
  if (st == IST_OK && (head[0] != 0 || head[1] != 0 || head[2] != 0x08 || head[3] != ndim))
    st = ist_fail(IST_ERR_FORMAT, "%s: wrong magic number %02x%02x%02x%02x (expected 000008%02x: unsigned bytes, %d dims)",
                  path, head[0], head[1], head[2], head[3], ndim, ndim);
  int64_t total = 1;
  for (int i = 0; st == IST_OK && i < ndim; i++) {
    unsigned char b[4];
    st = read_exact(f, path, b, 4, "the dimension sizes");
    if (st != IST_OK) break;
    dims[i] = ((int64_t)b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
    if (dims[i] <= 0 || dims[i] > (1 << 28)) st = ist_fail(IST_ERR_FORMAT, "%s: dimension %d has size %lld", path, i, (long long)dims[i]);
    total *= dims[i];
    if (total > ((int64_t)1 << 34)) st = ist_fail(IST_ERR_FORMAT, "%s: implausible size %lld", path, (long long)total);
  }
  uint8_t *buf = NULL;
  if (st == IST_OK) {
    buf = malloc((size_t)total);
    if (!buf) st = ist_fail(IST_ERR_MEMORY, "%s: cannot allocate %lld bytes", path, (long long)total);
  }
  if (st == IST_OK) st = read_exact(f, path, buf, (size_t)total, "the data");
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
