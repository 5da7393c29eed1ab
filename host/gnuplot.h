/* gnuplot without a shell: paths quoted for its script language, and the program started with an
 * argument vector, so any file name (quotes, spaces, $) is only ever a name. */
#ifndef IST_GNUPLOT_H
#define IST_GNUPLOT_H
#include <stdio.h>

#include "host/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Fails naming flag when path cannot appear in a gnuplot script (a control character such as a
 * newline ends a script line; everything else is quoted). */
ist_status ist_gnuplot_check_path(const char *flag, const char *path);
/* Writes s as a gnuplot single-quoted string ('' stands for a quote inside). */
void ist_gnuplot_quote(FILE *f, const char *s);
/* Runs `gnuplot script` (no shell) and waits; fails naming flag and the script when gnuplot is
 * missing or fails. */
ist_status ist_gnuplot_run(const char *flag, const char *script);

#ifdef __cplusplus
}
#endif
#endif
