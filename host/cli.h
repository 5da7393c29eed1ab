/* Command-line flags: one table per program; --help prints every flag with its default. */
#ifndef IST_CLI_H
#define IST_CLI_H
#include <stdio.h>

#include "host/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { IST_OPT_INT, IST_OPT_FLOAT, IST_OPT_DOUBLE, IST_OPT_STRING, IST_OPT_FLAG } ist_opt_type;

typedef struct {
  const char *name; /* without the leading -- */
  ist_opt_type type;
  void *dst;        /* int*, float*, const char**, int* (flag) */
  const char *help;
  double lo, hi;    /* numbers: the allowed range, checked as parsed (lo = hi = 0: the type's range) */
} ist_option;

/* Parses argv[first..argc) as --name value / --name=value / --flag. *help is set when --help or
 * -h is given. Fails naming the flag on an unknown flag, a missing value, a number that is not
 * the whole value (no wrap-around) or one outside the option's range (the message gives it). */
ist_status ist_cli_parse(int argc, char **argv, int first, const ist_option *opts, int nopts, int *help);
void ist_cli_print_help(FILE *out, const char *usage, const ist_option *opts, int nopts);

#ifdef __cplusplus
}
#endif
#endif
