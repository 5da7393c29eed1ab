/* Running gnuplot on a script file with posix_spawnp: an argument vector, no shell. */
#include "host/gnuplot.h"

#include <errno.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;

ist_status ist_gnuplot_check_path(const char *flag, const char *path) {
  for (const char *p = path; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      return ist_fail(IST_ERR_ARG, "%s: the path has a control character (0x%02x) that a gnuplot script cannot hold",
                      flag, (unsigned char)*p);
  return IST_OK;
}

void ist_gnuplot_quote(FILE *f, const char *s) {
  fputc('\'', f);
  for (; *s; s++) {
    if (*s == '\'') fputc('\'', f);
    fputc(*s, f);
  }
  fputc('\'', f);
}

ist_status ist_gnuplot_run(const char *flag, const char *script) {
  char prog[] = "gnuplot", *argv[] = {prog, (char *)script, NULL};
  pid_t pid;
  /* gnuplot's messages go where ours go (its stderr onto our stdout, as a log reads best). */
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  fflush(stdout);
  const int e = posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (e != 0) return ist_fail(IST_ERR_IO, "%s: cannot start gnuplot on %s (%s; is gnuplot installed?)", flag, script, strerror(e));
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return ist_fail(IST_ERR_IO, "%s: waiting for gnuplot failed (%s)", flag, strerror(errno));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return ist_fail(IST_ERR_IO, "%s: gnuplot failed on %s (exit status %d)", flag, script,
                    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return IST_OK;
}
