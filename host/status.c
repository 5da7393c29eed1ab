/* The last error message, kept per thread. */
#include "host/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char ist_error_msg[1024];

ist_status ist_fail(ist_status code, const char *fmt, ...) {
  /* Formatted apart first: the arguments may be the current message (ist_last_error()). */
  char msg[sizeof ist_error_msg];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  memcpy(ist_error_msg, msg, sizeof msg);
  return code;
}

const char *ist_last_error(void) { return ist_error_msg[0] ? ist_error_msg : "no error"; }
