/* posix_spawnp with a pipe for the child's stdout: popen without /bin/sh. */
#include "host/spawn.h"

#include <errno.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int ist_spawn_reader(char *const argv[], FILE **out, pid_t *pid) {
  int fd[2];
  if (pipe(fd) != 0) return errno;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
  posix_spawn_file_actions_addclose(&fa, fd[0]);
  posix_spawn_file_actions_addclose(&fa, fd[1]);
  fflush(stdout);
  const int e = posix_spawnp(pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fd[1]);
  if (e != 0) {
    close(fd[0]);
    return e;
  }
  if (!(*out = fdopen(fd[0], "r"))) {
    const int err = errno;
    close(fd[0]);
    ist_spawn_finish(NULL, *pid);
    return err;
  }
  return 0;
}

int ist_spawn_finish(FILE *out, pid_t pid) {
  if (out) fclose(out);
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
