/* Numbers from files and flags: whole-text parsing without wrap-around, overflow-checked
 * arithmetic, and whole-file reads that refuse directories and oversized files. */
#ifndef IST_CHECKED_H
#define IST_CHECKED_H
#include <stddef.h>
#include <stdint.h>

#include "host/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Parses all of text (decimal digits with an optional leading '-'; no spaces, no '+') into
 * lo..hi; 0 when text is empty, has anything else, or is out of range (no wrap-around). */
int ist_parse_i64(const char *text, int64_t lo, int64_t hi, int64_t *out);
int ist_parse_int(const char *text, int lo, int hi, int *out);
/* As ist_parse_i64 for the first len characters of text. */
int ist_parse_i64_n(const char *text, size_t len, int64_t lo, int64_t hi, int64_t *out);
/* Parses all of text as a finite number (strtod's syntax, no leading space) in lo..hi. */
int ist_parse_double(const char *text, double lo, double hi, double *out);

/* a · b and a + b when the result fits (then 1), else 0; a, b ≥ 0. */
int ist_mul_i64(int64_t a, int64_t b, int64_t *out);
int ist_add_i64(int64_t a, int64_t b, int64_t *out);

/* Reads all of the regular file path (at most max_bytes) into a malloc'd buffer with one extra
 * NUL byte after the data; fails naming the file (missing, a directory, too large, unreadable). */
ist_status ist_read_file(const char *path, size_t max_bytes, uint8_t **data, size_t *size);

#ifdef __cplusplus
}
#endif
#endif
