/* Strict number parsing, overflow-checked arithmetic and bounded whole-file reads. */
#include "host/checked.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int ist_parse_i64_n(const char *text, size_t len, int64_t lo, int64_t hi, int64_t *out) {
  size_t i = 0;
  const int neg = len > 0 && text[0] == '-';
  if (neg) i++;
  if (i == len) return 0;
  /* Accumulate as a negative number: its range holds INT64_MIN too. */
  int64_t v = 0;
  for (; i < len; i++) {
    const char c = text[i];
    if (c < '0' || c > '9') return 0;
    if (v < (INT64_MIN + (c - '0')) / 10) return 0;
    v = v * 10 - (c - '0');
  }
  if (!neg) {
    if (v == INT64_MIN) return 0;
    v = -v;
  }
  if (v < lo || v > hi) return 0;
  *out = v;
  return 1;
}

int ist_parse_i64(const char *text, int64_t lo, int64_t hi, int64_t *out) {
  return ist_parse_i64_n(text, strlen(text), lo, hi, out);
}

int ist_parse_int(const char *text, int lo, int hi, int *out) {
  int64_t v;
  if (!ist_parse_i64(text, lo, hi, &v)) return 0;
  *out = (int)v;
  return 1;
}

int ist_parse_double(const char *text, double lo, double hi, double *out) {
  if (!text[0] || text[0] == ' ' || text[0] == '\t' || text[0] == '\n') return 0;
  char *end;
  errno = 0;
  const double x = strtod(text, &end);
  if (end == text || *end || errno == ERANGE || !isfinite(x) || x < lo || x > hi) return 0;
  *out = x;
  return 1;
}

int ist_mul_i64(int64_t a, int64_t b, int64_t *out) {
  if (a < 0 || b < 0) return 0;
  return !__builtin_mul_overflow(a, b, out);
}

int ist_add_i64(int64_t a, int64_t b, int64_t *out) {
  if (a < 0 || b < 0) return 0;
  return !__builtin_add_overflow(a, b, out);
}

ist_status ist_read_file(const char *path, size_t max_bytes, uint8_t **data, size_t *size) {
  *data = NULL;
  *size = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return ist_fail(IST_ERR_IO, "%s: cannot open (%s)", path, strerror(errno));
  struct stat sb;
  ist_status st = IST_OK;
  if (fstat(fileno(f), &sb) != 0) st = ist_fail(IST_ERR_IO, "%s: cannot read its size (%s)", path, strerror(errno));
  else if (S_ISDIR(sb.st_mode)) st = ist_fail(IST_ERR_IO, "%s: is a directory, not a file", path);
  else if (!S_ISREG(sb.st_mode)) st = ist_fail(IST_ERR_IO, "%s: is not a regular file", path);
  else if ((uint64_t)sb.st_size > (uint64_t)max_bytes)
    st = ist_fail(IST_ERR_FORMAT, "%s: %lld bytes, more than the %zu bytes allowed for it", path, (long long)sb.st_size,
                  max_bytes);
  const size_t n = st == IST_OK ? (size_t)sb.st_size : 0;
  uint8_t *buf = st == IST_OK ? malloc(n + 1) : NULL;
  if (st == IST_OK && !buf) st = ist_fail(IST_ERR_MEMORY, "%s: cannot allocate %zu bytes", path, n + 1);
  if (st == IST_OK && fread(buf, 1, n, f) != n) st = ist_fail(IST_ERR_IO, "%s: read failed (changed while reading?)", path);
  fclose(f);
  if (st != IST_OK) {
    free(buf);
    return st;
  }
  buf[n] = 0;
  *data = buf;
  *size = n;
  return IST_OK;
}
