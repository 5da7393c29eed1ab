/* The last error message, kept per thread. */
#include "host/status.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char ist_error_msg[1024];

ist_status ist_fail(ist_status code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ist_error_msg, sizeof ist_error_msg, fmt, ap);
  va_end(ap);
  return code;
}

const char *ist_last_error(void) { return ist_error_msg[0] ? ist_error_msg : "no error"; }
