/* Status codes and the last error message: every fallible function returns ist_status. */
#ifndef IST_STATUS_H
#define IST_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  IST_OK = 0,
  IST_ERR_IO,      /* a file could not be opened, read or written */
  IST_ERR_FORMAT,  /* a file's contents are not what they claim to be */
  IST_ERR_ARG,     /* a bad flag, setting or shape */
  IST_ERR_MEMORY,  /* allocation failed or an arena is full */
  IST_ERR_STATE,   /* an operation does not fit the object's state (e.g. mismatched checkpoint) */
  IST_ERR_NUMERIC  /* a computation produced NaN or Inf (training stopped, nothing bad written) */
} ist_status;

/* Sets the message returned by ist_last_error and returns code (so callers can `return ist_fail(...)`). */
ist_status ist_fail(ist_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *ist_last_error(void);

/* Propagates a failing status to the caller. */
#define IST_TRY(expr)              \
  do {                             \
    ist_status ist_try_s_ = (expr); \
    if (ist_try_s_ != IST_OK)      \
      return ist_try_s_;           \
  } while (0)

#ifdef __cplusplus
}
#endif
#endif
