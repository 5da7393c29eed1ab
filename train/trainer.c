/* The training step and epoch loop, with progress lines and per-epoch metrics. */
#include "train/trainer.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "train/optimizer.h"

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

float ist_ortho_total(ist_model *m, float scale) {
  float total = 0;
  for (int i = 0; i < m->nconvs; i++) {
    ist_conv_layer *l = m->convs[i];
    if (!l->set.generated || (!l->gen.level1 && !l->gen.level2)) continue;
    total += m->be->ortho_forward(&l->gen, l->wb, l->u, l->v);
    if (scale > 0) m->be->ortho_backward(scale, &l->gen, l->wb, l->u, l->v, l->dwb, l->du, l->dv);
  }
  return total;
}

ist_status ist_bn_recalibrate(ist_model *m, const ist_dataset *d, int batches) {
  const int b = m->batch;
  int32_t *labels = malloc(sizeof(int32_t) * (size_t)b);
  float *images = malloc(sizeof(float) * (size_t)b * m->in_c * m->in_h * m->in_w);
  const int64_t full = d->n / b; /* whole batches in d, cycled through */
  ist_status st = labels && images ? IST_OK : ist_fail(IST_ERR_MEMORY, "BN re-estimation: out of memory");
  for (int i = 0; st == IST_OK && full > 0 && i < batches; i++) {
    st = ist_dataset_batch(d, NULL, (i % full) * b, b, images, labels, NULL, NULL);
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

ist_status ist_evaluate(ist_model *m, const ist_dataset *d, float *acc, float *loss) {
  int64_t correct = 0;
  double loss_sum = 0;
  int32_t *labels = malloc(sizeof(int32_t) * (size_t)m->batch);
  float *images = malloc(sizeof(float) * (size_t)m->batch * m->in_c * m->in_h * m->in_w);
  ist_status st = labels && images ? IST_OK : ist_fail(IST_ERR_MEMORY, "evaluation: out of memory");
  for (int64_t s = 0; st == IST_OK && s < d->n; s += m->batch) {
    int n = (int)(d->n - s < m->batch ? d->n - s : m->batch);
    st = ist_dataset_batch(d, NULL, s, n, images, labels, NULL, NULL);
    if (st != IST_OK) break;
    ist_model_set_batch(m, n, images, labels);
    m->forward(m, n, 0);
    int hits;
    loss_sum += (double)m->be->cross_entropy(n, m->classes, m->logits, m->labels, NULL, &hits) * n;
    correct += hits;
  }
  free(images);
  free(labels);
  if (loss) *loss = (float)(loss_sum / d->n);
  *acc = (float)correct / (float)d->n;
  return st;
}

ist_status ist_check_data(const ist_model *m, const ist_dataset *d) {
  if (d->c != m->in_c || d->h != m->in_h || d->w != m->in_w || d->classes > m->classes)
    return ist_fail(IST_ERR_ARG, "--data: %dx%dx%d images in %d classes do not fit --model %s (%dx%dx%d, %d classes)", d->c,
                    d->h, d->w, d->classes, m->arch, m->in_c, m->in_h, m->in_w, m->classes);
  return IST_OK;
}

ist_status ist_train(ist_model *m, ist_model *teacher, const ist_dataset *train, const ist_dataset *test,
                     const ist_train_config *cfg, ist_train_result *res) {
  const int b = m->batch;
  const int64_t steps = train->n / b;
  if (steps < 1) return ist_fail(IST_ERR_ARG, "--batch: %d is larger than the %lld training images", b, (long long)train->n);
  IST_TRY(ist_check_data(m, train));
  IST_TRY(ist_check_data(m, test));
  if (teacher && teacher->batch != b) return ist_fail(IST_ERR_ARG, "teacher batch %d differs from student batch %d", teacher->batch, b);
  ist_radam opt;
  IST_TRY(ist_radam_create(&opt, m, cfg->lr, cfg->lr_decay, cfg->weight_decay));
  const size_t in_floats = (size_t)b * m->in_c * m->in_h * m->in_w;
  int32_t *order = malloc(sizeof(int32_t) * (size_t)train->n), *labels = malloc(sizeof(int32_t) * (size_t)b);
  float *images = malloc(sizeof(float) * in_floats);
  if (!order || !labels || !images) {
    free(order);
    free(labels);
    free(images);
    ist_radam_destroy(&opt);
    return ist_fail(IST_ERR_MEMORY, "%s: out of memory for the data order", cfg->stage);
  }
  ist_rng rng;
  ist_rng_seed(&rng, cfg->seed, 7);
  const double t0 = now_s();
  ist_status st = IST_OK;
  memset(res, 0, sizeof *res);
  for (int epoch = 0; epoch < cfg->epochs && st == IST_OK; epoch++) {
    for (int64_t i = 0; i < train->n; i++) order[i] = (int32_t)i;
    ist_rng_shuffle(&rng, order, train->n);
    ist_radam_set_epoch(&opt, epoch);
    double loss_sum = 0, te = now_s();
    int64_t hits_sum = 0;
    for (int64_t s = 0; s < steps && st == IST_OK; s++) {
      st = ist_dataset_batch(train, order, s * b, b, images, labels, &cfg->augment, &rng);
      if (st != IST_OK) break;
      ist_model_set_batch(m, b, images, labels);
      ist_model_zero_grad(m);
      m->forward(m, b, 1);
      float loss;
      int hits;
      if (teacher) {
        m->be->copy(teacher->input, m->input, (int64_t)in_floats);
        teacher->forward(teacher, b, 0);
        loss = m->be->kd_loss(b, m->classes, m->logits, teacher->logits, m->labels, cfg->kd_beta, cfg->kd_temperature,
                              m->dlogits, &hits);
      } else {
        loss = m->be->cross_entropy(b, m->classes, m->logits, m->labels, m->dlogits, &hits);
      }
      m->backward(m, b);
      if (cfg->lambda_ort > 0) loss += cfg->lambda_ort * ist_ortho_total(m, cfg->lambda_ort);
      ist_radam_step(&opt, m);
      loss_sum += loss;
      hits_sum += hits;
      if (cfg->log_every > 0 && ((s + 1) % cfg->log_every == 0 || s + 1 == steps)) {
        double el = now_s() - t0, ips = (double)(epoch * steps + s + 1) * b / el;
        double left = ((double)(cfg->epochs - epoch) * steps - (s + 1)) * b / ips;
        printf("[%s] epoch %d/%d step %lld/%lld loss %.4f acc %.2f%% | %.0f img/s | ETA %dm%02ds\n", cfg->stage,
               epoch + 1, cfg->epochs, (long long)(s + 1), (long long)steps, loss_sum / (s + 1),
               100.0 * hits_sum / ((s + 1) * b), ips, (int)left / 60, (int)left % 60);
        fflush(stdout);
      }
    }
    if (st == IST_OK && cfg->bn_recalib > 0) st = ist_bn_recalibrate(m, train, cfg->bn_recalib);
    res->train_loss = (float)(loss_sum / steps);
    res->train_acc = (float)hits_sum / (float)(steps * b);
    float test_loss;
    if (st == IST_OK) st = ist_evaluate(m, test, &res->test_acc, &test_loss);
    if (st != IST_OK) break;
    res->seconds = (float)(now_s() - t0);
    printf("[%s] epoch %d/%d done: train loss %.4f acc %.2f%% | test loss %.4f acc %.2f%% | lr %.2e | %.1fs\n",
           cfg->stage, epoch + 1, cfg->epochs, res->train_loss, 100 * res->train_acc, test_loss, 100 * res->test_acc,
           opt.h.lr, now_s() - te);
    fflush(stdout);
    if (cfg->metrics) {
      fprintf(cfg->metrics,
              "{\"stage\":\"%s\",\"epoch\":%d,\"train_loss\":%.6f,\"train_acc\":%.6f,\"test_loss\":%.6f,"
              "\"test_acc\":%.6f,\"lr\":%.6g,\"seconds\":%.2f}\n",
              cfg->stage, epoch + 1, res->train_loss, res->train_acc, test_loss, res->test_acc, opt.h.lr, res->seconds);
      fflush(cfg->metrics);
    }
    if (cfg->checkpoint) st = ist_model_save(m, cfg->checkpoint, cfg->stage);
  }
  if (st == IST_OK && cfg->epochs == 0) st = ist_evaluate(m, test, &res->test_acc, NULL);
  free(order);
  free(labels);
  free(images);
  ist_radam_destroy(&opt);
  return st;
}
