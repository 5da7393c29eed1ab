/* The training step and epoch loop, data-parallel over ranks, with progress lines, per-epoch
 * metrics, and a training state that a killed run resumes from exactly. */
#include "train/trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "host/checked.h"
#include "train/optimizer.h"

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void ist_ortho_total(ist_model *m, float scale) {
  for (int i = 0; i < m->nconvs; i++) {
    ist_conv_layer *l = m->convs[i];
    if (!l->set.generated || (!l->gen.level1 && !l->gen.level2)) continue;
    m->be->ortho_forward(&l->gen, l->wb, l->u, l->v, m->ortho_sum);
    if (scale > 0) m->be->ortho_backward(scale, &l->gen, l->wb, l->u, l->v, l->dwb, l->du, l->dv);
  }
}

/* Whether every gradient is finite, from their sum (one pass; a NaN or Inf anywhere makes it
 * non-finite, and so does an overflowing sum, which is as bad). Called at logging points only:
 * a backend other than the CPU's downloads the gradients there. */
static int grads_finite(const ist_model *m) {
  const int64_t n = (int64_t)(m->grads_arena.used / sizeof(float));
  const float *g = (const float *)m->grads_arena.base;
  float *host = NULL;
  if (m->be->device != IST_CPU) {
    if (!(host = malloc(sizeof(float) * (size_t)(n ? n : 1)))) return 1; /* unchecked, not failed */
    m->be->download(host, g, sizeof(float) * (size_t)n);
    g = host;
  }
  double sum = 0;
  for (int64_t i = 0; i < n; i++) sum += g[i];
  free(host);
  return isfinite(sum);
}

/* A JSON number, or null for NaN and ±Inf (which JSON cannot hold). */
static void json_number(FILE *f, const char *key, double x, const char *fmt) {
  fprintf(f, ",\"%s\":", key);
  if (isfinite(x)) fprintf(f, fmt, x);
  else fputs("null", f);
}

/* Stops training on a non-finite value: names what, the stage, epoch and step, and what is kept. */
static ist_status numeric_fault(const ist_train_config *cfg, ist_comm *comm, const char *what, double value, int epoch,
                                int64_t step, int64_t steps) {
  comm->agreed_error = 1; /* every rank sees the same reduced value and stops the same way */
  char kept[4200] = "nothing was written";
  if (cfg->state_path || cfg->checkpoint)
    snprintf(kept, sizeof kept, "the last good %s%s%s is kept", cfg->state_path ? "state " : "checkpoint",
             cfg->state_path ? cfg->state_path : "", cfg->state_path && cfg->checkpoint ? " and checkpoint" : "");
  return ist_fail(IST_ERR_NUMERIC, "[%s] %s is %g at epoch %d, step %lld of %lld: training stopped (%s; try a lower --lr)",
                  cfg->stage, what, value, epoch + 1, (long long)step, (long long)steps, kept);
}

/* ---- collectives on backend memory: in place on the CPU, and with a communicator that reduces
 * device memory (NCCL, ordered on the compute stream); otherwise staged through the host ---- */

static ist_status reduce_backend(ist_comm *c, const ist_backend *be, float *buf, int64_t n) {
  if (be->device == IST_CPU) return c->allreduce_f32(c, buf, n);
  if (c->allreduce_device_f32) return c->allreduce_device_f32(c, buf, n);
  float *host = malloc(sizeof(float) * (size_t)n);
  if (!host) return ist_fail(IST_ERR_MEMORY, "all-reduce: out of memory");
  be->download(host, buf, sizeof(float) * (size_t)n);
  ist_status st = c->allreduce_f32(c, host, n);
  if (st == IST_OK) be->upload(buf, host, sizeof(float) * (size_t)n);
  free(host);
  return st;
}

static ist_status broadcast_backend(ist_comm *c, const ist_backend *be, void *buf, size_t bytes) {
  if (be->device == IST_CPU) return c->broadcast(c, buf, (int64_t)bytes, 0);
  void *host = malloc(bytes ? bytes : 1);
  if (!host) return ist_fail(IST_ERR_MEMORY, "broadcast: out of memory");
  be->download(host, buf, bytes);
  ist_status st = c->broadcast(c, host, (int64_t)bytes, 0);
  if (st == IST_OK) be->upload(buf, host, bytes);
  free(host);
  return st;
}

/* Every rank's BatchNorm running statistics become their average. */
static ist_status average_buffers(ist_model *m, ist_comm *c) {
  for (int i = 0; i < m->nparams; i++) {
    ist_param *p = &m->params[i];
    if (p->kind != IST_PARAM_BUFFER) continue;
    IST_TRY(reduce_backend(c, m->be, p->data, p->numel));
    m->be->scale(p->numel, 1.0f / (float)c->size, p->data);
  }
  return IST_OK;
}

/* Synchronized BatchNorm's sums; a failure is kept for the step to report. */
typedef struct {
  ist_comm *comm;
  int failed;
  char err[512];
} sync_ctx;

static void sync_sum(void *ctx, double *buf, int n) {
  sync_ctx *s = ctx;
  if (s->failed) return;
  if (s->comm->allreduce_f64(s->comm, buf, n) != IST_OK) {
    s->failed = 1;
    snprintf(s->err, sizeof s->err, "%s", ist_last_error());
  }
}

static void sync_sum_device(void *ctx, double *dev_buf, int n) {
  sync_ctx *s = ctx;
  if (s->failed) return;
  if (s->comm->allreduce_device_f64(s->comm, dev_buf, n) != IST_OK) {
    s->failed = 1;
    snprintf(s->err, sizeof s->err, "%s", ist_last_error());
  }
}

/* Reads the model's per-step scalars (one download), zeroes them, and returns the loss
 * (the losses plus lambda_ort times the penalties) and the hits of what they summed. */
static void take_scalars(ist_model *m, float lambda_ort, double *loss, double *hits) {
  float v[IST_MODEL_SCALARS];
  int32_t h;
  m->be->download(v, m->scalars, sizeof v);
  memcpy(&h, &v[2], sizeof h);
  m->be->zero(m->scalars, IST_MODEL_SCALARS);
  *loss = (float)(v[0] + lambda_ort * v[1]);
  *hits = h;
}

/* ---- evaluation ---- */

/* With ranks, batch i is the global batch i (rank r's share at position (i·R + r)·b), the same
 * images a single process with batch b·R would use. */
static ist_status bn_recalibrate_on(ist_model *m, const ist_dataset *d, int batches, const ist_comm *comm) {
  const int b = m->batch, rank = comm ? comm->rank : 0, ranks = comm ? comm->size : 1;
  int32_t *labels = malloc(sizeof(int32_t) * (size_t)b);
  float *images = malloc(sizeof(float) * (size_t)b * m->in_c * m->in_h * m->in_w);
  const int64_t full = d->n / ((int64_t)b * ranks); /* whole global batches in d, cycled through */
  ist_status st = labels && images ? IST_OK : ist_fail(IST_ERR_MEMORY, "BN re-estimation: out of memory");
  for (int i = 0; st == IST_OK && full > 0 && i < batches; i++) {
    st = ist_dataset_batch(d, NULL, ((i % full) * ranks + rank) * b, b, images, labels, NULL, 0);
    if (st != IST_OK) break;
    ist_model_set_batch(m, b, images, labels);
    /* Momentum 1/(i+1): the running statistics become the plain average over all the batches
     * (PyTorch's momentum=None), not an average dominated by the last few. */
    m->bn_momentum = 1.0f / (float)(i + 1);
    m->forward(m, b, 1); /* training mode: only the running statistics change */
  }
  m->bn_momentum = IST_BN_MOMENTUM;
  free(images);
  free(labels);
  return st;
}

ist_status ist_bn_recalibrate(ist_model *m, const ist_dataset *d, int batches) {
  return bn_recalibrate_on(m, d, batches, NULL);
}

ist_status ist_evaluate_on(ist_model *m, const ist_dataset *d, ist_comm *comm, float *acc, float *loss) {
  const int rank = comm ? comm->rank : 0, size = comm ? comm->size : 1;
  const int64_t from = d->n * rank / size, to = d->n * (rank + 1) / size;
  double sums[2] = {0, 0}; /* correct, loss */
  int32_t *labels = malloc(sizeof(int32_t) * (size_t)m->batch);
  float *images = malloc(sizeof(float) * (size_t)m->batch * m->in_c * m->in_h * m->in_w);
  ist_status st = labels && images ? IST_OK : ist_fail(IST_ERR_MEMORY, "evaluation: out of memory");
  /* The batch losses are means: the device sums those of equal-size batches, read (weighted by
   * the size) when the size changes and at the end; on the CPU after every batch. */
  const int every_batch = m->be->device == IST_CPU;
  int summed_n = 0;
  double bloss, bhits;
  m->be->zero(m->scalars, IST_MODEL_SCALARS);
  for (int64_t s = from; st == IST_OK && s < to; s += m->batch) {
    int n = (int)(to - s < m->batch ? to - s : m->batch);
    st = ist_dataset_batch(d, NULL, s, n, images, labels, NULL, 0);
    if (st != IST_OK) break;
    if (summed_n && summed_n != n) {
      take_scalars(m, 0, &bloss, &bhits);
      sums[1] += bloss * summed_n;
      sums[0] += bhits;
    }
    ist_model_set_batch(m, n, images, labels);
    m->forward(m, n, 0);
    m->be->cross_entropy(n, m->classes, m->logits, m->labels, NULL, m->loss_sum, m->hits);
    summed_n = every_batch ? 0 : n;
    if (every_batch) {
      take_scalars(m, 0, &bloss, &bhits);
      sums[1] += bloss * n;
      sums[0] += bhits;
    }
  }
  if (st == IST_OK && summed_n) {
    take_scalars(m, 0, &bloss, &bhits);
    sums[1] += bloss * summed_n;
    sums[0] += bhits;
  }
  if (st == IST_OK) st = m->be->sync();
  free(images);
  free(labels);
  /* Every rank reaches the reduction, failed or not, so none is left waiting. */
  sums[0] = st == IST_OK ? sums[0] : NAN;
  if (size > 1) {
    ist_status rs = comm->allreduce_f64(comm, sums, 2);
    if (st == IST_OK) st = rs;
  }
  if (st == IST_OK && isnan(sums[0])) st = ist_fail(IST_ERR_STATE, "evaluation failed on another rank");
  if (loss) *loss = (float)(sums[1] / d->n);
  *acc = (float)(sums[0] / d->n);
  return st;
}

ist_status ist_evaluate(ist_model *m, const ist_dataset *d, float *acc, float *loss) {
  return ist_evaluate_on(m, d, NULL, acc, loss);
}

ist_status ist_check_data(const ist_model *m, const ist_dataset *d) {
  if (d->c != m->in_c || d->h != m->in_h || d->w != m->in_w || d->classes > m->classes)
    return ist_fail(IST_ERR_ARG, "--data: %dx%dx%d images in %d classes do not fit --model %s (%dx%dx%d, %d classes)", d->c,
                    d->h, d->w, d->classes, m->arch, m->in_c, m->in_h, m->in_w, m->classes);
  return IST_OK;
}

/* ---- the training state ---- */

typedef struct {
  int epoch, step;             /* the next step to run */
  double loss_sum, hits_sum;   /* of the epoch so far (progress lines, epoch summary) */
  double seconds, test_acc;    /* training time so far; the last evaluation */
} train_pos;

/* What a state may only be resumed under: the model, its settings and every flag that changes
 * what training computes (not the epoch count: a finished run may be extended). */
static void fingerprint(const ist_model *m, const ist_dataset *train, const ist_train_config *c, char *buf, size_t cap) {
  char layers[2048];
  ist_model_describe(m, layers, sizeof layers);
  const int ranks = c->comm ? c->comm->size : 1;
  snprintf(buf, cap,
           "stage=%s arch=%s layers=%s batch=%d ranks=%d images=%lld lr=%.9g decay=%.9g wd=%.9g kd=%.9g/%.9g ort=%.9g "
           "flip=%d pad=%d rrc=%.9g jitter=%.9g bn_recalib=%d seed=%llu sync_bn=%d",
           c->stage, m->arch, layers, m->batch, ranks, (long long)train->n, c->lr, c->lr_decay, c->weight_decay,
           c->kd_beta, c->kd_temperature, c->lambda_ort, c->augment.flip, c->augment.crop_pad, c->augment.rrc_min_scale,
           c->augment.jitter, c->bn_recalib, (unsigned long long)c->seed, c->sync_bn);
}

/* The moments in a state file are packed in parameter order (optimizer.m, then .v, nmom floats
 * each); in memory they lie as the gradient block. Copies one into the other with one transfer:
 * packed → moments when to_backend, else moments → packed. */
static ist_status st_moments(const ist_model *m, const ist_radam *opt, float *packed, int64_t nmom, int to_backend) {
  const int64_t n = opt->n;
  float *all = calloc((size_t)(2 * n + 1), sizeof(float));
  if (!all) return ist_fail(IST_ERR_MEMORY, "optimizer state: out of memory");
  if (!to_backend && n) m->be->download(all, ist_radam_moment(opt, 0), sizeof(float) * 2 * (size_t)n);
  const float *g0 = (const float *)m->grads_arena.base;
  for (int k = 0; k < 2; k++) {
    int64_t off = 0;
    for (int i = 0; i < m->nparams; i++) {
      const ist_param *p = &m->params[i];
      if (!p->grad) continue;
      float *mem = all + k * n + (p->grad - g0), *file = packed + k * nmom + off;
      const size_t bytes = sizeof(float) * (size_t)p->numel;
      if (to_backend) memcpy(mem, file, bytes);
      else memcpy(file, mem, bytes);
      off += p->numel;
    }
  }
  if (to_backend && n) m->be->upload(ist_radam_moment(opt, 0), all, sizeof(float) * 2 * (size_t)n);
  free(all);
  return IST_OK;
}

static ist_status save_state(const ist_model *m, const ist_radam *opt, const train_pos *pos, const char *fp,
                             const char *path) {
  ist_st_tensor t[IST_MAX_PARAMS + 2];
  float *host = ist_model_params_to_host(m);
  const int64_t nmom = ist_model_param_floats(m);
  float *mom = malloc(sizeof(float) * 2 * (size_t)(nmom ? nmom : 1));
  if (!host || !mom) {
    free(host);
    free(mom);
    return ist_fail(IST_ERR_MEMORY, "%s: out of memory", path);
  }
  ist_status mst = st_moments(m, opt, mom, nmom, 0);
  if (mst != IST_OK) {
    free(host);
    free(mom);
    return mst;
  }
  /* The copies are on the host anyway: a state with NaN or Inf is never written over a good one. */
  ist_status fin = ist_check_finite(path, "optimizer.m/v", mom, 2 * nmom);
  for (int i = 0; fin == IST_OK && i < m->nparams; i++)
    fin = ist_check_finite(path, m->params[i].name, ist_param_in(m, host, &m->params[i]), m->params[i].numel);
  if (fin != IST_OK) {
    free(host);
    free(mom);
    return ist_fail(IST_ERR_NUMERIC, "%s; the previous state is kept", ist_last_error());
  }
  int nt = 0;
  for (int i = 0; i < m->nparams; i++, nt++) {
    const ist_param *p = &m->params[i];
    t[nt] = (ist_st_tensor){.dtype = IST_F32, .ndim = p->ndim, .data = ist_param_in(m, host, p),
                            .nbytes = sizeof(float) * (size_t)p->numel};
    snprintf(t[nt].name, sizeof t[nt].name, "%s", p->name);
    memcpy(t[nt].shape, p->shape, sizeof p->shape);
  }
  const char *names[2] = {"optimizer.m", "optimizer.v"};
  for (int k = 0; k < 2; k++, nt++)
    t[nt] = (ist_st_tensor){.dtype = IST_F32, .ndim = 1, .shape = {nmom}, .data = mom + k * nmom,
                            .nbytes = sizeof(float) * (size_t)nmom};
  snprintf(t[nt - 2].name, sizeof t[0].name, "%s", names[0]);
  snprintf(t[nt - 1].name, sizeof t[0].name, "%s", names[1]);
  ist_st_meta meta[IST_MODEL_META + 2];
  ist_model_meta(m, "role", "train-state", meta);
  snprintf(meta[IST_MODEL_META].key, sizeof meta[0].key, "fingerprint");
  snprintf(meta[IST_MODEL_META].value, sizeof meta[0].value, "%s", fp);
  snprintf(meta[IST_MODEL_META + 1].key, sizeof meta[0].key, "position");
  snprintf(meta[IST_MODEL_META + 1].value, sizeof meta[0].value,
           "epoch=%d step=%d radam_step=%d loss_sum=%.17g hits_sum=%.17g seconds=%.17g test_acc=%.17g", pos->epoch,
           pos->step, opt->step, pos->loss_sum, pos->hits_sum, pos->seconds, pos->test_acc);
  ist_status st = ist_st_write(path, t, nt, meta, IST_MODEL_META + 2);
  free(host);
  free(mom);
  return st;
}

/* What a state's position may say in this run: steps per epoch, images per step, epochs. */
typedef struct {
  int64_t steps, batch_images;
  int epochs;
} pos_limits;

/* One "key=value" of the position text at *p (then past it and one space). */
static const char *position_field(const char **p, const char *key, size_t *len) {
  const size_t k = strlen(key);
  if (strncmp(*p, key, k) || (*p)[k] != '=') return NULL;
  const char *v = *p + k + 1, *end = strchr(v, ' ');
  *len = end ? (size_t)(end - v) : strlen(v);
  *p = end ? end + 1 : v + *len;
  return v;
}

/* The position metadata "epoch=E step=S radam_step=R loss_sum=… hits_sum=… seconds=… test_acc=…",
 * every number parsed whole and checked against this run before any of it is used: E in
 * 0..epochs, S a step of the epoch (0 when E = epochs), R = E·steps + S (the optimizer's step
 * count), the sums those steps can give. */
static ist_status parse_position(const char *path, const char *text, pos_limits lim, train_pos *pos, int *radam_step) {
  static const char *keys[7] = {"epoch", "step", "radam_step", "loss_sum", "hits_sum", "seconds", "test_acc"};
  double v[7];
  const char *p = text;
  for (int i = 0; i < 7; i++) {
    size_t len;
    const char *val = position_field(&p, keys[i], &len);
    char buf[64];
    if (!val || len == 0 || len >= sizeof buf)
      return ist_fail(IST_ERR_FORMAT, "%s: position metadata: expected %s=<number> at '%.40s'", path, keys[i], p);
    memcpy(buf, val, len);
    buf[len] = 0;
    int64_t n;
    const int ok = i < 3 ? ist_parse_i64(buf, 0, INT32_MAX, &n) : ist_parse_double(buf, 0, 1e300, &v[i]);
    if (!ok)
      return ist_fail(IST_ERR_FORMAT, "%s: position metadata: %s '%s' is not a %s", path, keys[i], buf,
                      i < 3 ? "whole number in 0..2147483647" : "finite number ≥ 0");
    if (i < 3) v[i] = (double)n;
  }
  if (*p) return ist_fail(IST_ERR_FORMAT, "%s: position metadata: unexpected '%.40s' after test_acc", path, p);
  const int64_t epoch = (int64_t)v[0], step = (int64_t)v[1], rstep = (int64_t)v[2];
  int64_t done = 0;
  if (epoch > lim.epochs)
    return ist_fail(IST_ERR_STATE, "%s: position epoch=%lld is past this run's --epochs (allowed 0..%d)", path,
                    (long long)epoch, lim.epochs);
  if (step >= lim.steps || (epoch == lim.epochs && step != 0))
    return ist_fail(IST_ERR_STATE, "%s: position step=%lld (allowed 0..%lld, 0 once every epoch is done)", path,
                    (long long)step, (long long)(lim.steps - 1));
  if (!ist_mul_i64(epoch, lim.steps, &done) || !ist_add_i64(done, step, &done) || rstep != done)
    return ist_fail(IST_ERR_STATE, "%s: position radam_step=%lld (must be epoch × %lld + step = %lld)", path,
                    (long long)rstep, (long long)lim.steps, (long long)done);
  const double hits_max = (double)step * (double)lim.batch_images;
  if (v[4] > hits_max || v[4] != floor(v[4]))
    return ist_fail(IST_ERR_STATE, "%s: position hits_sum=%g (a whole number in 0..%g)", path, v[4], hits_max);
  if (v[6] > 1) return ist_fail(IST_ERR_STATE, "%s: position test_acc=%g (allowed 0..1)", path, v[6]);
  *pos = (train_pos){.epoch = (int)epoch, .step = (int)step, .loss_sum = v[3], .hits_sum = v[4], .seconds = v[5],
                     .test_acc = v[6]};
  *radam_step = (int)rstep;
  return IST_OK;
}

/* The moments of a state: finite, and the second moment never negative (RAdam takes its root). */
static ist_status check_moments(const char *path, const ist_st_tensor *mt, const ist_st_tensor *vt, int64_t n) {
  IST_TRY(ist_check_finite(path, "optimizer.m", mt->data, n));
  IST_TRY(ist_check_finite(path, "optimizer.v", vt->data, n));
  for (int64_t i = 0; i < n; i++) {
    float x;
    memcpy(&x, (const unsigned char *)vt->data + sizeof(float) * (size_t)i, sizeof x);
    if (x < 0) return ist_fail(IST_ERR_FORMAT, "%s: tensor optimizer.v has a negative value at element %lld (allowed ≥ 0)", path, (long long)i);
  }
  return IST_OK;
}

static ist_status load_state(ist_model *m, ist_radam *opt, train_pos *pos, const char *fp, const char *path,
                             pos_limits lim) {
  ist_safetensors f;
  IST_TRY(ist_st_read(path, &f));
  const char *saved = ist_st_meta_get(&f, "fingerprint"), *where = ist_st_meta_get(&f, "position");
  const int64_t nmom = ist_model_param_floats(m);
  const ist_st_tensor *mt = ist_st_find(&f, "optimizer.m"), *vt = ist_st_find(&f, "optimizer.v");
  ist_status st = IST_OK;
  if (!saved || !where || !mt || !vt) {
    st = ist_fail(IST_ERR_FORMAT, "%s: not an insitu training state (no fingerprint, position or optimizer moments)", path);
  } else if (strcmp(saved, fp)) {
    st = ist_fail(IST_ERR_STATE, "%s: saved by a run with other flags or another model (saved: %s; now: %s)", path,
                  saved, fp);
  } else if ((st = parse_position(path, where, lim, pos, &opt->step)) != IST_OK) {
  } else if (mt->dtype != IST_F32 || vt->dtype != IST_F32 || mt->ndim != 1 || vt->ndim != 1 || mt->shape[0] != nmom ||
             vt->shape[0] != nmom) {
    st = ist_fail(IST_ERR_STATE, "%s: optimizer moments are not %lld F32 values", path, (long long)nmom);
  } else if ((st = check_moments(path, mt, vt, nmom)) == IST_OK) {
    st = ist_model_load_from(m, &f, path);
  }
  if (st == IST_OK) {
    float *mom = malloc(sizeof(float) * 2 * (size_t)(nmom ? nmom : 1));
    if (!mom) st = ist_fail(IST_ERR_MEMORY, "%s: out of memory", path);
    if (mom) {
      memcpy(mom, mt->data, sizeof(float) * (size_t)nmom);
      memcpy(mom + nmom, vt->data, sizeof(float) * (size_t)nmom);
      st = st_moments(m, opt, mom, nmom, 1);
      free(mom);
    }
  }
  ist_st_free(&f);
  return st;
}

/* Rank 0 reads the state (if the file exists) and sends it to every rank; all ranks learn the
 * outcome, so a bad file fails every rank the same way. */
static ist_status resume_state(ist_model *m, ist_radam *opt, train_pos *pos, const char *fp, const char *path,
                               pos_limits lim, ist_comm *comm, int *resumed) {
  struct stat sb;
  int have = stat(path, &sb) == 0;
  ist_status st = IST_OK;
  char err[1024] = "";
  if (comm->rank == 0 && have && (st = load_state(m, opt, pos, fp, path, lim)) != IST_OK)
    snprintf(err, sizeof err, "%s", ist_last_error());
  if (comm->size > 1) {
    int32_t flags[2] = {have, st != IST_OK};
    IST_TRY(comm->broadcast(comm, flags, sizeof flags, 0));
    IST_TRY(comm->broadcast(comm, err, sizeof err, 0));
    have = flags[0];
    if (flags[1]) {
      comm->agreed_error = 1;
      return ist_fail(IST_ERR_STATE, "%s", err);
    }
    if (have) {
      IST_TRY(broadcast_backend(comm, m->be, m->params_arena.base, m->params_arena.used));
      IST_TRY(broadcast_backend(comm, m->be, opt->state.base, sizeof(float) * 2 * (size_t)opt->n));
      IST_TRY(comm->broadcast(comm, pos, sizeof *pos, 0));
      IST_TRY(comm->broadcast(comm, &opt->step, sizeof opt->step, 0));
    }
  }
  IST_TRY(st);
  *resumed = have;
  return IST_OK;
}

/* ---- the loop ---- */

/* Batch s of the epoch's order (this rank's share) into pinned buffer s % 2, then uploaded
 * (asynchronously, after the ops issued so far) into the model's input and labels. */
static ist_status next_batch(ist_model *m, const ist_dataset *train, const int32_t *order, int64_t s, int rank,
                             int ranks, const ist_augment *aug, uint64_t aug_seed, float *images[2],
                             int32_t *labels[2]) {
  const int b = m->batch, k = (int)(s % 2);
  const size_t in_bytes = sizeof(float) * (size_t)b * m->in_c * m->in_h * m->in_w;
  m->be->upload_wait(images[k]); /* its last upload is done before it is refilled */
  m->be->upload_wait(labels[k]);
  IST_TRY(ist_dataset_batch(train, order, s * b * ranks + (int64_t)rank * b, b, images[k], labels[k], aug, aug_seed));
  m->be->upload_async(m->input, images[k], in_bytes);
  m->be->upload_async(m->labels, labels[k], sizeof(int32_t) * (size_t)b);
  return IST_OK;
}

ist_status ist_train(ist_model *m, ist_model *teacher, const ist_dataset *train, const ist_dataset *test,
                     const ist_train_config *cfg, ist_train_result *res) {
  ist_comm single = {.kind = "none", .rank = 0, .size = 1};
  ist_comm *comm = cfg->comm ? cfg->comm : &single;
  const int b = m->batch, ranks = comm->size, rank = comm->rank, lead = rank == 0;
  const int64_t steps = train->n / ((int64_t)b * ranks);
  memset(res, 0, sizeof *res);
  if (steps < 1)
    return ist_fail(IST_ERR_ARG, "--batch: %d × %d ranks is more than the %lld training images", b, ranks,
                    (long long)train->n);
  IST_TRY(ist_check_data(m, train));
  IST_TRY(ist_check_data(m, test));
  if (teacher && teacher->batch != b) return ist_fail(IST_ERR_ARG, "teacher batch %d differs from student batch %d", teacher->batch, b);
  char fp[4096];
  fingerprint(m, train, cfg, fp, sizeof fp);
  IST_TRY(ist_comm_check_same(comm, "the model, data or training flags", fp));
  ist_radam opt;
  IST_TRY(ist_radam_create(&opt, m, cfg->lr, cfg->lr_decay, cfg->weight_decay));
  const size_t in_floats = (size_t)b * m->in_c * m->in_h * m->in_w;
  /* Batches are made on the host in two pinned buffers: while the device trains on one, the next
   * is filled and uploaded (asynchronously, after the step's ops) from the other. */
  int32_t *order = malloc(sizeof(int32_t) * (size_t)train->n);
  float *images[2] = {m->be->host_alloc(sizeof(float) * in_floats), m->be->host_alloc(sizeof(float) * in_floats)};
  int32_t *labels[2] = {m->be->host_alloc(sizeof(int32_t) * (size_t)b), m->be->host_alloc(sizeof(int32_t) * (size_t)b)};
  ist_status st = order && images[0] && images[1] && labels[0] && labels[1]
                      ? IST_OK
                      : ist_fail(IST_ERR_MEMORY, "%s: out of memory for the data order and batches", cfg->stage);
  sync_ctx sync = {.comm = comm};
  const ist_reducer reducer = {sync_sum, &sync, ranks,
                               comm->allreduce_device_f64 && m->be->device != IST_CPU ? sync_sum_device : NULL};
  if (cfg->sync_bn && ranks > 1) m->bn_sync = &reducer;
  /* Every rank starts from rank 0's parameters. */
  if (st == IST_OK && ranks > 1) st = broadcast_backend(comm, m->be, m->params_arena.base, m->params_arena.used);
  train_pos pos = {0};
  int resumed = 0;
  const pos_limits lim = {.steps = steps, .batch_images = (int64_t)b * ranks, .epochs = cfg->epochs};
  if (st == IST_OK && cfg->resume && cfg->state_path)
    st = resume_state(m, &opt, &pos, fp, cfg->state_path, lim, comm, &resumed);
  const int64_t grad_floats = (int64_t)(m->grads_arena.used / sizeof(float));
  if (st == IST_OK && lead) {
    if (resumed)
      printf("[%s] resuming from %s at epoch %d, step %d\n", cfg->stage, cfg->state_path, pos.epoch + 1, pos.step);
    if (ranks > 1)
      printf("[%s] data-parallel over %d ranks (%s%s): %lld bytes of gradients all-reduced per step (a dense model's: "
             "%lld bytes)\n",
             cfg->stage, ranks, comm->kind, cfg->sync_bn ? ", synchronized BatchNorm" : "",
             (long long)(ist_model_param_floats(m) * 4), (long long)(ist_model_dense_param_floats(m) * 4));
    fflush(stdout);
  }
  const double t_start = now_s(), t0 = t_start - pos.seconds; /* t0: as if never interrupted */
  const int64_t images_before = ((int64_t)pos.epoch * steps + pos.step) * b * ranks;
  res->test_acc = (float)pos.test_acc;
  for (int epoch = pos.epoch; epoch < cfg->epochs && st == IST_OK; epoch++) {
    /* The order and the augmentation of an epoch depend only on the seed and the epoch. */
    ist_rng rng;
    ist_rng_for(&rng, cfg->seed, 0x5eed0000u + (uint64_t)epoch);
    for (int64_t i = 0; i < train->n; i++) order[i] = (int32_t)i;
    ist_rng_shuffle(&rng, order, train->n);
    const uint64_t aug_seed = ist_mix64(cfg->seed * 0x9e3779b97f4a7c15ULL + (uint64_t)epoch);
    ist_radam_set_epoch(&opt, epoch);
    const double te = now_s();
    const int64_t first = epoch == pos.epoch ? pos.step : 0;
    m->be->zero(m->scalars, IST_MODEL_SCALARS);
    if (first < steps) st = next_batch(m, train, order, first, rank, ranks, &cfg->augment, aug_seed, images, labels);
    for (int64_t s = first; s < steps && st == IST_OK; s++) {
      ist_model_zero_grad(m);
      m->forward(m, b, 1);
      if (teacher) {
        m->be->copy(teacher->input, m->input, (int64_t)in_floats);
        teacher->forward(teacher, b, 0);
        m->be->kd_loss(b, m->classes, m->logits, teacher->logits, m->labels, cfg->kd_beta, cfg->kd_temperature,
                       m->dlogits, m->loss_sum, m->hits);
      } else {
        m->be->cross_entropy(b, m->classes, m->logits, m->labels, m->dlogits, m->loss_sum, m->hits);
      }
      m->backward(m, b);
      if (cfg->lambda_ort > 0) ist_ortho_total(m, cfg->lambda_ort);
      if (ranks > 1) { /* the mean gradient of the global batch */
        st = reduce_backend(comm, m->be, (float *)m->grads_arena.base, grad_floats);
        if (st == IST_OK) m->be->scale(grad_floats, 1.0f / (float)ranks, (float *)m->grads_arena.base);
        if (st == IST_OK && sync.failed) st = ist_fail(IST_ERR_STATE, "synchronized BatchNorm: %s", sync.err);
        if (st != IST_OK) break;
      }
      const int log_now = cfg->log_every > 0 && ((s + 1) % cfg->log_every == 0 || s + 1 == steps);
      const int save_now = cfg->state_path && cfg->state_every > 0 && (s + 1) % cfg->state_every == 0 && s + 1 < steps;
      /* The gradients are summed at logging points, before a state is written and at the epoch's
       * end, before the step applies them. (A non-finite gradient elsewhere makes the next loss or
       * the next write's finite check fail: nothing bad is ever saved.) */
      if ((log_now || save_now || s + 1 == steps) && !grads_finite(m)) {
        st = numeric_fault(cfg, comm, "the gradients' sum", NAN, epoch, s + 1, steps);
        break;
      }
      ist_radam_step(&opt, m);
      /* The next batch is made while the device runs this step (its upload follows the step). */
      if (s + 1 < steps) st = next_batch(m, train, order, s + 1, rank, ranks, &cfg->augment, aug_seed, images, labels);
      if (st != IST_OK) break;
      pos.epoch = epoch;
      pos.step = (int)(s + 1);
      /* The step's loss and hits stay on the device until a line, a state or the epoch's end needs
       * them (on the CPU they are read every step: that is free, keeps the sums per step, and
       * checks every step's loss). */
      if (m->be->device == IST_CPU || log_now || save_now || s + 1 == steps) {
        double stats[2];
        take_scalars(m, cfg->lambda_ort, &stats[0], &stats[1]);
        if (ranks > 1) { /* the loss and hits over the global batch */
          st = comm->allreduce_f64(comm, stats, 2);
          stats[0] /= ranks;
        }
        if (st == IST_OK) st = m->be->sync();
        if (st != IST_OK) break;
        if (!isfinite(stats[0])) {
          st = numeric_fault(cfg, comm, "the training loss", stats[0], epoch, s + 1, steps);
          break;
        }
        pos.loss_sum += stats[0];
        pos.hits_sum += stats[1];
      }
      const double el = now_s() - t0;
      if (lead && log_now) {
        const int64_t done = ((int64_t)epoch * steps + s + 1) * b * ranks;
        const double ips = (double)(done - images_before) / (now_s() - t_start);
        const double left = ((double)cfg->epochs * steps * b * ranks - done) / (ips > 0 ? ips : 1);
        printf("[%s] epoch %d/%d step %lld/%lld loss %.4f acc %.2f%% | %.0f img/s | ETA %dm%02ds\n", cfg->stage,
               epoch + 1, cfg->epochs, (long long)(s + 1), (long long)steps, pos.loss_sum / (s + 1),
               100.0 * pos.hits_sum / ((double)(s + 1) * b * ranks), ips, (int)left / 60, (int)left % 60);
        fflush(stdout);
      }
      if (lead && save_now) {
        pos.seconds = el;
        st = save_state(m, &opt, &pos, fp, cfg->state_path);
      }
    }
    if (st != IST_OK) break;
    /* Every rank ends the epoch with the same running statistics (re-estimated on its share of the
     * global batches, then averaged), then evaluates its share of the test set. */
    if (cfg->bn_recalib > 0) st = bn_recalibrate_on(m, train, cfg->bn_recalib, comm);
    if (st == IST_OK && ranks > 1) st = average_buffers(m, comm);
    if (st == IST_OK && sync.failed) st = ist_fail(IST_ERR_STATE, "synchronized BatchNorm: %s", sync.err);
    float test_loss = 0;
    if (st == IST_OK) st = ist_evaluate_on(m, test, comm, &res->test_acc, &test_loss);
    if (st == IST_OK && !isfinite(test_loss))
      st = numeric_fault(cfg, comm, "the test loss", test_loss, epoch, steps, steps);
    if (st != IST_OK) break;
    res->train_loss = (float)(pos.loss_sum / steps);
    res->train_acc = (float)(pos.hits_sum / ((double)steps * b * ranks));
    res->seconds = (float)(now_s() - t0);
    if (lead) {
      printf("[%s] epoch %d/%d done: train loss %.4f acc %.2f%% | test loss %.4f acc %.2f%% | lr %.2e | %.1fs\n",
             cfg->stage, epoch + 1, cfg->epochs, res->train_loss, 100 * res->train_acc, test_loss, 100 * res->test_acc,
             opt.h.lr, now_s() - te);
      fflush(stdout);
      if (cfg->metrics) {
        FILE *mf = cfg->metrics;
        fprintf(mf, "{\"stage\":\"%s\",\"epoch\":%d", cfg->stage, epoch + 1);
        json_number(mf, "train_loss", res->train_loss, "%.6f");
        json_number(mf, "train_acc", res->train_acc, "%.6f");
        json_number(mf, "test_loss", test_loss, "%.6f");
        json_number(mf, "test_acc", res->test_acc, "%.6f");
        json_number(mf, "lr", opt.h.lr, "%.6g");
        json_number(mf, "seconds", res->seconds, "%.2f");
        fprintf(mf, ",\"ranks\":%d}\n", ranks);
        if (fflush(mf) != 0 || ferror(mf)) st = ist_fail(IST_ERR_IO, "%s: metrics.jsonl: write failed", cfg->stage);
      }
      if (st == IST_OK && cfg->checkpoint) st = ist_model_save(m, cfg->checkpoint, cfg->stage);
    }
    pos = (train_pos){.epoch = epoch + 1, .seconds = now_s() - t0, .test_acc = res->test_acc};
    if (st == IST_OK && lead && cfg->state_path) st = save_state(m, &opt, &pos, fp, cfg->state_path);
  }
  if (st == IST_OK && cfg->epochs == 0) st = ist_evaluate_on(m, test, comm, &res->test_acc, NULL);
  if (res->seconds == 0) res->seconds = (float)(now_s() - t0);
  m->bn_sync = NULL;
  if (st == IST_OK) st = m->be->sync(); /* a failure of the last ops, named */
  for (int k = 0; k < 2; k++) {
    if (images[k]) m->be->upload_wait(images[k]);
    if (labels[k]) m->be->upload_wait(labels[k]);
    m->be->host_free(images[k]);
    m->be->host_free(labels[k]);
  }
  free(order);
  ist_radam_destroy(&opt);
  return st;
}
