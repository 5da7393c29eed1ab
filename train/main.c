/* The insitu program: teacher → projection → quantization-aware distillation, stage by stage or
 * all at once (`insitu run`). */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/cli.h"
#include "host/comm.h"
#include "host/checked.h"
#include "host/dataset.h"
#include "host/gnuplot.h"
#include "host/safetensors.h"
#include "kernels/backend.h"
#include "models/model.h"
#include "train/analyze.h"
#include "train/explore.h"
#include "train/hw.h"
#include "train/project.h"
#include "train/report.h"
#include "train/trainer.h"

/* The paper's hyper-parameters (SPEC §4) and this program's defaults, in one place. */
typedef struct {
  const char *dataset, *data, *model, *out, *teacher, *student, *from, *checkpoint, *setting, *layers, *init, *schedule, *device, *conv_exec, *png;
  int teacher_epochs, epochs, batch, l2_iters, seed, threads, train_limit, test_limit, log_every, flip, no_kd;
  int bn_recalib;
  int markdown, csv;
  int classes, input_size, crop_pad, loader_threads, max_image_pixels;
  const char *comm_kind, *to, *logits, *accelerator, *grid_bi, *grid_bc, *grid_q;
  int explore_epochs;
  int gpu; /* --device cuda: the GPU (-1: the node-local rank) */
  float target_ratio;
  ist_hw_params hw;
  float roofline_act_bits, peak_tflops, bandwidth_gbs;
  int act_bits; /* activation quantization of the student (A8 = 8); 32 = off */
  int materialize;
  int sync_bn, resume, checkpoint_every;
  ist_comm *comm; /* made in main from comm_kind */
  float eval_resize;
  float lr, lr_decay, weight_decay, kd_beta, kd_temperature, lambda_ort, l2_lr, rrc_min_scale, jitter;
  ist_conv_exec exec; /* parsed from conv_exec */
} options;

static options defaults(void) {
  return (options){
      .dataset = "fashion-mnist", .model = "cnn3", .out = "runs/cnn3", .setting = "2-16-4-4-4", .init = "l2",
      .schedule = "short", .device = "cpu", .gpu = -1, .conv_exec = "auto", .teacher_epochs = -1, .epochs = -1, .batch = 64, .l2_iters = 3000,
      .seed = 1, .threads = 2, .log_every = 200, .flip = -1, .crop_pad = -1, .rrc_min_scale = -1, .loader_threads = 2, .eval_resize = -1,
      .comm_kind = "auto", .checkpoint_every = 500, .accelerator = "h100", .roofline_act_bits = 16,
      .act_bits = 32,
      .grid_bi = "1,2,3,4", .grid_bc = "8,16,24,32", .grid_q = "4-4-4,8-8-8,32-32-32", .target_ratio = 0.03f,
      .hw = {.t_dac_ps = 400, .t_mod_ps = 50, .t_oe_ps = 10, .ring_um = 20, .group_index = 2.25, .sram_gibs = 34, .qw = 16}, .bn_recalib = 100, .lr = 0.002f, .lr_decay = -1.0f,
      .weight_decay = 5e-4f, .kd_beta = 0.9f, .kd_temperature = 3.0f, .lambda_ort = 0.01f, .l2_lr = 0.02f};
}

/* The schedules: "full" is the paper's (SPEC §4); "short" fits the README's main job in about
 * 10 minutes on 2 cores, with a faster lr decay so the few epochs still anneal. */
#define SHORT_TEACHER_EPOCHS 5
#define SHORT_DISTILL_EPOCHS 3
#define SHORT_LR_DECAY 0.8f
#define FULL_EPOCHS 200
#define FULL_LR_DECAY 0.98f
/* The largest epoch count and batch the flags take. */
#define MAX_EPOCHS 1000000
#define MAX_BATCH 65536
#define IST_STR_(x) #x
#define IST_STR(x) IST_STR_(x)

static const char *USAGE =
    "usage: insitu COMMAND [flags]\n"
    "\n"
    "Commands:\n"
    "  run       the whole flow: teacher, ℓ2 init, distillation, evaluation, report (writes into --out)\n"
    "  teacher   train the dense teacher (--out/teacher.safetensors)\n"
    "  init      project the teacher onto generated convs (--init l2|svd|random) into --student\n"
    "  distill   quantization-aware KD training of the student from --student (or a fresh init)\n"
    "  eval      test accuracy and ratios of --checkpoint (plain or .compressed; BN statistics\n"
    "            re-estimated on --bn-recalib training batches first)\n"
    "  report    per-layer and whole-model parameter and memory ratios for --setting/--layers\n"
    "  analyze   share of the top 30% singular values per conv of --checkpoint, inside kernels\n"
    "            and across kernels (the paper's Figure 2); --png FILE plots it\n"
    "  hw        SPEC §7's cost model of the photonic in-situ generator per layer (latency, bytes,\n"
    "            load time saved, DACs) and a roofline of dense vs generated convs (--accelerator)\n"
    "  explore   design-space exploration from --teacher over --grid-bi × --grid-bc × --grid-q:\n"
    "            ratios and ℓ2 projection errors (and accuracy with --explore-epochs), the\n"
    "            per-layer search at --target-ratio; CSV and PNG plots into --out\n"
    "  export    --checkpoint for PyTorch into --to: quantized values dequantized; generated convs\n"
    "            as factors, or with --materialize as dense weights (torchvision names)\n"
    "\n"
    "Data-parallel: mpirun -np N insitu COMMAND ... (or srun); --comm, --sync-bn. A killed run\n"
    "continues with --resume from OUT/<stage>.state.safetensors.\n"
    "\n"
    "Settings are Bi-Bc-qb-qu-qv (SPEC §2) or 'dense'; --layers overrides per conv (conv2=2-8-4-4-4,...).";

static ist_option *option_table(options *o, int *n) {
  static ist_option t[96]; /* room for every OPT below */
  int i = 0;
#define OPT(name, type, field, help) t[i++] = (ist_option){name, type, &o->field, help, 0, 0}
#define OPTR(name, type, field, lo, hi, help) t[i++] = (ist_option){name, type, &o->field, help, lo, hi}
  OPT("dataset", IST_OPT_STRING, dataset, "fashion-mnist, cifar10, cifar100 (the binary version), svhn (.mat files), imagefolder (JPEGs in DATA/{train,val}/<class>/) or tinyimagenet (TinyImageNet-200's layout)");
  OPT("data", IST_OPT_STRING, data, "the data set's directory (default for fashion-mnist: $" IST_FMNIST_DIR_ENV " or " IST_FMNIST_DIR ")");
  OPTR("loader-threads", IST_OPT_INT, loader_threads, 1, 256, "JPEG data sets: decoding threads (they decode the next batch during the training step)");
  OPTR("max-image-pixels", IST_OPT_INT, max_image_pixels, 0, 2147483647, "JPEG data sets: a file whose header declares more pixels (width × height) fails before decoding (0: " IST_STR(IST_JPEG_MAX_PIXELS) ")");
  OPTR("eval-resize", IST_OPT_FLOAT, eval_resize, -1, 4, "JPEG data sets, evaluation: shorter side resized to input size × this, then centre-cropped (-1: 256/224 for imagefolder, 1 for tinyimagenet)");
  OPT("model", IST_OPT_STRING, model, "architecture: cnn3, resnet18-cifar, resnet18, mobilenetv2-cifar, mobilenetv2, densenet121-cifar, densenet121, mobilenetv3-small-cifar, mobilenetv3-small, efficientnet-b0-cifar, efficientnet-b0 (no suffix: ImageNet variants)");
  OPTR("classes", IST_OPT_INT, classes, 0, IST_MAX_CLASSES, "number of classes (0: the architecture's default)");
  OPTR("input-size", IST_OPT_INT, input_size, 0, IST_MAX_INPUT_SIDE, "input height = width (0: the architecture's default)");
  OPT("device", IST_OPT_STRING, device, "backend: cpu, or cuda (in a build with CUDA)");
  OPTR("gpu", IST_OPT_INT, gpu, -1, 1023, "--device cuda: the GPU to use (-1: the node-local rank, one GPU per rank)");
  OPT("out", IST_OPT_STRING, out, "output directory");
  OPT("conv-exec", IST_OPT_STRING, conv_exec, "generated convs: materialize (W, then a dense conv), factored (no W) or auto (fewer multiply-adds)");
  OPT("teacher", IST_OPT_STRING, teacher, "teacher checkpoint (default: OUT/teacher.safetensors)");
  OPT("student", IST_OPT_STRING, student, "student checkpoint written by init/distill (default: OUT/student_init.safetensors, OUT/student.safetensors)");
  OPT("from", IST_OPT_STRING, from, "distill: the initialized student to start from (default: OUT/student_init.safetensors)");
  OPT("checkpoint", IST_OPT_STRING, checkpoint, "checkpoint to evaluate or report on");
  OPT("setting", IST_OPT_STRING, setting, "global setting Bi-Bc-qb-qu-qv for every conv, or dense");
  OPT("layers", IST_OPT_STRING, layers, "per-layer overrides name=setting,...");
  OPT("init", IST_OPT_STRING, init, "student initialization: l2, svd or random");
  OPT("schedule", IST_OPT_STRING, schedule, "short (minutes) or full (the paper's 200 epochs)");
  OPTR("teacher-epochs", IST_OPT_INT, teacher_epochs, -1, MAX_EPOCHS, "teacher epochs (-1: from --schedule)");
  OPTR("epochs", IST_OPT_INT, epochs, -1, MAX_EPOCHS, "distillation epochs (-1: from --schedule)");
  OPTR("batch", IST_OPT_INT, batch, 1, MAX_BATCH, "batch size");
  OPTR("lr", IST_OPT_FLOAT, lr, 1e-12, 1e3, "RAdam initial learning rate");
  OPTR("lr-decay", IST_OPT_FLOAT, lr_decay, -1, 1, "learning-rate factor per epoch (-1: from --schedule: 0.8 short, 0.98 full)");
  OPTR("weight-decay", IST_OPT_FLOAT, weight_decay, 0, 1, "L2 weight decay");
  OPTR("kd-beta", IST_OPT_FLOAT, kd_beta, 0, 1, "weight of the KD term (beta)");
  OPTR("kd-temperature", IST_OPT_FLOAT, kd_temperature, 1e-3, 1e3, "KD temperature T");
  OPTR("lambda-ort", IST_OPT_FLOAT, lambda_ort, 0, 1e3, "orthogonality penalty weight (0: off)");
  OPT("no-kd", IST_OPT_FLAG, no_kd, "distill with cross-entropy only (no teacher term)");
  OPTR("l2-iters", IST_OPT_INT, l2_iters, 0, 1e8, "iterations of the l2 projection");
  OPTR("l2-lr", IST_OPT_FLOAT, l2_lr, 1e-12, 1e3, "RAdam learning rate of the l2 projection");
  OPTR("flip", IST_OPT_INT, flip, -1, 1, "random horizontal flips in training (1/0; -1: on, except for SVHN's digits)");
  OPTR("rrc-min-scale", IST_OPT_FLOAT, rrc_min_scale, -1, 1, "random-resized crops of at least this share of the image instead of padded crops (0: off; -1: 0.08 on imagefolder, off elsewhere)");
  OPTR("jitter", IST_OPT_FLOAT, jitter, 0, 0.999, "colour jitter: brightness, contrast, saturation ×[1-j, 1+j] (0: off)");
  OPTR("crop-pad", IST_OPT_INT, crop_pad, -1, 1024, "random crops after padding by N pixels in training (-1: 4 on CIFAR, SVHN and TinyImageNet, 0 on FashionMNIST and imagefolder)");
  OPTR("bn-recalib", IST_OPT_INT, bn_recalib, 0, 1e6, "training batches that re-estimate BN statistics before each evaluation (0: off)");
  OPTR("seed", IST_OPT_INT, seed, 0, 2147483647, "random seed (same seed, same run)");
  OPT("comm", IST_OPT_STRING, comm_kind, "data-parallel communication: auto (mpi when started by mpirun/srun), none, mpi (CPU ranks) or nccl (GPU ranks)");
  OPT("sync-bn", IST_OPT_FLAG, sync_bn, "data-parallel: BatchNorm statistics over every rank's batch (default: per rank, as PyTorch DDP)");
  OPT("resume", IST_OPT_FLAG, resume, "continue teacher/distill from OUT/<stage>.state.safetensors if it exists (same flags)");
  OPTR("checkpoint-every", IST_OPT_INT, checkpoint_every, 0, 2147483647, "steps between training-state writes (0: only after each epoch)");
  OPTR("threads", IST_OPT_INT, threads, 1, 1024, "CPU threads");
  OPTR("train-limit", IST_OPT_INT, train_limit, 0, 2147483647, "use only the first N training images (0: all)");
  OPTR("test-limit", IST_OPT_INT, test_limit, 0, 2147483647, "use only the first N test images (0: all)");
  OPTR("log-every", IST_OPT_INT, log_every, 0, 2147483647, "steps between progress lines");
  OPT("markdown", IST_OPT_FLAG, markdown, "report as a markdown table");
  OPT("csv", IST_OPT_FLAG, csv, "report as CSV");
  OPT("png", IST_OPT_STRING, png, "analyze: also plot the shares into this PNG (needs gnuplot)");
  OPT("to", IST_OPT_STRING, to, "export: the safetensors file to write");
  OPT("materialize", IST_OPT_FLAG, materialize, "export: each generated/baseline conv as its dense weight (a torchvision state_dict) instead of its factors");
  OPT("logits", IST_OPT_STRING, logits, "eval: also write the test logits and labels to this safetensors file");
  OPTR("qw", IST_OPT_DOUBLE, hw.qw, 1, 64, "hw: bitwidth of the dense reference weights");
  OPTR("sram-gibs", IST_OPT_DOUBLE, hw.sram_gibs, 1e-6, 1e9, "hw: weight-loading (SRAM) bandwidth, GiB/s");
  OPTR("t-dac-ps", IST_OPT_DOUBLE, hw.t_dac_ps, 0, 1e9, "hw: DAC latency, ps (10 Gb/s)");
  OPTR("t-mod-ps", IST_OPT_DOUBLE, hw.t_mod_ps, 0, 1e9, "hw: modulator latency, ps");
  OPTR("t-oe-ps", IST_OPT_DOUBLE, hw.t_oe_ps, 0, 1e9, "hw: optical-electrical conversion latency, ps");
  OPTR("ring-um", IST_OPT_DOUBLE, hw.ring_um, 0, 1e6, "hw: micro-ring diameter R, µm");
  OPTR("group-index", IST_OPT_DOUBLE, hw.group_index, 1, 100, "hw: waveguide group index n_g (v_g = c / n_g)");
  OPT("accelerator", IST_OPT_STRING, accelerator, "hw roofline: h100, a100, jetson-orin or edge-npu");
  OPTR("peak-tflops", IST_OPT_FLOAT, peak_tflops, 0, 1e9, "hw roofline: peak compute instead of the accelerator's (0: its own)");
  OPTR("bandwidth-gbs", IST_OPT_FLOAT, bandwidth_gbs, 0, 1e9, "hw roofline: memory bandwidth instead of the accelerator's (0: its own)");
  OPTR("roofline-act-bits", IST_OPT_FLOAT, roofline_act_bits, 1, 64, "hw roofline: bits per activation");
  OPT("act-bits", IST_OPT_INT, act_bits, "student: activations quantized to this many bits at the input of every conv and classifier but the first conv (8: the paper's A8; 32: off), in training and evaluation");
  OPT("grid-bi", IST_OPT_STRING, grid_bi, "explore: Bi values");
  OPT("grid-bc", IST_OPT_STRING, grid_bc, "explore: Bc values");
  OPT("grid-q", IST_OPT_STRING, grid_q, "explore: qb-qu-qv bitwidth triples");
  OPTR("explore-epochs", IST_OPT_INT, explore_epochs, 0, MAX_EPOCHS, "explore: distillation epochs per point (0: train-free, ratios and projection errors only)");
  OPTR("target-ratio", IST_OPT_FLOAT, target_ratio, 0, 1, "explore: whole-model memory ratio for the per-layer search (0: no search)");
#undef OPT
#undef OPTR
  *n = i;
  return t;
}

/* The backend --device names (checked, and the GPU picked, in main before any model is built). */
static const ist_backend *backend_of(const options *o) {
#ifdef INSITU_HAVE_CUDA
  if (!strcmp(o->device, "cuda")) return ist_backend_cuda();
#endif
  (void)o->device;
  return ist_backend_cpu();
}

/* Checks --device and starts its backend on this rank's GPU (--gpu, else the node-local rank). */
static ist_status start_device(options *o) {
  if (!strcmp(o->device, "cpu")) return IST_OK;
#ifdef INSITU_HAVE_CUDA
  if (!strcmp(o->device, "cuda")) {
    IST_TRY(ist_backend_cuda_init(o->gpu >= 0 ? o->gpu : o->comm->local_rank));
    o->comm->stream = ist_backend_cuda_stream(); /* NCCL's collectives are ordered on it */
    return IST_OK;
  }
  return ist_fail(IST_ERR_ARG, "--device: '%s' is not cpu or cuda", o->device);
#else
  return ist_fail(IST_ERR_ARG, "--device: '%s' is not available in this build (cpu)", o->device);
#endif
}

static void path_in(char *buf, size_t cap, const char *given, const char *dir, const char *file) {
  if (given) snprintf(buf, cap, "%s", given);
  else snprintf(buf, cap, "%s/%s", dir, file);
}

static ist_status make_dir(const char *dir) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s", dir);
  for (char *p = tmp + 1; *p; p++)
    if (*p == '/') {
      *p = 0;
      mkdir(tmp, 0777);
      *p = '/';
    }
  if (mkdir(tmp, 0777) != 0) {
    struct stat st;
    if (stat(tmp, &st) != 0 || !S_ISDIR(st.st_mode)) return ist_fail(IST_ERR_IO, "--out: cannot create directory %s", dir);
  }
  /* Writable now, not after an epoch of training: a file is created there and removed. */
  char probe[4200];
  snprintf(probe, sizeof probe, "%s/.insitu-write-test.%ld", dir, (long)getpid());
  FILE *f = fopen(probe, "w");
  if (!f) return ist_fail(IST_ERR_IO, "--out: cannot write into %s (%s)", dir, strerror(errno));
  fclose(f);
  unlink(probe);
  return IST_OK;
}

/* The folder a file will be written to exists and is writable (checked before any work). */
static ist_status check_writable(const char *flag, const char *path) {
  if (!path) return IST_OK;
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash == dir) dir[1] = 0;
  else if (slash) *slash = 0;
  else snprintf(dir, sizeof dir, ".");
  struct stat sb;
  if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
    return ist_fail(IST_ERR_IO, "%s: folder %s of %s does not exist", flag, dir, path);
  if (access(dir, W_OK) != 0) return ist_fail(IST_ERR_IO, "%s: folder %s of %s is not writable", flag, dir, path);
  if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) return ist_fail(IST_ERR_IO, "%s: %s is a directory, not a file", flag, path);
  return IST_OK;
}

/* The CIFAR sets' class count: what models get unless --classes says otherwise (0 elsewhere:
 * the architecture's default, 10 for cnn3 on FashionMNIST). */
static int dataset_classes(const options *o) {
  if (!strcmp(o->dataset, "imagefolder")) return o->data ? ist_image_folder_classes(o->data) : 0;
  return !strcmp(o->dataset, "cifar100")                                ? 100
         : !strcmp(o->dataset, "tinyimagenet")                          ? 200
         : !strcmp(o->dataset, "cifar10") || !strcmp(o->dataset, "svhn") ? 10
                                                                         : 0;
}

/* What every model of a run shares: classes, input size, conv execution. */
static void base_config(const options *o, ist_model_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->classes = o->classes ? o->classes : dataset_classes(o);
  cfg->in_h = cfg->in_w = o->input_size;
  cfg->exec = o->exec;
}

static ist_status student_config(const options *o, ist_model_config *cfg) {
  base_config(o, cfg);
  cfg->act_bits = o->act_bits;
  IST_TRY(ist_setting_parse(o->setting, &cfg->global));
  if (o->layers) IST_TRY(ist_config_parse_overrides(o->layers, cfg));
  return IST_OK;
}

/* The per-layer settings a checkpoint was saved with (its metadata), over the flags' defaults. */
static ist_status checkpoint_config(const options *o, const char *path, ist_model_config *cfg, char *arch, int cap) {
  ist_model_config base;
  base_config(o, &base);
  base.act_bits = o->act_bits;
  return ist_checkpoint_config(path, &base, o->model, cfg, arch, cap);
}

static ist_status load_any(ist_model *m, const char *path) { return ist_model_load_any(m, path); }

static ist_status load_split(const options *o, int train, ist_dataset *d) {
  const int64_t limit = train ? o->train_limit : o->test_limit;
  if (!strcmp(o->dataset, "fashion-mnist"))
    return ist_fashion_mnist_load(o->data ? o->data : ist_fashion_mnist_dir(), train ? "train" : "t10k", limit, d);
  if (!o->data) return ist_fail(IST_ERR_ARG, "--data: give the %s directory", o->dataset);
  if (!strcmp(o->dataset, "svhn")) return ist_svhn_load(o->data, train ? "train" : "test", limit, d);
  const ist_jpeg_options jo = {.size = o->input_size, .eval_resize = o->eval_resize, .threads = o->loader_threads,
                               .max_pixels = o->max_image_pixels};
  if (!strcmp(o->dataset, "imagefolder")) return ist_image_folder_load(o->data, train ? "train" : "val", &jo, limit, d);
  if (!strcmp(o->dataset, "tinyimagenet")) return ist_tiny_imagenet_load(o->data, train ? "train" : "val", &jo, limit, d);
  return ist_cifar_load(o->data, dataset_classes(o), train ? "train" : "test", limit, d);
}

static ist_status load_data(const options *o, ist_dataset *train, ist_dataset *test) {
  if (train) IST_TRY(load_split(o, 1, train));
  ist_status st = load_split(o, 0, test);
  if (st != IST_OK && train) ist_dataset_free(train);
  return st;
}

static ist_train_config train_config(const options *o, const char *stage, int epochs, FILE *metrics,
                                     const char *ckpt) {
  ist_train_config c = {.stage = stage, .epochs = epochs, .lr = o->lr, .lr_decay = o->lr_decay,
                        .weight_decay = o->weight_decay, .kd_beta = o->kd_beta, .kd_temperature = o->kd_temperature,
                        .lambda_ort = o->lambda_ort, .augment = {.flip = o->flip, .crop_pad = o->crop_pad, .rrc_min_scale = o->rrc_min_scale, .jitter = o->jitter}, .bn_recalib = o->bn_recalib, .seed = (uint64_t)o->seed,
                        .log_every = o->log_every, .metrics = metrics, .checkpoint = ckpt,
                        .comm = o->comm, .sync_bn = o->sync_bn, .state_every = o->checkpoint_every, .resume = o->resume};
  return c;
}

static int lead(const options *o) { return o->comm->rank == 0; }

/* OUT/<stage>.state.safetensors: the training state a killed run resumes from. */
static void state_path(const options *o, const char *stage, char *buf, size_t cap) {
  snprintf(buf, cap, "%s/%s.state.safetensors", o->out, stage);
}

/* OUT/metrics.jsonl for appending on rank 0 (*f stays NULL elsewhere); fails naming it. */
static ist_status open_metrics(const options *o, FILE **f) {
  *f = NULL;
  if (!lead(o)) return IST_OK;
  char path[4096];
  snprintf(path, sizeof path, "%s/metrics.jsonl", o->out);
  if (!(*f = fopen(path, "a"))) return ist_fail(IST_ERR_IO, "%s: cannot open for appending (%s)", path, strerror(errno));
  return IST_OK;
}

/* ---- the stages ---- */

static ist_status load_teacher(const options *o, ist_model *t);

static ist_status cmd_teacher(const options *o, const ist_dataset *train, const ist_dataset *test, float *acc) {
  char path[4096];
  path_in(path, sizeof path, o->teacher, o->out, "teacher.safetensors");
  ist_model_config cfg;
  base_config(o, &cfg);
  ist_model m;
  if (o->teacher_epochs == 0) {
    /* Nothing to train: the teacher on disk is kept (and evaluated), as `run` goes on with it. */
    ist_status st = load_teacher(o, &m);
    if (st != IST_OK)
      return ist_fail(st, "--teacher-epochs 0 trains nothing and needs an existing teacher (%s)", ist_last_error());
    st = ist_check_data(&m, test);
    if (st == IST_OK) st = ist_evaluate_on(&m, test, o->comm, acc, NULL);
    if (st == IST_OK && lead(o))
      printf("teacher: --teacher-epochs 0: nothing trained; kept %s (test accuracy %.2f%%)\n", path, 100 * *acc);
    ist_model_destroy(&m);
    return st;
  }
  IST_TRY(ist_model_create(o->model, backend_of(o), o->batch, &cfg, &m));
  ist_status st = ist_model_init_params(&m, (uint64_t)o->seed);
  if (st != IST_OK) {
    ist_model_destroy(&m);
    return st;
  }
  FILE *metrics;
  st = open_metrics(o, &metrics);
  char spath[4096];
  state_path(o, "teacher", spath, sizeof spath);
  ist_train_config tc = train_config(o, "teacher", o->teacher_epochs, metrics, path);
  tc.lambda_ort = 0;
  tc.state_path = spath;
  ist_train_result r;
  if (st == IST_OK) st = ist_train(&m, NULL, train, test, &tc, &r);
  if (metrics) fclose(metrics);
  if (st == IST_OK) st = o->comm->barrier(o->comm); /* the checkpoint is on disk for every rank */
  if (st == IST_OK && lead(o)) printf("teacher: test accuracy %.2f%% after %d epochs (%.0f s); saved %s\n", 100 * r.test_acc, o->teacher_epochs,
           r.seconds, path);
  if (st == IST_OK) *acc = r.test_acc;
  ist_model_destroy(&m);
  return st;
}

static ist_status load_teacher(const options *o, ist_model *t) {
  char path[4096];
  path_in(path, sizeof path, o->teacher, o->out, "teacher.safetensors");
  ist_model_config cfg;
  base_config(o, &cfg);
  IST_TRY(ist_model_create(o->model, backend_of(o), o->batch, &cfg, t));
  ist_status st = ist_model_load(t, path);
  if (st != IST_OK) ist_model_destroy(t);
  return st;
}

static ist_status cmd_init(const options *o, ist_model *teacher, const char *out_path) {
  ist_init_method method;
  IST_TRY(ist_init_method_parse(o->init, &method));
  ist_model_config cfg;
  IST_TRY(student_config(o, &cfg));
  ist_model s;
  IST_TRY(ist_model_create(o->model, backend_of(o), o->batch, &cfg, &s));
  /* Rank 0 projects and writes; the others wait for the file (the trainer broadcasts rank 0's
   * parameters anyway). */
  ist_status st = IST_OK;
  if (lead(o)) st = ist_init_student(&s, teacher, method, o->l2_iters, o->l2_lr, (uint64_t)o->seed, 1);
  if (st == IST_OK && lead(o)) st = ist_model_save(&s, out_path, "init");
  if (st == IST_OK) st = o->comm->barrier(o->comm);
  if (st == IST_OK && lead(o)) printf("student initialized (%s) and saved to %s\n", o->init, out_path);
  ist_model_destroy(&s);
  return st;
}

static ist_status cmd_distill(const options *o, ist_model *teacher, const char *init_path, const ist_dataset *train,
                              const ist_dataset *test, float *acc) {
  char path[4096], cpath[4096];
  path_in(path, sizeof path, o->student, o->out, "student.safetensors");
  ist_model_config cfg;
  char arch[32];
  IST_TRY(checkpoint_config(o, init_path, &cfg, arch, sizeof arch));
  ist_model s;
  IST_TRY(ist_model_create(arch, backend_of(o), o->batch, &cfg, &s));
  ist_status st = ist_model_load(&s, init_path);
  FILE *metrics = NULL;
  if (st == IST_OK) st = open_metrics(o, &metrics);
  char spath[4096];
  state_path(o, "distill", spath, sizeof spath);
  ist_train_config tc = train_config(o, "distill", o->epochs, metrics, path);
  tc.state_path = spath;
  ist_train_result r = {0};
  if (st == IST_OK) st = ist_train(&s, o->no_kd ? NULL : teacher, train, test, &tc, &r);
  if (metrics) fclose(metrics);
  const char *ext = ".safetensors";
  size_t stem = strlen(path);
  if (stem >= strlen(ext) && !strcmp(path + stem - strlen(ext), ext)) stem -= strlen(ext);
  snprintf(cpath, sizeof cpath, "%.*s.compressed.safetensors", (int)stem, path);
  if (st == IST_OK && lead(o)) st = ist_model_save_compressed(&s, cpath);
  if (st == IST_OK) st = o->comm->barrier(o->comm);
  if (st == IST_OK) *acc = r.test_acc;
  if (st == IST_OK && lead(o)) {
    struct stat fs;
    printf("student: test accuracy %.2f%% after %d epochs (%.0f s); saved %s and %s (%lld bytes)\n",
           100 * r.test_acc, o->epochs, r.seconds, path, cpath, stat(cpath, &fs) == 0 ? (long long)fs.st_size : -1LL);
    ist_report_print(stdout, &s, IST_REPORT_TEXT);
  }
  ist_model_destroy(&s);
  return st;
}

static ist_report_format report_format(const options *o) {
  return o->csv ? IST_REPORT_CSV : o->markdown ? IST_REPORT_MARKDOWN : IST_REPORT_TEXT;
}

/* The logits of every test image (and its label) into a safetensors file. */
static ist_status write_logits(ist_model *m, const ist_dataset *d, const char *path) {
  float *logits = malloc(sizeof(float) * (size_t)(d->n * m->classes)), *images = malloc(sizeof(float) * (size_t)m->batch * m->in_c * m->in_h * m->in_w);
  int32_t *labels = malloc(sizeof(int32_t) * (size_t)d->n);
  ist_status st = logits && images && labels ? IST_OK : ist_fail(IST_ERR_MEMORY, "%s: out of memory", path);
  for (int64_t s = 0; st == IST_OK && s < d->n; s += m->batch) {
    const int n = (int)(d->n - s < m->batch ? d->n - s : m->batch);
    st = ist_dataset_batch(d, NULL, s, n, images, labels + s, NULL, 0);
    if (st != IST_OK) break;
    ist_model_set_batch(m, n, images, labels + s);
    m->forward(m, n, 0);
    m->be->download(logits + s * m->classes, m->logits, sizeof(float) * (size_t)n * m->classes);
  }
  if (st == IST_OK) {
    ist_st_tensor t[2] = {{.name = "logits", .dtype = IST_F32, .ndim = 2, .shape = {d->n, m->classes}, .data = logits,
                           .nbytes = sizeof(float) * (size_t)(d->n * m->classes)},
                          {.name = "labels", .dtype = IST_I32, .ndim = 1, .shape = {d->n}, .data = labels,
                           .nbytes = sizeof(int32_t) * (size_t)d->n}};
    st = ist_st_write(path, t, 2, NULL, 0);
  }
  free(logits);
  free(images);
  free(labels);
  return st;
}

static ist_status cmd_eval(const options *o) {
  if (!o->checkpoint) return ist_fail(IST_ERR_ARG, "eval: --checkpoint is required");
  ist_model_config cfg;
  char arch[32];
  IST_TRY(checkpoint_config(o, o->checkpoint, &cfg, arch, sizeof arch));
  ist_dataset train = {0}, test;
  options at_size = *o; /* JPEG data are decoded at the size the checkpoint was trained at */
  if (cfg.in_h) at_size.input_size = cfg.in_h;
  IST_TRY(load_data(&at_size, o->bn_recalib > 0 ? &train : NULL, &test));
  ist_model m;
  ist_status st = ist_model_create(arch, backend_of(o), o->batch, &cfg, &m);
  if (st == IST_OK) {
    float loss, acc;
    st = load_any(&m, o->checkpoint);
    if (st == IST_OK && o->bn_recalib > 0) st = ist_bn_recalibrate(&m, &train, o->bn_recalib);
    if (st == IST_OK) st = ist_evaluate(&m, &test, &acc, &loss);
    /* Finite weights can still make a non-finite network (a negative BN variance): no silent chance accuracy. */
    if (st == IST_OK && !isfinite(loss))
      st = ist_fail(IST_ERR_NUMERIC, "%s: the test loss is %g: the checkpoint's values make the network's outputs non-finite",
                    o->checkpoint, (double)loss);
    if (st == IST_OK && o->logits) st = write_logits(&m, &test, o->logits);
    if (st == IST_OK) {
      printf("%s: test accuracy %.2f%% (loss %.4f) on %lld images\n", o->checkpoint, 100 * acc, loss, (long long)test.n);
      ist_report_print(stdout, &m, report_format(o));
    }
    ist_model_destroy(&m);
  }
  ist_dataset_free(&train);
  ist_dataset_free(&test);
  return st;
}

/* The model report and hw describe: --checkpoint's settings, else --model at --setting/--layers
 * (batch 1, no weights needed). */
static ist_status described_model(const options *o, ist_model *m) {
  ist_model_config cfg;
  char arch[32];
  snprintf(arch, sizeof arch, "%s", o->model);
  if (o->checkpoint) IST_TRY(checkpoint_config(o, o->checkpoint, &cfg, arch, sizeof arch));
  else IST_TRY(student_config(o, &cfg));
  return ist_model_create(arch, backend_of(o), 1, &cfg, m);
}

static ist_status cmd_report(const options *o) {
  ist_model m;
  IST_TRY(described_model(o, &m));
  ist_report_print(stdout, &m, report_format(o));
  ist_model_destroy(&m);
  return IST_OK;
}

/* The model of --checkpoint (required by `command`), with its weights, at batch 1. */
static ist_status checkpoint_model(const options *o, const char *command, ist_model *m) {
  if (!o->checkpoint) return ist_fail(IST_ERR_ARG, "%s: --checkpoint is required", command);
  ist_model_config cfg;
  char arch[32];
  IST_TRY(checkpoint_config(o, o->checkpoint, &cfg, arch, sizeof arch));
  IST_TRY(ist_model_create(arch, backend_of(o), 1, &cfg, m));
  ist_status st = load_any(m, o->checkpoint);
  if (st != IST_OK) ist_model_destroy(m);
  return st;
}

static ist_status cmd_export(const options *o) {
  if (!o->to) return ist_fail(IST_ERR_ARG, "export: --to is required");
  ist_model m;
  IST_TRY(checkpoint_model(o, "export", &m));
  ist_status st = ist_model_export(&m, o->to, o->materialize);
  if (st == IST_OK) printf("exported %s to %s (%s)\n", o->checkpoint, o->to, o->materialize ? "dense weights" : "factors");
  ist_model_destroy(&m);
  return st;
}

static ist_status cmd_hw(const options *o) {
  const ist_accelerator *named = ist_accelerator_find(o->accelerator);
  if (!named) return ist_fail(IST_ERR_ARG, "--accelerator: '%s' is not one of %s", o->accelerator, ist_accelerator_names());
  const ist_hw_params *p = &o->hw;
  if (!(p->qw > 0 && p->sram_gibs > 0 && p->t_dac_ps >= 0 && p->t_mod_ps >= 0 && p->t_oe_ps >= 0 && p->ring_um >= 0 &&
        p->group_index >= 1 && o->roofline_act_bits > 0 && o->peak_tflops >= 0 && o->bandwidth_gbs >= 0))
    return ist_fail(IST_ERR_ARG, "hw: --qw, --sram-gibs, --roofline-act-bits must be > 0, latencies and sizes ≥ 0, --group-index ≥ 1");
  ist_accelerator a = *named;
  if (o->peak_tflops > 0) a.peak_tflops = o->peak_tflops;
  if (o->bandwidth_gbs > 0) a.bandwidth_gbs = o->bandwidth_gbs;
  ist_model m;
  IST_TRY(described_model(o, &m));
  ist_status st = ist_hw_print(stdout, &m, p, &a, o->batch, o->roofline_act_bits, report_format(o), o->png);
  ist_model_destroy(&m);
  return st;
}

/* Parses "a,b,c" into at most cap integers in 1..IST_MAX_RANK, each whole; fails naming flag. */
static ist_status parse_ints(const char *flag, const char *text, int *v, int cap, int *n) {
  *n = 0;
  for (const char *p = text;; p++) {
    const char *end = strchr(p, ',');
    const size_t len = end ? (size_t)(end - p) : strlen(p);
    int64_t x;
    if (*n == cap) return ist_fail(IST_ERR_ARG, "%s: more than %d values", flag, cap);
    if (!ist_parse_i64_n(p, len, 1, IST_MAX_RANK, &x))
      return ist_fail(IST_ERR_ARG, "%s: '%.*s' is not a whole number in 1..%d (a list like 1,2,4)", flag, (int)len, p,
                      IST_MAX_RANK);
    v[(*n)++] = (int)x;
    if (!end) return IST_OK;
    p = end;
  }
}

/* A global setting, or a per-layer table "conv1=…,conv2=…" over dense. */
static ist_status point_config(const options *o, const char *setting, ist_model_config *cfg) {
  base_config(o, cfg);
  if (!strchr(setting, '=')) return ist_setting_parse(setting, &cfg->global);
  IST_TRY(ist_setting_parse("dense", &cfg->global));
  return ist_config_parse_overrides(setting, cfg);
}

/* One explored setting: the student projected from the teacher (ℓ2), measured, and with
 * --explore-epochs > 0 trained (distillation) for its test accuracy. */
static ist_status explore_point(const options *o, ist_model *teacher, const char *setting, const ist_dataset *train,
                                const ist_dataset *test, ist_explore_point *p) {
  ist_model_config cfg;
  IST_TRY(point_config(o, setting, &cfg));
  const int trained = o->explore_epochs > 0;
  ist_model s;
  IST_TRY(ist_model_create(o->model, backend_of(o), trained ? o->batch : 1, &cfg, &s));
  ist_status st = ist_init_student(&s, teacher, IST_INIT_L2, o->l2_iters, o->l2_lr, (uint64_t)o->seed, 0);
  if (st == IST_OK) st = ist_explore_measure(teacher, &s, setting, p);
  if (st == IST_OK && trained) {
    ist_train_config tc = train_config(o, "explore", o->explore_epochs, NULL, NULL);
    tc.log_every = 0;
    tc.comm = NULL;
    ist_train_result r;
    st = ist_train(&s, teacher, train, test, &tc, &r);
    if (st == IST_OK) p->accuracy = r.test_acc;
  }
  ist_model_destroy(&s);
  return st;
}

/* gnuplot: per bitwidth triple a heat map over (Bi, Bc) with memory-ratio contours; and accuracy
 * (or projection error) against memory ratio with the Pareto front and the per-layer choice. */
static ist_status explore_plots(const options *o, const ist_explore_point *pts, int n, const int *bis, int nbi,
                                const int *bcs, int nbc, int nq, const int *front, int searched) {
  const int trained = pts[0].accuracy >= 0;
  const char *what = trained ? "test accuracy (%)" : "relative projection error";
  char path[4096];
  snprintf(path, sizeof path, "%s/explore_plots.gp", o->out);
  FILE *gp = fopen(path, "w");
  if (!gp) return ist_fail(IST_ERR_IO, "%s: cannot write", path);
  const double dbc = nbc > 1 ? (bcs[1] - bcs[0]) / 2.0 : 1;
  for (int q = 0; q < nq; q++) {
    char dat[4096];
    snprintf(dat, sizeof dat, "%s/explore_grid_%d.dat", o->out, q);
    FILE *f = fopen(dat, "w");
    if (!f) {
      fclose(gp);
      return ist_fail(IST_ERR_IO, "%s: cannot write", dat);
    }
    for (int i = 0; i < nbi; i++) {
      for (int j = 0; j < nbc; j++) {
        const ist_explore_point *p = &pts[(q * nbi + i) * nbc + j];
        fprintf(f, "%d %d %g %g\n", bis[i], bcs[j], trained ? 100 * p->accuracy : p->rel_err, p->memory_ratio);
      }
      fputc('\n', f);
    }
    fclose(f);
    /* "Bi-Bc-qb-qu-qv": the bitwidths follow the second dash. */
    const char *qname = strchr(strchr(pts[q * nbi * nbc].setting, '-') + 1, '-') + 1;
    char contour[4200], heat[4200];
    snprintf(contour, sizeof contour, "%s/explore_contour_%d.dat", o->out, q);
    snprintf(heat, sizeof heat, "%s/explore_heat_%s.png", o->out, qname);
    fprintf(gp, "set terminal pngcairo size 820,620\nset table ");
    ist_gnuplot_quote(gp, contour);
    fprintf(gp, "\nset contour base\nset cntrparam levels auto 6\nunset surface\nset view map\nsplot ");
    ist_gnuplot_quote(gp, dat);
    fprintf(gp, " using 1:2:4 with lines\nunset table\nunset contour\nset surface\nset output ");
    ist_gnuplot_quote(gp, heat);
    fprintf(gp, "\nset xlabel 'Bi (intra-kernel rank)'\nset ylabel 'Bc (cross-kernel rank)'\nset cblabel '%s'\n", what);
    fprintf(gp, "set palette rgbformulae 33,13,10%s\n", trained ? "" : " negative");
    fprintf(gp, "set title '%s, qb-qu-qv = %s: %s (colour), whole-model memory ratio (lines)'\n", o->model, qname,
            trained ? "accuracy" : "projection error");
    fprintf(gp, "set xrange [%g:%g]\nset yrange [%g:%g]\n", bis[0] - 0.5, bis[nbi - 1] + 0.5, bcs[0] - dbc,
            bcs[nbc - 1] + dbc);
    fprintf(gp, "plot ");
    ist_gnuplot_quote(gp, dat);
    fprintf(gp, " using 1:2:3 with image notitle, ");
    ist_gnuplot_quote(gp, contour);
    fprintf(gp, " using 1:2 with lines lc rgb 'white' lw 1.5 notitle, ");
    ist_gnuplot_quote(gp, dat);
    fprintf(gp, " using 1:2:(sprintf('%%.3f', $4)) with labels font ',8' notitle\n");
    fprintf(gp, "reset\n");
  }
  char dat[4096];
  snprintf(dat, sizeof dat, "%s/explore_points.dat", o->out);
  FILE *f = fopen(dat, "w");
  if (!f) {
    fclose(gp);
    return ist_fail(IST_ERR_IO, "%s: cannot write", dat);
  }
  const int ngrid = n - (searched ? 1 : 0);
  int *order = malloc(sizeof(int) * (size_t)n);
  for (int pass = 0; order && pass < 3; pass++) { /* blocks: every grid point; the front; the per-layer choice */
    int k = 0;
    for (int p = 0; p < n; p++)
      if ((pass == 0 && p < ngrid) || (pass == 1 && p < ngrid && front[p]) || (pass == 2 && p >= ngrid)) order[k++] = p;
    for (int a = 1; a < k; a++) /* by memory ratio, for the front's line */
      for (int b = a; b > 0 && pts[order[b]].memory_ratio < pts[order[b - 1]].memory_ratio; b--) {
        const int t = order[b];
        order[b] = order[b - 1], order[b - 1] = t;
      }
    for (int a = 0; a < k; a++)
      fprintf(f, "%g %g\n", pts[order[a]].memory_ratio, trained ? 100 * pts[order[a]].accuracy : pts[order[a]].rel_err);
    if (k == 0) fprintf(f, "NaN NaN\n");
    fprintf(f, "\n\n");
  }
  free(order);
  fclose(f);
  char pareto[4200];
  snprintf(pareto, sizeof pareto, "%s/explore_pareto.png", o->out);
  fprintf(gp, "set terminal pngcairo size 820,620\nset output ");
  ist_gnuplot_quote(gp, pareto);
  fprintf(gp, "\nset logscale x\nset grid\n");
  fprintf(gp, "set xlabel 'whole-model memory ratio r_m'\nset ylabel '%s'\nset key %s\n", what,
          trained ? "bottom right" : "top right");
  fprintf(gp, "set title '%s: %s against memory ratio'\n", o->model, trained ? "accuracy" : "projection error");
  fprintf(gp, "plot ");
  ist_gnuplot_quote(gp, dat);
  fprintf(gp, " index 0 using 1:2 with points pt 7 lc rgb 'gray50' title 'grid settings', ");
  ist_gnuplot_quote(gp, dat);
  fprintf(gp, " index 1 using 1:2 with linespoints pt 7 lw 2 lc rgb 'red' title 'Pareto front', ");
  ist_gnuplot_quote(gp, dat);
  fprintf(gp, " index 2 using 1:2 with points pt 3 ps 2.5 lw 2 lc rgb 'blue' title 'per-layer search'\n");
  fclose(gp);
  return ist_gnuplot_run("explore", path);
}

/* Prints one explored point (the search's summary lines). */
static void print_point(const char *what, const ist_explore_point *p) {
  printf("%s: %s\n  r_m %.4f, relative projection error %.4f (sum of squares %.4g)", what, p->setting, p->memory_ratio,
         p->rel_err, p->total_err);
  if (p->accuracy >= 0) printf(", accuracy %.2f%%", 100 * p->accuracy);
  printf("\n");
}

static ist_status cmd_explore(const options *o) {
  /* Every grid entry is checked before any point is computed. */
  int bis[64], bcs[64], nbi, nbc;
  IST_TRY(parse_ints("--grid-bi", o->grid_bi, bis, 64, &nbi));
  IST_TRY(parse_ints("--grid-bc", o->grid_bc, bcs, 64, &nbc));
  IST_TRY(ist_gnuplot_check_path("--out", o->out));
  char qs[16][32];
  int nq = 0;
  for (const char *p = o->grid_q;; p++) {
    const char *end = strchr(p, ',');
    const int len = end ? (int)(end - p) : (int)strlen(p);
    if (nq == 16) return ist_fail(IST_ERR_ARG, "--grid-q: more than 16 triples");
    ist_conv_setting probe_set;
    char full[64];
    snprintf(full, sizeof full, "1-1-%.*s", len, p);
    if (len >= (int)sizeof qs[0] || ist_setting_parse(full, &probe_set) != IST_OK)
      return ist_fail(IST_ERR_ARG, "--grid-q: '%.*s' is not qb-qu-qv with bitwidths 1..32", len, p);
    snprintf(qs[nq++], sizeof qs[0], "%.*s", len, p);
    if (!end) break;
    p = end;
  }
  if (!nq) return ist_fail(IST_ERR_ARG, "--grid-q: give at least one qb-qu-qv");
  const int ngrid = nq * nbi * nbc;
  ist_explore_point *pts = calloc((size_t)ngrid + 1, sizeof *pts);
  int *front = calloc((size_t)ngrid + 1, sizeof(int)), choice[IST_MAX_CONVS];
  ist_model teacher;
  ist_status st = pts && front ? load_teacher(o, &teacher) : ist_fail(IST_ERR_MEMORY, "explore: out of memory");
  if (st != IST_OK) {
    free(pts);
    free(front);
    return st;
  }
  /* What the BatchNorm and classifier of a quantized model store, and the dense model's total:
   * the per-layer search's budget, checked before the grid's work. */
  double fixed_bits = 0, dense_bits = 0;
  char first[64];
  snprintf(first, sizeof first, "%d-%d-%s", bis[0], bcs[0], qs[0]);
  ist_model_config pcfg;
  ist_model probe;
  st = point_config(o, first, &pcfg);
  if (st == IST_OK) st = ist_model_create(o->model, backend_of(o), 1, &pcfg, &probe);
  if (st == IST_OK) {
    const ist_ratio t = ist_model_ratio(&probe);
    fixed_bits = t.bits, dense_bits = t.dense_bits;
    for (int l = 0; l < probe.nconvs; l++) fixed_bits -= ist_conv_ratio(probe.convs[l]).bits;
    ist_model_destroy(&probe);
    if (o->target_ratio > 0 && o->target_ratio * dense_bits <= fixed_bits)
      st = ist_fail(IST_ERR_ARG, "--target-ratio %g: below what the BatchNorm and classifier alone store (%.4f)",
                    (double)o->target_ratio, fixed_bits / dense_bits);
  }
  ist_dataset train = {0}, test = {0};
  const int trained = o->explore_epochs > 0;
  if (st == IST_OK && trained) st = load_data(o, &train, &test);
  for (int k = 0; st == IST_OK && k < ngrid; k++) {
    ist_explore_point *p = &pts[k];
    char setting[64];
    snprintf(setting, sizeof setting, "%d-%d-%s", bis[k / nbc % nbi], bcs[k % nbc], qs[k / (nbi * nbc)]);
    st = explore_point(o, &teacher, setting, &train, &test, p);
    if (st != IST_OK) break;
    printf("[explore] %3d/%d %-16s r %.4f r_m %.4f projection error %.4f", k + 1, ngrid, setting, p->param_ratio,
           p->memory_ratio, p->rel_err);
    if (trained) printf(" accuracy %.2f%%", 100 * p->accuracy);
    printf("\n");
    fflush(stdout);
  }
  int n = ngrid;
  if (st == IST_OK && o->target_ratio > 0) {
    st = ist_explore_search(pts, ngrid, fixed_bits, dense_bits, o->target_ratio, 4000, choice);
    char layers[64 * IST_MAX_CONVS] = "";
    for (int l = 0; st == IST_OK && l < teacher.nconvs; l++)
      snprintf(layers + strlen(layers), sizeof layers - strlen(layers), "%s%s=%s", l ? "," : "", teacher.convs[l]->name,
               pts[choice[l]].setting);
    if (st == IST_OK) st = explore_point(o, &teacher, layers, &train, &test, &pts[ngrid]);
    if (st == IST_OK) n = ngrid + 1;
  }
  if (st == IST_OK) {
    ist_explore_pareto(pts, ngrid, front);
    char path[4096];
    snprintf(path, sizeof path, "%s/explore.csv", o->out);
    FILE *f = fopen(path, "w");
    if (!f) {
      st = ist_fail(IST_ERR_IO, "%s: cannot write", path);
    } else {
      ist_explore_csv(f, pts, n, &teacher, front);
      fclose(f);
      printf("[explore] wrote %s\n", path);
    }
  }
  if (st == IST_OK && n > ngrid) {
    const ist_explore_point *pl = &pts[ngrid];
    const int g = ist_explore_best_global(pts, ngrid, o->target_ratio);
    printf("\n");
    print_point("per-layer search within memory ratio", pl);
    if (g >= 0) {
      print_point("best global setting within that ratio", &pts[g]);
      printf("per-layer vs global: projection error (sum of squares) %.1f%% lower", 100 * (1 - pl->total_err / pts[g].total_err));
      if (trained) printf(", accuracy %+.2f points", 100 * (pl->accuracy - pts[g].accuracy));
      printf("\n");
    } else {
      printf("no global setting of the grid fits memory ratio %.4f\n", o->target_ratio);
    }
  }
  if (st == IST_OK) st = explore_plots(o, pts, n, bis, nbi, bcs, nbc, nq, front, n > ngrid);
  if (st == IST_OK) printf("[explore] plots: %s/explore_heat_<qb-qu-qv>.png, %s/explore_pareto.png\n", o->out, o->out);
  if (trained) {
    ist_dataset_free(&train);
    ist_dataset_free(&test);
  }
  ist_model_destroy(&teacher);
  free(pts);
  free(front);
  return st;
}

static ist_status cmd_analyze(const options *o) {
  ist_model m;
  IST_TRY(checkpoint_model(o, "analyze", &m));
  ist_status st = ist_analyze_print(stdout, &m, o->png);
  ist_model_destroy(&m);
  return st;
}

static ist_status cmd_run(const options *o) {
  ist_dataset train, test;
  IST_TRY(load_data(o, &train, &test));
  float tacc = 0, sacc = 0;
  char init_path[4096];
  path_in(init_path, sizeof init_path, NULL, o->out, "student_init.safetensors");
  ist_status st = cmd_teacher(o, &train, &test, &tacc);
  ist_model teacher;
  if (st == IST_OK) st = load_teacher(o, &teacher);
  if (st == IST_OK) {
    /* A resumed run whose distillation had started keeps its initialization. */
    char spath[4096];
    struct stat sb;
    state_path(o, "distill", spath, sizeof spath);
    if (!(o->resume && stat(spath, &sb) == 0 && stat(init_path, &sb) == 0)) st = cmd_init(o, &teacher, init_path);
    if (st == IST_OK) st = cmd_distill(o, &teacher, init_path, &train, &test, &sacc);
    ist_model_destroy(&teacher);
  }
  if (st == IST_OK && lead(o))
    printf("\nRESULT teacher %.2f%% | student %.2f%% (%s, %s init) | difference %+.2f points\n", 100 * tacc, 100 * sacc,
           o->layers ? o->layers : o->setting, o->init, 100 * (sacc - tacc));
  ist_dataset_free(&train);
  ist_dataset_free(&test);
  return st;
}

int main(int argc, char **argv) {
  options o = defaults();
  int nopts, help;
  ist_option *opts = option_table(&o, &nopts);
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    ist_cli_print_help(argc < 2 ? stderr : stdout, USAGE, opts, nopts);
    return argc < 2 ? 2 : 0;
  }
  const char *cmd = argv[1];
  ist_status st = ist_cli_parse(argc, argv, 2, opts, nopts, &help);
  if (st == IST_OK && help) {
    ist_cli_print_help(stdout, USAGE, opts, nopts);
    return 0;
  }
  if (st == IST_OK) st = ist_conv_exec_parse(o.conv_exec, &o.exec);
  const int imagefolder = !strcmp(o.dataset, "imagefolder"), tiny = !strcmp(o.dataset, "tinyimagenet");
  if (st == IST_OK && strcmp(o.dataset, "fashion-mnist") && strcmp(o.dataset, "cifar10") && strcmp(o.dataset, "cifar100") &&
      strcmp(o.dataset, "svhn") && !imagefolder && !tiny)
    st = ist_fail(IST_ERR_ARG, "--dataset: '%s' is not fashion-mnist, cifar10, cifar100, svhn, imagefolder or tinyimagenet",
                  o.dataset);
  if (st == IST_OK) st = ist_dataset_supported(o.dataset);
  if (st == IST_OK && o.crop_pad < 0) o.crop_pad = strcmp(o.dataset, "fashion-mnist") && !imagefolder ? 4 : 0;
  if (st == IST_OK && o.rrc_min_scale < 0) o.rrc_min_scale = imagefolder ? 0.08f : 0;
  if (st == IST_OK && o.flip < 0) o.flip = strcmp(o.dataset, "svhn") != 0;
  if (st == IST_OK && o.eval_resize < 0) o.eval_resize = imagefolder ? 256.0f / 224.0f : 1.0f;
  if (st == IST_OK && o.input_size == 0 && (imagefolder || tiny)) o.input_size = imagefolder ? 224 : 64;
  if (st == IST_OK && imagefolder && o.data && !dataset_classes(&o))
    st = ist_fail(IST_ERR_ARG, "--data: %s/train has no class folders", o.data);
  if (st == IST_OK && strcmp(o.schedule, "short") && strcmp(o.schedule, "full"))
    st = ist_fail(IST_ERR_ARG, "--schedule: '%s' is not short or full", o.schedule);
  if (st == IST_OK && (o.threads < 1 || o.batch < 1 || o.l2_iters < 0 || o.train_limit < 0 || o.test_limit < 0 ||
                        o.bn_recalib < 0 || o.classes < 0 || o.input_size < 0 || o.checkpoint_every < 0))
    st = ist_fail(IST_ERR_ARG, "--threads, --batch must be ≥ 1 and --l2-iters, --*-limit, --bn-recalib, --classes, "
                               "--input-size, --checkpoint-every ≥ 0");
  if (st == IST_OK && o.lr_decay != -1 && o.lr_decay <= 0)
    st = ist_fail(IST_ERR_ARG, "--lr-decay: %g (allowed: -1 for the schedule's, or 0 < decay ≤ 1)", (double)o.lr_decay);
  if (st == IST_OK && o.eval_resize != -1 && o.eval_resize < 1)
    st = ist_fail(IST_ERR_ARG, "--eval-resize: %g (allowed: -1 for the data set's, or 1..4)", (double)o.eval_resize);
  if (st == IST_OK && o.rrc_min_scale != -1 && o.rrc_min_scale < 0)
    st = ist_fail(IST_ERR_ARG, "--rrc-min-scale: %g (allowed: -1 for the data set's, or 0..1)", (double)o.rrc_min_scale);
  if (st == IST_OK && (o.act_bits < 1 || o.act_bits > 32))
    st = ist_fail(IST_ERR_ARG, "--act-bits: %d is not 1..32 (8: 8-bit activations, 32: not quantized)", o.act_bits);
  if (st == IST_OK && (o.rrc_min_scale < 0 || o.rrc_min_scale > 1 || o.jitter < 0 || o.jitter >= 1))
    st = ist_fail(IST_ERR_ARG, "--rrc-min-scale must be in [0, 1] and --jitter in [0, 1)");
  if (st == IST_OK && (o.kd_beta < 0 || o.kd_beta > 1 || o.kd_temperature <= 0 || o.lr <= 0 || o.lambda_ort < 0))
    st = ist_fail(IST_ERR_ARG, "--kd-beta must be in [0,1], --kd-temperature and --lr > 0, --lambda-ort ≥ 0");
  if (st == IST_OK) {
    int full = !strcmp(o.schedule, "full");
    if (o.teacher_epochs < 0) o.teacher_epochs = full ? FULL_EPOCHS : SHORT_TEACHER_EPOCHS;
    if (o.epochs < 0) o.epochs = full ? FULL_EPOCHS : SHORT_DISTILL_EPOCHS;
    if (o.lr_decay < 0) o.lr_decay = full ? FULL_LR_DECAY : SHORT_LR_DECAY;
    omp_set_num_threads(o.threads);
  }
  /* The ranks, then this rank's device: before any model is built. */
  if (st == IST_OK) st = ist_comm_create(o.comm_kind, &o.comm);
  if (st == IST_OK) st = start_device(&o);
  if (st == IST_OK && strcmp(cmd, "eval") && strcmp(cmd, "analyze") && strcmp(cmd, "export")) {
    /* Check the student's setting and init method before any long work starts (eval and analyze
     * take the model from the checkpoint). */
    ist_init_method method;
    ist_model_config cfg;
    ist_model probe;
    st = ist_init_method_parse(o.init, &method);
    if (st == IST_OK) st = student_config(&o, &cfg);
    if (st == IST_OK && (st = ist_model_create(o.model, backend_of(&o), 1, &cfg, &probe)) == IST_OK)
      ist_model_destroy(&probe);
  }
  if (st == IST_OK && o.comm->size > 1) {
    /* Every rank must run the same command line: compare them before any work. */
    char line[8192] = "";
    for (int i = 1; i < argc; i++)
      snprintf(line + strlen(line), sizeof line - strlen(line), "%s%s", i > 1 ? " " : "", argv[i]);
    st = ist_comm_check_same(o.comm, "the command lines", line);
  }
  int needs_out = st == IST_OK && strcmp(cmd, "eval") && strcmp(cmd, "report") && strcmp(cmd, "analyze") &&
                  strcmp(cmd, "export") && strcmp(cmd, "hw");
  if (needs_out) st = make_dir(o.out);
  /* Every file a command writes outside --out: its folder exists and is writable, now. */
  const int trains = !strcmp(cmd, "run") || !strcmp(cmd, "teacher") || !strcmp(cmd, "distill") || !strcmp(cmd, "init");
  if (st == IST_OK && trains && (!strcmp(cmd, "run") || !strcmp(cmd, "teacher"))) st = check_writable("--teacher", o.teacher);
  if (st == IST_OK && trains) st = check_writable("--student", o.student);
  if (st == IST_OK && !strcmp(cmd, "eval")) st = check_writable("--logits", o.logits);
  if (st == IST_OK && !strcmp(cmd, "export")) st = check_writable("--to", o.to);
  if (st == IST_OK && (!strcmp(cmd, "analyze") || !strcmp(cmd, "hw")) && o.png) {
    st = check_writable("--png", o.png);
    if (st == IST_OK) st = ist_gnuplot_check_path("--png", o.png);
  }
  if (st == IST_OK) {
    if (!strcmp(cmd, "run")) st = cmd_run(&o);
    else if (!strcmp(cmd, "teacher")) {
      ist_dataset train, test;
      float acc;
      st = load_data(&o, &train, &test);
      if (st == IST_OK) {
        st = cmd_teacher(&o, &train, &test, &acc);
        ist_dataset_free(&train);
        ist_dataset_free(&test);
      }
    } else if (!strcmp(cmd, "init") || !strcmp(cmd, "distill")) {
      ist_model teacher;
      char init_path[4096];
      path_in(init_path, sizeof init_path, NULL, o.out, "student_init.safetensors");
      st = load_teacher(&o, &teacher);
      if (st == IST_OK) {
        if (!strcmp(cmd, "init")) st = cmd_init(&o, &teacher, o.student ? o.student : init_path);
        else if (o.from) snprintf(init_path, sizeof init_path, "%s", o.from);
        if (st == IST_OK && strcmp(cmd, "init")) {
          ist_dataset train, test;
          float acc;
          st = load_data(&o, &train, &test);
          if (st == IST_OK) {
            st = cmd_distill(&o, &teacher, init_path, &train, &test, &acc);
            ist_dataset_free(&train);
            ist_dataset_free(&test);
          }
        }
        ist_model_destroy(&teacher);
      }
    } else if (!strcmp(cmd, "eval")) st = cmd_eval(&o);
    else if (!strcmp(cmd, "report")) st = cmd_report(&o);
    else if (!strcmp(cmd, "analyze")) st = cmd_analyze(&o);
    else if (!strcmp(cmd, "export")) st = cmd_export(&o);
    else if (!strcmp(cmd, "hw")) st = cmd_hw(&o);
    else if (!strcmp(cmd, "explore")) st = cmd_explore(&o);
    else st = ist_fail(IST_ERR_ARG, "unknown command '%s' (run, teacher, init, distill, eval, report, analyze, export, hw, explore; see --help)", cmd);
  }
  const int ranks = o.comm ? o.comm->size : 1;
  if (st != IST_OK) {
    if (ranks > 1) fprintf(stderr, "insitu: error (rank %d of %d): %s\n", o.comm->rank, ranks, ist_last_error());
    else fprintf(stderr, "insitu: error: %s\n", ist_last_error());
    fflush(stderr);
    /* A failure the other ranks do not know of would leave them waiting: end them all. */
    if (ranks > 1 && !o.comm->agreed_error) o.comm->abort(o.comm, 1);
  }
  ist_comm_destroy(o.comm);
  return st == IST_OK ? 0 : 1;
}
