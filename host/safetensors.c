/* safetensors: 8-byte little-endian header length, a JSON header, then the raw tensor bytes.
 * The reader parses only the JSON this format uses (objects, strings, integer arrays). */
#include "host/safetensors.h"

#include "host/checked.h"

#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *dtype_name(ist_dtype t) {
  return t == IST_F32 ? "F32" : t == IST_I32 ? "I32" : t == IST_I64 ? "I64" : "U8";
}

static int dtype_parse(const char *s, ist_dtype *t) {
  if (!strcmp(s, "F32")) *t = IST_F32;
  else if (!strcmp(s, "I32")) *t = IST_I32;
  else if (!strcmp(s, "U8")) *t = IST_U8;
  else if (!strcmp(s, "I64")) *t = IST_I64;
  else return 0;
  return 1;
}

/* ---- writing ---- */

typedef struct {
  char *buf;
  size_t len, cap;
} sbuf;

static int sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sb_printf(sbuf *b, const char *fmt, ...) {
  if (!b->buf) { /* buf + len must point into an allocation, even when len is 0 */
    if (!(b->buf = malloc(256))) return 0;
    b->cap = 256;
  }
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) return 0;
    if (b->len + (size_t)n < b->cap) {
      b->len += (size_t)n;
      return 1;
    }
    size_t cap = (b->cap + (size_t)n) * 2 + 256;
    char *nb = realloc(b->buf, cap);
    if (!nb) return 0;
    b->buf = nb;
    b->cap = cap;
  }
}

static int json_string_ok(const char *s) {
  for (; *s; s++)
    if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20) return 0;
  return 1;
}

ist_status ist_st_write(const char *path, const ist_st_tensor *tensors, int ntensors, const ist_st_meta *meta,
                        int nmeta) {
  sbuf h = {0};
  int ok = sb_printf(&h, "{");
  if (nmeta > 0) {
    ok = ok && sb_printf(&h, "\"__metadata__\":{");
    for (int i = 0; i < nmeta; i++) {
      if (!json_string_ok(meta[i].key) || !json_string_ok(meta[i].value)) {
        free(h.buf);
        return ist_fail(IST_ERR_ARG, "%s: metadata %s has characters that need escaping", path, meta[i].key);
      }
      ok = ok && sb_printf(&h, "%s\"%s\":\"%s\"", i ? "," : "", meta[i].key, meta[i].value);
    }
    ok = ok && sb_printf(&h, "}");
  }
  size_t off = 0;
  for (int i = 0; i < ntensors; i++) {
    const ist_st_tensor *t = &tensors[i];
    ok = ok && sb_printf(&h, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", (nmeta > 0 || i) ? "," : "", t->name,
                         dtype_name(t->dtype));
    for (int d = 0; d < t->ndim; d++) ok = ok && sb_printf(&h, "%s%lld", d ? "," : "", (long long)t->shape[d]);
    ok = ok && sb_printf(&h, "],\"data_offsets\":[%zu,%zu]}", off, off + t->nbytes);
    off += t->nbytes;
  }
  ok = ok && sb_printf(&h, "}");
  while (ok && h.len % 8) ok = sb_printf(&h, " ");
  if (!ok) {
    free(h.buf);
    return ist_fail(IST_ERR_MEMORY, "%s: cannot build the header", path);
  }

  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    free(h.buf);
    return ist_fail(IST_ERR_IO, "%s: cannot create (%s)", tmp, strerror(errno));
  }
  uint8_t len8[8];
  for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)h.len >> (8 * i));
  ok = fwrite(len8, 1, 8, f) == 8 && fwrite(h.buf, 1, h.len, f) == h.len;
  for (int i = 0; ok && i < ntensors; i++)
    ok = fwrite(tensors[i].data, 1, tensors[i].nbytes, f) == tensors[i].nbytes;
  free(h.buf);
  ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
  if (fclose(f) != 0) ok = 0;
  if (!ok || rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    return ist_fail(IST_ERR_IO, "%s: write failed (%s); the previous file is untouched", path, strerror(e));
  }
  return IST_OK;
}

/* ---- reading ---- */

typedef struct {
  const char *p, *start, *end, *path;
} parser;

static void skip_ws(parser *ps) {
  while (ps->p < ps->end && isspace((unsigned char)*ps->p)) ps->p++;
}

static int expect(parser *ps, char c) {
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == c) {
    ps->p++;
    return 1;
  }
  return 0;
}

static int parse_string(parser *ps, char *out, size_t cap) {
  if (!expect(ps, '"')) return 0;
  size_t n = 0;
  while (ps->p < ps->end && *ps->p != '"') {
    char c = *ps->p++;
    if (c == '\\') {
      if (ps->p >= ps->end) return 0;
      c = *ps->p++;
      if (c == 'n') c = '\n';
      else if (c == 't') c = '\t';
      else if (c == 'u') { /* keep \uXXXX as '?': names here are ASCII */
        if (ps->end - ps->p < 4) return 0;
        ps->p += 4;
        c = '?';
      }
    }
    if (n + 1 >= cap) return 0;
    out[n++] = c;
  }
  if (ps->p >= ps->end) return 0;
  ps->p++;
  out[n] = 0;
  return 1;
}

/* A non-negative integer: digits only, no wrap-around. */
static int parse_int(parser *ps, int64_t *v) {
  skip_ws(ps);
  const char *b = ps->p;
  while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
  return ist_parse_i64_n(b, (size_t)(ps->p - b), 0, INT64_MAX, v);
}

static int parse_int_array(parser *ps, int64_t *v, int cap, int *n) {
  *n = 0;
  if (!expect(ps, '[')) return 0;
  if (expect(ps, ']')) return 1;
  do {
    if (*n >= cap || !parse_int(ps, &v[*n])) return 0;
    (*n)++;
  } while (expect(ps, ','));
  return expect(ps, ']');
}

/* Skips any JSON value (for keys this reader does not use). */
static int skip_value(parser *ps, int depth) {
  skip_ws(ps);
  if (ps->p >= ps->end || depth > 32) return 0;
  char c = *ps->p;
  if (c == '"') {
    char tmp[4096];
    return parse_string(ps, tmp, sizeof tmp);
  }
  if (c == '{' || c == '[') {
    char close = c == '{' ? '}' : ']';
    ps->p++;
    if (expect(ps, close)) return 1;
    do {
      if (c == '{') {
        char k[1024];
        if (!parse_string(ps, k, sizeof k) || !expect(ps, ':')) return 0;
      }
      if (!skip_value(ps, depth + 1)) return 0;
    } while (expect(ps, ','));
    return expect(ps, close);
  }
  while (ps->p < ps->end && (isalnum((unsigned char)*ps->p) || *ps->p == '-' || *ps->p == '.' || *ps->p == '+')) ps->p++;
  return 1;
}

static ist_status parse_header(parser *ps, ist_safetensors *f, size_t data_len) {
  const char *path = ps->path;
  if (!expect(ps, '{')) return ist_fail(IST_ERR_FORMAT, "%s: header is not a JSON object", path);
  int cap = 0;
  if (expect(ps, '}')) return IST_OK;
  do {
    char key[128];
    if (!parse_string(ps, key, sizeof key) || !expect(ps, ':'))
      return ist_fail(IST_ERR_FORMAT, "%s: malformed header near header byte %td", path, ps->p - ps->start);
    if (!strcmp(key, "__metadata__")) {
      if (!expect(ps, '{')) return ist_fail(IST_ERR_FORMAT, "%s: __metadata__ is not an object", path);
      if (expect(ps, '}')) continue;
      do {
        ist_st_meta m;
        if (f->nmeta == IST_ST_MAX_META)
          return ist_fail(IST_ERR_FORMAT, "%s: __metadata__ has more than %d entries", path, IST_ST_MAX_META);
        if (!parse_string(ps, m.key, sizeof m.key) || !expect(ps, ':') || !parse_string(ps, m.value, sizeof m.value))
          return ist_fail(IST_ERR_FORMAT, "%s: malformed __metadata__ entry", path);
        ist_st_meta *nm = realloc(f->meta, sizeof *nm * (f->nmeta + 1));
        if (!nm) return ist_fail(IST_ERR_MEMORY, "%s: out of memory", path);
        f->meta = nm;
        f->meta[f->nmeta++] = m;
      } while (expect(ps, ','));
      if (!expect(ps, '}')) return ist_fail(IST_ERR_FORMAT, "%s: malformed __metadata__", path);
      continue;
    }
    ist_st_tensor t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "%s", key);
    int have_dtype = 0, have_shape = 0, have_off = 0;
    int64_t off[2];
    if (!expect(ps, '{')) return ist_fail(IST_ERR_FORMAT, "%s: tensor %s: entry is not an object", path, key);
    do {
      char field[64];
      if (!parse_string(ps, field, sizeof field) || !expect(ps, ':'))
        return ist_fail(IST_ERR_FORMAT, "%s: tensor %s: malformed entry", path, key);
      if (!strcmp(field, "dtype")) {
        char dt[16];
        if (!parse_string(ps, dt, sizeof dt) || !dtype_parse(dt, &t.dtype))
          return ist_fail(IST_ERR_FORMAT, "%s: tensor %s: unsupported dtype (F32, I32, I64, U8 are read)", path, key);
        have_dtype = 1;
      } else if (!strcmp(field, "shape")) {
        if (!parse_int_array(ps, t.shape, IST_MAX_DIMS, &t.ndim))
          return ist_fail(IST_ERR_FORMAT, "%s: tensor %s: bad shape", path, key);
        have_shape = 1;
      } else if (!strcmp(field, "data_offsets")) {
        int n;
        if (!parse_int_array(ps, off, 2, &n) || n != 2 || off[1] < off[0])
          return ist_fail(IST_ERR_FORMAT, "%s: tensor %s: bad data_offsets", path, key);
        have_off = 1;
      } else if (!skip_value(ps, 0)) {
        return ist_fail(IST_ERR_FORMAT, "%s: tensor %s: malformed field %s", path, key, field);
      }
    } while (expect(ps, ','));
    if (!expect(ps, '}') || !have_dtype || !have_shape || !have_off)
      return ist_fail(IST_ERR_FORMAT, "%s: tensor %s: needs dtype, shape and data_offsets", path, key);
    int64_t numel = 1, want = 0;
    for (int d = 0; d < t.ndim; d++)
      if (!ist_mul_i64(numel, t.shape[d], &numel))
        return ist_fail(IST_ERR_FORMAT, "%s: tensor %s: shape's element count exceeds 2^63", path, key);
    if (!ist_mul_i64(numel, (int64_t)ist_dtype_size(t.dtype), &want))
      return ist_fail(IST_ERR_FORMAT, "%s: tensor %s: shape's byte count exceeds 2^63", path, key);
    t.nbytes = (size_t)(off[1] - off[0]);
    if ((uint64_t)off[1] > (uint64_t)data_len)
      return ist_fail(IST_ERR_FORMAT, "%s: tensor %s: data ends at byte %lld, file has %zu (truncated?)", path, key,
                      (long long)off[1], data_len);
    if ((int64_t)t.nbytes != want)
      return ist_fail(IST_ERR_FORMAT, "%s: tensor %s: %zu bytes for %lld elements of %s", path, key, t.nbytes,
                      (long long)numel, dtype_name(t.dtype));
    t.data = (const void *)(uintptr_t)off[0]; /* rebased onto the blob by the caller */
    if (f->ntensors == cap) {
      cap = cap ? cap * 2 : 16;
      ist_st_tensor *nt = realloc(f->tensors, sizeof *nt * cap);
      if (!nt) return ist_fail(IST_ERR_MEMORY, "%s: out of memory", path);
      f->tensors = nt;
    }
    f->tensors[f->ntensors++] = t;
  } while (expect(ps, ','));
  if (!expect(ps, '}')) return ist_fail(IST_ERR_FORMAT, "%s: header does not close", path);
  return IST_OK;
}

ist_status ist_st_read(const char *path, ist_safetensors *out) {
  memset(out, 0, sizeof *out);
  ist_status st = ist_read_file(path, SIZE_MAX - 1, &out->blob, &out->size);
  if (st != IST_OK) return st;
  const long size = (long)out->size;
  if (out->size < 8) st = ist_fail(IST_ERR_FORMAT, "%s: %ld bytes is too short for safetensors", path, size);
  uint64_t hlen = 0;
  if (st == IST_OK) {
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)out->blob[i] << (8 * i);
    if (hlen > (uint64_t)size - 8)
      st = ist_fail(IST_ERR_FORMAT, "%s: header length %llu exceeds the file (%ld bytes): not safetensors or truncated",
                    path, (unsigned long long)hlen, size);
  }
  if (st == IST_OK) {
    char *hdr = (char *)out->blob + 8;
    char saved = hdr[hlen];
    hdr[hlen] = 0;
    parser ps = {hdr, hdr, hdr + hlen, path};
    st = parse_header(&ps, out, (size_t)size - 8 - hlen);
    hdr[hlen] = saved;
  }
  if (st != IST_OK) {
    ist_st_free(out);
    return st;
  }
  for (int i = 0; i < out->ntensors; i++)
    out->tensors[i].data = out->blob + 8 + hlen + (uintptr_t)out->tensors[i].data;
  return IST_OK;
}

void ist_st_free(ist_safetensors *f) {
  free(f->tensors);
  free(f->meta);
  free(f->blob);
  memset(f, 0, sizeof *f);
}

const ist_st_tensor *ist_st_find(const ist_safetensors *f, const char *name) {
  for (int i = 0; i < f->ntensors; i++)
    if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
  return NULL;
}

const char *ist_st_meta_get(const ist_safetensors *f, const char *key) {
  for (int i = 0; i < f->nmeta; i++)
    if (!strcmp(f->meta[i].key, key)) return f->meta[i].value;
  return NULL;
}
