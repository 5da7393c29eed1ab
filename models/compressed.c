/* The compressed checkpoint: quantized tensors stored as packed q-bit codes plus an fp32 scale,
 * everything else as fp32. This is the file whose size the memory ratio describes. Loading it
 * restores latent values equal to the dequantized ones, which the quantizer maps to themselves. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/safetensors.h"
#include "kernels/cpu/cpu.h"
#include "models/model.h"

#define COMPRESSED_FORMAT "insitu-compressed-1"

static int quantized(const ist_param *p) { return p->bits < 32 && (p->kind == IST_PARAM_FACTOR || p->kind == IST_PARAM_FC); }

/* Codes in [0, 2^bits): offset levels for q ≥ 2, the sign bit for q = 1. x: the host values. */
static void encode(const ist_param *p, const float *x, uint8_t *packed, float *scale) {
  float *q = malloc(sizeof(float) * (size_t)p->numel);
  *scale = ist_cpu_quantize_forward(p->numel, p->bits, x, q);
  const int n = p->bits == 1 ? 0 : (1 << (p->bits - 1)) - 1;
  memset(packed, 0, (size_t)((p->numel * p->bits + 7) / 8));
  for (int64_t i = 0; i < p->numel; i++) {
    uint32_t code = p->bits == 1 ? (q[i] >= 0) : (uint32_t)((*scale > 0 ? lrintf(q[i] / *scale * n) : 0) + n);
    for (int b = 0; b < p->bits; b++) {
      int64_t bit = i * p->bits + b;
      if (code >> b & 1u) packed[bit / 8] |= (uint8_t)(1u << (bit % 8));
    }
  }
  free(q);
}

static void decode(const ist_param *p, const uint8_t *packed, float scale, float *out) {
  const int n = p->bits == 1 ? 0 : (1 << (p->bits - 1)) - 1;
  for (int64_t i = 0; i < p->numel; i++) {
    uint32_t code = 0;
    for (int b = 0; b < p->bits; b++) {
      int64_t bit = i * p->bits + b;
      code |= (uint32_t)(packed[bit / 8] >> (bit % 8) & 1u) << b;
    }
    out[i] = p->bits == 1 ? (code ? scale : -scale) : ((int)code - n) * (scale / (float)n);
  }
}

ist_status ist_model_save_compressed(const ist_model *m, const char *path) {
  ist_st_tensor *t = calloc(2 * IST_MAX_PARAMS, sizeof *t);
  uint8_t **bufs = calloc(IST_MAX_PARAMS, sizeof *bufs);
  float scales[IST_MAX_PARAMS];
  int nt = 0;
  float *host = ist_model_params_to_host(m);
  ist_status st = host ? IST_OK : ist_fail(IST_ERR_MEMORY, "%s: out of memory", path);
  for (int i = 0; i < m->nparams && st == IST_OK; i++)
    if (ist_check_finite(path, m->params[i].name, ist_param_in(m, host, &m->params[i]), m->params[i].numel) != IST_OK)
      st = ist_fail(IST_ERR_NUMERIC, "%s; not written", ist_last_error());
  for (int i = 0; i < m->nparams && st == IST_OK; i++) {
    const ist_param *p = &m->params[i];
    if (!quantized(p)) {
      ist_st_tensor *d = &t[nt++];
      snprintf(d->name, sizeof d->name, "%s", p->name);
      d->dtype = IST_F32;
      d->ndim = p->ndim;
      memcpy(d->shape, p->shape, sizeof p->shape);
      d->data = ist_param_in(m, host, p);
      d->nbytes = sizeof(float) * (size_t)p->numel;
      continue;
    }
    size_t nbytes = (size_t)((p->numel * p->bits + 7) / 8);
    if (!(bufs[i] = malloc(nbytes))) {
      st = ist_fail(IST_ERR_MEMORY, "%s: out of memory", path);
      break;
    }
    encode(p, ist_param_in(m, host, p), bufs[i], &scales[i]);
    ist_st_tensor *c = &t[nt++], *s = &t[nt++];
    snprintf(c->name, sizeof c->name, "%s.q%d", p->name, p->bits);
    c->dtype = IST_U8;
    c->ndim = 1;
    c->shape[0] = (int64_t)nbytes;
    c->data = bufs[i];
    c->nbytes = nbytes;
    snprintf(s->name, sizeof s->name, "%s.scale", p->name);
    s->dtype = IST_F32;
    s->ndim = 1;
    s->shape[0] = 1;
    s->data = &scales[i];
    s->nbytes = sizeof(float);
  }
  if (st == IST_OK) {
    ist_st_meta meta[IST_MODEL_META];
    ist_model_meta(m, "format", COMPRESSED_FORMAT, meta);
    st = ist_st_write(path, t, nt, meta, IST_MODEL_META);
  }
  for (int i = 0; i < IST_MAX_PARAMS; i++) free(bufs[i]);
  free(bufs);
  free(t);
  free(host);
  return st;
}

ist_status ist_model_load_compressed(ist_model *m, const char *path) {
  ist_safetensors f;
  IST_TRY(ist_st_read(path, &f));
  ist_status st = IST_OK;
  const char *fmt = ist_st_meta_get(&f, "format"), *arch = ist_st_meta_get(&f, "arch");
  if (!fmt || strcmp(fmt, COMPRESSED_FORMAT))
    st = ist_fail(IST_ERR_FORMAT, "%s: not a compressed insitu checkpoint (format %s)", path, fmt ? fmt : "missing");
  else if (!arch || strcmp(arch, m->arch))
    st = ist_fail(IST_ERR_STATE, "%s: checkpoint of a %s, the model is a %s", path, arch ? arch : "?", m->arch);
  /* Check everything first, so a bad file leaves the model untouched. */
  for (int pass = 0; pass < 2 && st == IST_OK; pass++)
    for (int i = 0; i < m->nparams && st == IST_OK; i++) {
      const ist_param *p = &m->params[i];
      char name[IST_NAME_LEN + 16];
      if (!quantized(p)) {
        const ist_st_tensor *d = ist_st_find(&f, p->name);
        if (!d || d->dtype != IST_F32 || d->nbytes != sizeof(float) * (size_t)p->numel)
          st = ist_fail(IST_ERR_STATE, "%s: tensor %s missing or of another shape", path, p->name);
        else if (!pass) st = ist_check_finite(path, p->name, d->data, p->numel);
        else if (pass) m->be->upload(p->data, d->data, d->nbytes);
        continue;
      }
      snprintf(name, sizeof name, "%s.q%d", p->name, p->bits);
      const ist_st_tensor *c = ist_st_find(&f, name);
      snprintf(name, sizeof name, "%s.scale", p->name);
      const ist_st_tensor *s = ist_st_find(&f, name);
      if (!c || !s || c->dtype != IST_U8 || c->nbytes != (size_t)((p->numel * p->bits + 7) / 8) || s->dtype != IST_F32 ||
          s->nbytes != sizeof(float))
        st = ist_fail(IST_ERR_STATE, "%s: codes or scale of %s (%d bits) missing or of another size", path, p->name, p->bits);
      else if (!pass) {
        snprintf(name, sizeof name, "%s.scale", p->name);
        st = ist_check_finite(path, name, s->data, 1);
      } else {
        float scale;
        memcpy(&scale, s->data, sizeof scale);
        float *vals = malloc(sizeof(float) * (size_t)p->numel);
        if (!vals) {
          st = ist_fail(IST_ERR_MEMORY, "%s: out of memory", path);
          break;
        }
        decode(p, c->data, scale, vals);
        m->be->upload(p->data, vals, sizeof(float) * (size_t)p->numel);
        free(vals);
      }
    }
  ist_st_free(&f);
  return st;
}

/* ---- export for other frameworks ---- */

ist_status ist_model_export(ist_model *m, const char *path, int materialize) {
  ist_st_tensor t[IST_MAX_PARAMS];
  float *host = ist_model_params_to_host(m), *extra[IST_MAX_CONVS] = {0};
  int nt = 0, nextra = 0;
  ist_status st = host ? IST_OK : ist_fail(IST_ERR_MEMORY, "%s: out of memory", path);
  for (int i = 0; st == IST_OK && i < m->nparams; i++) {
    ist_param *p = &m->params[i];
    float *x = (float *)ist_param_in(m, host, p);
    const char *dot = strrchr(p->name, '.');
    /* The conv a factor belongs to: materialized, it becomes that conv's one dense weight (a
     * conv's own bias, as in squeeze-and-excitation, stays as it is). */
    ist_conv_layer *owner = NULL;
    for (int c = 0; materialize && dot && p->kind == IST_PARAM_FACTOR && c < m->nconvs; c++)
      if (!strncmp(m->convs[c]->name, p->name, (size_t)(dot - p->name)) && m->convs[c]->name[dot - p->name] == 0 &&
          (m->convs[c]->set.generated || m->convs[c]->set.baseline))
        owner = m->convs[c];
    if (owner) {
      if (p->data != owner->wb && p->data != owner->wc_free && p->data != owner->p1) continue; /* one entry per conv */
      ist_conv_layer *l = owner;
      const int64_t numel = ist_conv_weight_numel(&l->shape);
      float *w = extra[nextra++] = malloc(sizeof(float) * (size_t)numel);
      if (!w) {
        st = ist_fail(IST_ERR_MEMORY, "%s: out of memory", path);
        break;
      }
      if (l->set.generated) ist_conv_layer_generate(m->be, l);
      else m->be->baseline_forward(&l->base, l->p1, l->p2, l->w);
      m->be->download(w, l->w, sizeof(float) * (size_t)numel);
      t[nt] = (ist_st_tensor){.dtype = IST_F32, .ndim = 4, .data = w, .nbytes = sizeof(float) * (size_t)numel,
                              .shape = {l->shape.co, l->shape.ci / l->shape.groups, l->shape.k, l->shape.k}};
      snprintf(t[nt++].name, sizeof t[0].name, "%s.weight", l->name);
      continue;
    }
    /* Quantized tensors as the values the forward uses (dequantized codes). */
    if (quantized(p)) ist_cpu_quantize_forward(p->numel, p->bits, x, x);
    t[nt] = (ist_st_tensor){.dtype = IST_F32, .ndim = p->ndim, .data = x, .nbytes = sizeof(float) * (size_t)p->numel};
    memcpy(t[nt].shape, p->shape, sizeof p->shape);
    snprintf(t[nt++].name, sizeof t[0].name, "%s", p->name);
  }
  if (st == IST_OK) {
    ist_st_meta meta[IST_MODEL_META];
    ist_model_meta(m, "export", materialize ? "dense" : "factors", meta);
    st = ist_st_write(path, t, nt, meta, IST_MODEL_META);
  }
  for (int i = 0; i < nextra; i++) free(extra[i]);
  free(host);
  return st;
}
