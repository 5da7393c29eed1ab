/* Times one training step of cnn3 (forward, loss, backward, RAdam) at batch 64, dense and
 * generated (each generated conv on a materialized W, or factored where that is cheaper), and the
 * same step in PyTorch on the same CPU threads, in one run: prints a table with each time and the
 * ratio. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host/cli.h"
#include "host/spawn.h"
#include "host/rng.h"
#include "models/model.h"
#include "train/optimizer.h"
#include "train/trainer.h"

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Median of `steps` timed training steps after `warmup` untimed ones, in milliseconds. */
static ist_status time_step(const char *setting, ist_conv_exec exec, int batch, int warmup, int steps, double *ms) {
  ist_model_config cfg = {0};
  IST_TRY(ist_setting_parse(setting, &cfg.global));
  cfg.exec = exec;
  ist_model m;
  IST_TRY(ist_model_create("cnn3", ist_backend_cpu(), batch, &cfg, &m));
  ist_model_init_params(&m, 1);
  ist_rng r;
  ist_rng_seed(&r, 3, 1);
  float *images = malloc(sizeof(float) * batch * 784);
  int32_t *labels = malloc(sizeof(int32_t) * batch);
  for (int i = 0; i < batch * 784; i++) images[i] = ist_rng_normal(&r);
  for (int i = 0; i < batch; i++) labels[i] = i % 10;
  ist_model_set_batch(&m, batch, images, labels);
  ist_radam opt;
  ist_status st = ist_radam_create(&opt, &m, 0.002f, 0.98f, 5e-4f);
  double *t = malloc(sizeof(double) * steps);
  for (int s = 0; st == IST_OK && s < warmup + steps; s++) {
    double t0 = now_s();
    ist_model_zero_grad(&m);
    m.forward(&m, batch, 1);
    m.be->cross_entropy(batch, m.classes, m.logits, m.labels, m.dlogits, m.loss_sum, m.hits);
    m.backward(&m, batch);
    if (cfg.global.generated) ist_ortho_total(&m, 0.01f);
    ist_radam_step(&opt, &m);
    if (s >= warmup) t[s - warmup] = (now_s() - t0) * 1e3;
  }
  for (int i = 1; i < steps; i++) /* insertion sort for the median */
    for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
      double x = t[j];
      t[j] = t[j - 1];
      t[j - 1] = x;
    }
  *ms = t[steps / 2];
  free(t);
  free(images);
  free(labels);
  ist_radam_destroy(&opt);
  ist_model_destroy(&m);
  return st;
}

/* Runs the PyTorch peer and reads "setting ms" lines back. */
static int run_torch(const char *python, const char *script, int threads, int batch, int steps,
                     const char *settings, double *ms, int n) {
  char t[16], b[16], s[16];
  snprintf(t, sizeof t, "%d", threads);
  snprintf(b, sizeof b, "%d", batch);
  snprintf(s, sizeof s, "%d", steps);
  char *argv[] = {(char *)python, (char *)script, "--threads", t, "--batch", b, "--steps", s, "--settings",
                  (char *)settings, NULL};
  FILE *p;
  pid_t pid;
  if (ist_spawn_reader(argv, &p, &pid) != 0) return 0;
  char line[512];
  int got = 0;
  while (fgets(line, sizeof line, p)) {
    char name[64];
    double v;
    if (sscanf(line, "RESULT %63s %lf", name, &v) == 2 && got < n) ms[got++] = v;
    else fputs(line, stderr);
  }
  return ist_spawn_finish(p, pid) == 0 && got == n;
}

int main(int argc, char **argv) {
  int threads = 2, batch = 64, steps = 30, warmup = 5, no_torch = 0, help;
  const char *script = "bench/cnn3_step_torch.py", *python = "/usr/bin/python3";
  ist_option opts[] = {
      {"threads", IST_OPT_INT, &threads, "CPU threads for both sides", 1, 1024},
      {"batch", IST_OPT_INT, &batch, "batch size", 1, 65536},
      {"steps", IST_OPT_INT, &steps, "timed steps (median reported)", 1, 1000000},
      {"warmup", IST_OPT_INT, &warmup, "untimed steps first", 0, 1000000},
      {"torch-script", IST_OPT_STRING, &script, "the PyTorch peer", 0, 0},
      {"python", IST_OPT_STRING, &python, "the Python that has torch (Debian: python3-torch)", 0, 0},
      {"no-torch", IST_OPT_FLAG, &no_torch, "skip the PyTorch peer", 0, 0},
  };
  if (ist_cli_parse(argc, argv, 1, opts, 7, &help) != IST_OK || steps < 1 || warmup < 0 || batch < 1 || threads < 1) {
    fprintf(stderr, "bench_cnn3_step: error: %s\n", steps < 1 ? "--steps must be ≥ 1" : ist_last_error());
    return 1;
  }
  if (help) {
    ist_cli_print_help(stdout, "usage: bench_cnn3_step [flags]  (run from the repository root)", opts, 7);
    return 0;
  }
  omp_set_num_threads(threads);
  /* Each case as "setting:exec"; the peer runs the same model the same way (see its docstring). */
  static const char *cases[] = {"dense:auto", "2-16-4-4-4:materialize", "2-16-4-4-4:auto", "4-24-4-4-4:auto"};
  enum { NCASES = sizeof cases / sizeof cases[0] };
  double ours[NCASES], torch[NCASES] = {0};
  char list[512] = "";
  for (int i = 0; i < NCASES; i++) {
    char setting[64];
    const char *colon = strchr(cases[i], ':');
    snprintf(setting, sizeof setting, "%.*s", (int)(colon - cases[i]), cases[i]);
    ist_conv_exec exec;
    if (ist_conv_exec_parse(colon + 1, &exec) != IST_OK ||
        time_step(setting, exec, batch, warmup, steps, &ours[i]) != IST_OK) {
      fprintf(stderr, "bench_cnn3_step: error: %s\n", ist_last_error());
      return 1;
    }
    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? "," : "", cases[i]);
  }
  int have_torch = !no_torch && run_torch(python, script, threads, batch, steps, list, torch, NCASES);
  printf("cnn3 training step (forward + backward + RAdam), batch %d, %d CPU threads, median of %d steps\n", batch,
         threads, steps);
  printf("(materialize: W generated, then a dense conv; auto: factored V*(Wb*(U*x)) where it needs <= 1/2 the MACs)\n");
  printf("%-24s %12s %12s %14s\n", "model:conv execution", "insitu ms", "PyTorch ms", "speed-up (x)");
  for (int i = 0; i < NCASES; i++) {
    if (have_torch) printf("%-24s %12.2f %12.2f %14.2f\n", cases[i], ours[i], torch[i], torch[i] / ours[i]);
    else printf("%-24s %12.2f %12s %14s\n", cases[i], ours[i], "n/a", "n/a");
  }
  if (!have_torch && !no_torch) fprintf(stderr, "bench_cnn3_step: the PyTorch peer did not run (python3-torch installed?)\n");
  return 0;
}
