/* Starting other programs without a shell: an argument vector, so no argument is ever parsed as
 * shell syntax (quotes, spaces, ; and $ in paths are just characters). */
#ifndef IST_SPAWN_H
#define IST_SPAWN_H
#include <stdio.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Starts argv[0] (searched in PATH) with argv; *out reads its stdout (its stderr stays ours).
 * Returns 0 on success, else an errno value. */
int ist_spawn_reader(char *const argv[], FILE **out, pid_t *pid);
/* Closes out and waits for pid; returns the exit status, or -1 if it did not exit normally. */
int ist_spawn_finish(FILE *out, pid_t pid);

#ifdef __cplusplus
}
#endif
#endif
