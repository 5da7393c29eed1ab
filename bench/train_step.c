/* Training throughput (images/s) and device memory of one insitu training step on the GPU (the
 * CUDA backend), against PyTorch running the same method on the same GPU (bench/train_step_torch.py,
 * started here): cnn3 (batch 64) and ResNet-18 CIFAR (batch 128), dense (the teacher stage: CE)
 * and generated (the distillation stage: quantized factors, generated W, KD against the dense
 * teacher in eval mode, orthogonality penalty), each step as train/trainer.c runs it, then RAdam.
 * Prints a table with the ratios and writes it as CSV. One command: build/bench_train_step. */
#include <cuda_runtime.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host/cli.h"
#include "host/rng.h"
#include "kernels/backend.h"
#include "models/model.h"
#include "train/optimizer.h"
#include "train/trainer.h"

#ifndef INSITU_SOURCE_DIR
#define INSITU_SOURCE_DIR "."
#endif

/* The training hyper-parameters of the two stages (train/main.c's defaults). */
#define BENCH_LR 0.002f
#define BENCH_LR_DECAY 0.98f
#define BENCH_WEIGHT_DECAY 5e-4f
#define BENCH_KD_BETA 0.9f
#define BENCH_KD_TEMPERATURE 3.0f
#define BENCH_LAMBDA_ORT 0.01f
#define BENCH_SEED 1
#define BENCH_MAX_CASES 32
#define MIB (1024.0 * 1024.0)

typedef struct {
  char model[32], setting[32], precision[8];
  int batch;
  double ms, ips, bytes; /* insitu: median step, images/s, device bytes of its arenas */
  double used_bytes;     /* insitu: growth of the device's used memory over the case (cudaMemGetInfo) */
  double t_ms, t_ips, t_bytes; /* PyTorch: the same; t_bytes = torch.cuda.max_memory_allocated */
  int have_torch;
} bench_case;

#define CUDA_TRY(call, what)                                                                          \
  do {                                                                                                \
    cudaError_t e_ = (call);                                                                          \
    if (e_ != cudaSuccess) return ist_fail(IST_ERR_STATE, "%s: %s: %s", what, #call, cudaGetErrorString(e_)); \
  } while (0)

static int model_batch(const char *model) { return !strcmp(model, "cnn3") ? 64 : 128; }

static size_t device_used(void) {
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) return 0;
  return total_b - free_b;
}

static size_t model_bytes(const ist_model *m) {
  return m->params_arena.cap + m->grads_arena.cap + m->acts_arena.cap;
}

/* One training step, as ist_train runs it (train/trainer.c): the student's forward, the teacher's
 * (eval mode) and the KD loss when there is a teacher, else cross-entropy; backward; the
 * orthogonality penalty of the generated layers; RAdam. */
static void train_step(ist_model *m, ist_model *teacher, ist_radam *opt, int64_t in_floats) {
  const ist_backend *be = m->be;
  const int b = m->batch;
  ist_model_zero_grad(m);
  m->forward(m, b, 1);
  if (teacher) {
    be->copy(teacher->input, m->input, in_floats);
    teacher->forward(teacher, b, 0);
    be->kd_loss(b, m->classes, m->logits, teacher->logits, m->labels, BENCH_KD_BETA, BENCH_KD_TEMPERATURE, m->dlogits,
                m->loss_sum, m->hits);
  } else {
    be->cross_entropy(b, m->classes, m->logits, m->labels, m->dlogits, m->loss_sum, m->hits);
  }
  m->backward(m, b);
  if (teacher) ist_ortho_total(m, BENCH_LAMBDA_ORT);
  ist_radam_step(opt, m);
}

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Times c's step: `warmup` untimed steps, then `steps` steps each between two CUDA events on the
 * backend's stream; the median. */
static ist_status time_case(bench_case *c, ist_conv_exec exec, int warmup, int steps) {
  const ist_backend *be = ist_backend_cuda();
  const int generated = strcmp(c->setting, "dense") != 0;
  ist_model_config cfg = {0}, tcfg = {0};
  if (generated) IST_TRY(ist_setting_parse(c->setting, &cfg.global));
  cfg.exec = tcfg.exec = exec;
  const size_t used0 = device_used();
  ist_model m = {0}, t = {0};
  ist_radam opt = {0};
  float *images = NULL;
  int32_t *labels = NULL;
  double *ms = calloc((size_t)steps, sizeof(double));
  cudaEvent_t ev[2] = {NULL, NULL};
  ist_status st = ist_model_create(c->model, be, c->batch, &cfg, &m);
  const int have_m = st == IST_OK;
  if (st == IST_OK) st = ist_model_init_params(&m, BENCH_SEED);
  int have_t = 0;
  if (st == IST_OK && generated) {
    st = ist_model_create(c->model, be, c->batch, &tcfg, &t);
    have_t = st == IST_OK;
    if (st == IST_OK) st = ist_model_init_params(&t, BENCH_SEED + 1);
  }
  const int64_t in_floats = (int64_t)c->batch * m.in_c * m.in_h * m.in_w;
  if (st == IST_OK) {
    images = malloc(sizeof(float) * (size_t)in_floats);
    labels = malloc(sizeof(int32_t) * (size_t)c->batch);
    if (!images || !labels || !ms) st = ist_fail(IST_ERR_MEMORY, "bench_train_step: out of host memory");
  }
  if (st == IST_OK) {
    ist_rng r;
    ist_rng_seed(&r, BENCH_SEED, 1);
    for (int64_t i = 0; i < in_floats; i++) images[i] = ist_rng_normal(&r);
    for (int i = 0; i < c->batch; i++) labels[i] = i % m.classes;
    ist_model_set_batch(&m, c->batch, images, labels);
    st = ist_radam_create(&opt, &m, BENCH_LR, BENCH_LR_DECAY, BENCH_WEIGHT_DECAY);
  }
  if (st == IST_OK && (cudaEventCreate(&ev[0]) != cudaSuccess || cudaEventCreate(&ev[1]) != cudaSuccess))
    st = ist_fail(IST_ERR_STATE, "bench_train_step: cudaEventCreate failed");
  cudaStream_t stream = (cudaStream_t)ist_backend_cuda_stream();
  for (int s = 0; st == IST_OK && s < warmup + steps; s++) {
    if (s >= warmup && cudaEventRecord(ev[0], stream) != cudaSuccess) st = ist_fail(IST_ERR_STATE, "cudaEventRecord");
    train_step(&m, have_t ? &t : NULL, &opt, in_floats);
    if (st == IST_OK && s >= warmup) {
      float e = 0;
      if (cudaEventRecord(ev[1], stream) != cudaSuccess || cudaEventSynchronize(ev[1]) != cudaSuccess ||
          cudaEventElapsedTime(&e, ev[0], ev[1]) != cudaSuccess)
        st = ist_fail(IST_ERR_STATE, "%s %s: timing the step with CUDA events failed", c->model, c->setting);
      ms[s - warmup] = e;
    }
  }
  if (st == IST_OK) st = be->sync(); /* the first failing op, named */
  if (st == IST_OK) {
    /* A step that produced no finite loss is no benchmark. */
    float loss = NAN;
    be->download(&loss, m.loss_sum, sizeof loss);
    if (!isfinite(loss)) st = ist_fail(IST_ERR_STATE, "%s %s: the training loss is %g", c->model, c->setting, loss);
  }
  if (st == IST_OK) {
    qsort(ms, (size_t)steps, sizeof(double), cmp_double);
    c->ms = ms[steps / 2];
    c->ips = c->batch / c->ms * 1e3;
    c->bytes = (double)(model_bytes(&m) + opt.state.cap + (have_t ? model_bytes(&t) : 0));
    c->used_bytes = (double)device_used() - (double)used0;
  }
  for (int i = 0; i < 2; i++)
    if (ev[i]) cudaEventDestroy(ev[i]);
  if (opt.state.base) ist_radam_destroy(&opt);
  if (have_t) ist_model_destroy(&t);
  if (have_m) ist_model_destroy(&m);
  free(images);
  free(labels);
  free(ms);
  return st;
}

/* Runs the PyTorch peer (an argument vector, no shell) and reads its RESULT lines into the cases;
 * its other output goes to stderr. Returns how many cases got a result. */
static int run_torch(const char *python, const char *script, const char *models, const char *settings,
                     const char *precisions, int steps, int warmup, const char *exec, bench_case *cases, int n) {
  char steps_s[16], warmup_s[16];
  snprintf(steps_s, sizeof steps_s, "%d", steps);
  snprintf(warmup_s, sizeof warmup_s, "%d", warmup);
  char *const argv[] = {(char *)python, (char *)script, "--models", (char *)models, "--settings", (char *)settings,
                        "--precisions", (char *)precisions, "--steps", steps_s, "--warmup", warmup_s, "--conv-exec",
                        (char *)exec, NULL};
  int fd[2];
  if (pipe(fd) != 0) return 0;
  fflush(stdout);
  const pid_t pid = fork();
  if (pid < 0) return close(fd[0]), close(fd[1]), 0;
  if (pid == 0) {
    dup2(fd[1], STDOUT_FILENO);
    close(fd[0]);
    close(fd[1]);
    setenv("PYTHONUNBUFFERED", "1", 1);
    execvp(python, argv);
    fprintf(stderr, "bench_train_step: cannot run %s: %s\n", python, strerror(errno));
    _exit(127);
  }
  close(fd[1]);
  FILE *p = fdopen(fd[0], "r");
  int got = 0;
  char line[1024];
  while (p && fgets(line, sizeof line, p)) {
    char model[32], setting[32], precision[8];
    int batch;
    double ms, ips, bytes;
    if (sscanf(line, "RESULT %31s %31s %7s %d %lf %lf %lf", model, setting, precision, &batch, &ms, &ips, &bytes) != 7) {
      fputs(line, stderr);
      continue;
    }
    for (int i = 0; i < n; i++)
      if (!strcmp(cases[i].model, model) && !strcmp(cases[i].setting, setting) &&
          !strcmp(cases[i].precision, precision) && cases[i].batch == batch && !cases[i].have_torch) {
        cases[i].t_ms = ms, cases[i].t_ips = ips, cases[i].t_bytes = bytes, cases[i].have_torch = 1;
        got++;
        break;
      }
  }
  if (p) fclose(p);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fprintf(stderr, "bench_train_step: the PyTorch peer exited with status %d\n",
            WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return got;
}

/* Splits a comma list in place into at most max items. */
static int split(char *list, char **items, int max) {
  int n = 0;
  for (char *s = strtok(list, ","); s && n < max; s = strtok(NULL, ",")) items[n++] = s;
  return n;
}

int main(int argc, char **argv) {
  const char *models = "cnn3,resnet18-cifar", *settings = "dense,2-44-8-8-8", *precisions = "fp32,tf32";
  const char *exec_name = "auto", *csv = "bench_train_step.csv", *python = "python3";
  const char *script = INSITU_SOURCE_DIR "/bench/train_step_torch.py";
  int steps = 20, warmup = 5, gpu = 0, no_torch = 0, help = 0;
  ist_option opts[] = {
      {"models", IST_OPT_STRING, &models, "comma list: cnn3 (batch 64), resnet18-cifar (batch 128)", 0, 0},
      {"settings", IST_OPT_STRING, &settings, "comma list: dense, or Bi-Bc-qb-qu-qv (generated, distilled)", 0, 0},
      {"precisions", IST_OPT_STRING, &precisions, "the PyTorch peer's: fp32, tf32 (insitu runs FP32)", 0, 0},
      {"steps", IST_OPT_INT, &steps, "timed steps (median reported)", 0, 0},
      {"warmup", IST_OPT_INT, &warmup, "untimed steps first", 0, 0},
      {"conv-exec", IST_OPT_STRING, &exec_name, "generated convs: auto, materialize or factored (both sides)", 0, 0},
      {"gpu", IST_OPT_INT, &gpu, "the GPU to run on", 0, 0},
      {"csv", IST_OPT_STRING, &csv, "where the table goes as CSV (empty: nowhere)", 0, 0},
      {"python", IST_OPT_STRING, &python, "the Python that has torch with CUDA", 0, 0},
      {"torch-script", IST_OPT_STRING, &script, "the PyTorch peer", 0, 0},
      {"no-torch", IST_OPT_FLAG, &no_torch, "skip the PyTorch peer", 0, 0},
  };
  enum { NOPTS = sizeof opts / sizeof opts[0] };
  ist_conv_exec exec;
  if (ist_cli_parse(argc, argv, 1, opts, NOPTS, &help) != IST_OK || ist_conv_exec_parse(exec_name, &exec) != IST_OK ||
      (steps < 1 && ist_fail(IST_ERR_ARG, "--steps must be >= 1")) ||
      (warmup < 0 && ist_fail(IST_ERR_ARG, "--warmup must be >= 0"))) {
    fprintf(stderr, "bench_train_step: error: %s\n", ist_last_error());
    return 1;
  }
  if (help) {
    ist_cli_print_help(stdout, "usage: bench_train_step [flags]", opts, NOPTS);
    return 0;
  }
  if (ist_backend_cuda_init(gpu) != IST_OK) {
    fprintf(stderr, "bench_train_step: error: %s\n", ist_last_error());
    return 1;
  }
  char *mlist = strdup(models), *slist = strdup(settings), *plist = strdup(precisions);
  char *ms[8], *ss[8], *ps[4];
  const int nm = split(mlist, ms, 8), ns = split(slist, ss, 8), np = split(plist, ps, 4);
  bench_case cases[BENCH_MAX_CASES];
  int n = 0;
  /* insitu runs FP32: each (model, setting) is timed once and compared with every peer precision. */
  for (int i = 0; i < nm; i++)
    for (int j = 0; j < ns; j++) {
      bench_case c = {.batch = model_batch(ms[i])};
      snprintf(c.model, sizeof c.model, "%s", ms[i]);
      snprintf(c.setting, sizeof c.setting, "%s", ss[j]);
      if (time_case(&c, exec, warmup, steps) != IST_OK) {
        fprintf(stderr, "bench_train_step: error: %s\n", ist_last_error());
        return 1;
      }
      fprintf(stderr, "insitu %s %s: %.3f ms/step, %.0f img/s\n", c.model, c.setting, c.ms, c.ips);
      for (int k = 0; k < np && n < BENCH_MAX_CASES; k++) {
        cases[n] = c;
        snprintf(cases[n++].precision, sizeof c.precision, "%s", ps[k]);
      }
    }
  int got = no_torch ? 0 : run_torch(python, script, models, settings, precisions, steps, warmup, exec_name, cases, n);
  if (!no_torch && got < n) fprintf(stderr, "bench_train_step: the PyTorch peer gave %d of %d cases\n", got, n);

  struct cudaDeviceProp prop;
  const char *gpu_name = cudaGetDeviceProperties(&prop, gpu) == cudaSuccess ? prop.name : "?";
  printf("Training step (forward, loss, backward, RAdam) on %s: insitu (CUDA backend, FP32, conv execution %s) vs "
         "PyTorch %s (autograd, cuDNN, channels-first); median of %d steps after %d\n",
         gpu_name, exec_name, no_torch ? "(not run)" : "(same GPU, same method)", steps, warmup);
  printf("dense: the teacher stage (CE); generated: the distillation stage (quantized factors, generated W, KD "
         "against the dense teacher, orthogonality penalty). Memory: insitu's arenas; PyTorch's peak allocated.\n");
  printf("%-15s %-11s %-5s %6s %12s %12s %9s %11s %11s\n", "model", "setting", "torch", "batch", "insitu img/s",
         "torch img/s", "ratio", "insitu MiB", "torch MiB");
  FILE *f = csv[0] ? fopen(csv, "w") : NULL;
  if (csv[0] && !f) fprintf(stderr, "bench_train_step: cannot write %s: %s\n", csv, strerror(errno));
  if (f)
    fprintf(f, "gpu,model,setting,torch_precision,batch,conv_exec,insitu_ms,insitu_img_s,insitu_bytes,insitu_used_bytes,"
               "torch_ms,torch_img_s,torch_peak_bytes,ratio_img_s\n");
  for (int i = 0; i < n; i++) {
    const bench_case *c = &cases[i];
    const double ratio = c->have_torch ? c->ips / c->t_ips : NAN;
    printf("%-15s %-11s %-5s %6d %12.0f %12.0f %9.2f %11.1f %11.1f\n", c->model, c->setting, c->precision, c->batch,
           c->ips, c->have_torch ? c->t_ips : NAN, ratio, c->bytes / MIB, c->have_torch ? c->t_bytes / MIB : NAN);
    if (f)
      fprintf(f, "\"%s\",%s,%s,%s,%d,%s,%.4f,%.1f,%.0f,%.0f,%.4f,%.1f,%.0f,%.4f\n", gpu_name, c->model, c->setting,
              c->precision, c->batch, exec_name, c->ms, c->ips, c->bytes, c->used_bytes, c->t_ms, c->t_ips, c->t_bytes,
              ratio);
  }
  printf("ratio: insitu img/s / PyTorch img/s (> 1: insitu is faster)\n");
  if (f) fclose(f);
  free(mlist);
  free(slist);
  free(plist);
  return 0;
}
