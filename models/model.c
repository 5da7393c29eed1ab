/* Model plumbing shared by every architecture: settings, parameter registry, two-pass arena
 * sizing, and checkpoints. */
#include "models/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/checked.h"
#include "host/safetensors.h"

ist_status ist_setting_parse(const char *text, ist_conv_setting *out) {
  memset(out, 0, sizeof *out);
  if (!strcmp(text, "dense")) return IST_OK;
  static const char *baselines[] = {NULL, "dsconv", "bsconv", "penni", "circnn"};
  for (int i = 1; i < 5; i++)
    if (!strcmp(text, baselines[i])) {
      out->baseline = (ist_base_type)i;
      return IST_OK;
    }
  /* Five dash-separated whole numbers (no sign, no spaces, no wrap-around). */
  int64_t v[5];
  const char *p = text;
  int n = 0;
  for (; n < 5; n++) {
    const char *dash = strchr(p, '-'), *end = dash ? dash : p + strlen(p);
    if (n < 4 ? !dash : dash != NULL) break;
    if (!ist_parse_i64_n(p, (size_t)(end - p), 0, INT64_MAX, &v[n])) break;
    p = end + (dash ? 1 : 0);
  }
  if (n != 5)
    return ist_fail(IST_ERR_ARG,
                    "setting '%s': expected Bi-Bc-qb-qu-qv (e.g. 2-16-4-4-4), 'dense' or a baseline (dsconv, bsconv, "
                    "penni, circnn)",
                    text);
  if (v[0] < 1 || v[1] < 1 || v[0] > IST_MAX_RANK || v[1] > IST_MAX_RANK)
    return ist_fail(IST_ERR_ARG, "setting '%s': Bi and Bc must be 1..%d", text, IST_MAX_RANK);
  for (int i = 2; i < 5; i++)
    if (v[i] < 1 || v[i] > 32)
      return ist_fail(IST_ERR_ARG, "setting '%s': bitwidths must be 1..32 (32 = not quantized)", text);
  *out = (ist_conv_setting){1, (int)v[0], (int)v[1], (int)v[2], (int)v[3], (int)v[4], IST_BASE_NONE};
  return IST_OK;
}

void ist_setting_format(const ist_conv_setting *s, char *buf, int cap) {
  static const char *baselines[] = {"dense", "dsconv", "bsconv", "penni", "circnn"};
  if (!s->generated) snprintf(buf, cap, "%s", baselines[s->baseline]);
  else snprintf(buf, cap, "%d-%d-%d-%d-%d", s->bi, s->bc, s->qb, s->qu, s->qv);
}

ist_status ist_config_parse_overrides(const char *text, ist_model_config *cfg) {
  const char *p = text;
  while (*p) {
    const char *comma = strchr(p, ','), *end = comma ? comma : p + strlen(p);
    const char *eq = memchr(p, '=', (size_t)(end - p));
    if (!eq || eq == p || eq - p >= IST_NAME_LEN || end - eq - 1 >= 32)
      return ist_fail(IST_ERR_ARG, "--layers: '%.*s' is not name=setting", (int)(end - p), p);
    if (cfg->noverride == IST_MAX_CONVS) return ist_fail(IST_ERR_ARG, "--layers: too many entries");
    char set[32];
    snprintf(set, sizeof set, "%.*s", (int)(end - eq - 1), eq + 1);
    if (eq - p == 1 && *p == '*') { /* "*=setting": every conv not named otherwise */
      IST_TRY(ist_setting_parse(set, &cfg->global));
    } else {
      IST_TRY(ist_setting_parse(set, &cfg->override_set[cfg->noverride]));
      snprintf(cfg->override_name[cfg->noverride], IST_NAME_LEN, "%.*s", (int)(eq - p), p);
      cfg->noverride++;
    }
    p = comma ? comma + 1 : end;
  }
  return IST_OK;
}

const ist_conv_setting *ist_config_for(const ist_model_config *cfg, const char *conv_name) {
  for (int i = 0; i < cfg->noverride; i++)
    if (!strcmp(cfg->override_name[i], conv_name)) return &cfg->override_set[i];
  return &cfg->global;
}

ist_status ist_model_add_param(ist_model *m, const char *name, ist_param_kind kind, int bits, int ndim,
                               const int64_t *shape, float **data, float **grad) {
  if (m->nparams == IST_MAX_PARAMS) return ist_fail(IST_ERR_ARG, "model %s: more than %d parameters", m->arch, IST_MAX_PARAMS);
  ist_param *p = &m->params[m->nparams++];
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s", name);
  p->kind = kind;
  p->bits = bits;
  p->ndim = ndim;
  p->numel = 1;
  for (int i = 0; i < ndim; i++) {
    p->shape[i] = shape[i];
    p->numel *= shape[i];
  }
  ist_arena *home = kind == IST_PARAM_BUFFER ? &m->buffers_arena : &m->params_arena;
  IST_TRY(ist_arena_alloc(home, sizeof(float) * (size_t)p->numel, (void **)&p->data));
  if (kind != IST_PARAM_BUFFER) IST_TRY(ist_arena_alloc(&m->grads_arena, sizeof(float) * (size_t)p->numel, (void **)&p->grad));
  *data = p->data;
  if (grad) *grad = p->grad;
  return IST_OK;
}

ist_status ist_model_scratch(ist_model *m, int64_t floats, float **out) {
  return ist_arena_alloc(&m->acts_arena, sizeof(float) * (size_t)floats, (void **)out);
}

void ist_model_set_batch(ist_model *m, int n, const float *images, const int32_t *labels) {
  m->be->upload(m->input, images, sizeof(float) * (size_t)n * m->in_c * m->in_h * m->in_w);
  m->be->upload(m->labels, labels, sizeof(int32_t) * (size_t)n);
}

ist_param *ist_model_find(ist_model *m, const char *name) {
  for (int i = 0; i < m->nparams; i++)
    if (!strcmp(m->params[i].name, name)) return &m->params[i];
  return NULL;
}

void ist_model_zero_grad(ist_model *m) {
  /* Gradients are one contiguous block. */
  if (m->grads_arena.used) m->be->zero((float *)m->grads_arena.base, (int64_t)(m->grads_arena.used / sizeof(float)));
}

int64_t ist_model_param_floats(const ist_model *m) {
  int64_t n = 0;
  for (int i = 0; i < m->nparams; i++)
    if (m->params[i].grad) n += m->params[i].numel;
  return n;
}

int64_t ist_model_dense_param_floats(const ist_model *m) {
  int64_t n = 0;
  for (int i = 0; i < m->nparams; i++)
    if (m->params[i].grad && m->params[i].kind != IST_PARAM_FACTOR) n += m->params[i].numel;
  for (int i = 0; i < m->nconvs; i++)
    if (m->convs[i]->set.generated || m->convs[i]->set.baseline) n += ist_conv_weight_numel(&m->convs[i]->shape);
  return n;
}

static int same_setting(const ist_conv_setting *a, const ist_conv_setting *b) {
  return a->generated == b->generated && a->baseline == b->baseline &&
         (!a->generated || (a->bi == b->bi && a->bc == b->bc && a->qb == b->qb && a->qu == b->qu && a->qv == b->qv));
}

void ist_model_describe(const ist_model *m, char *buf, int cap) {
  /* The most common setting as "*=…", then only the convs that differ from it. */
  int best = 0, best_count = 0;
  for (int i = 0; i < m->nconvs; i++) {
    int count = 0;
    for (int j = 0; j < m->nconvs; j++) count += same_setting(&m->convs[i]->set, &m->convs[j]->set);
    if (count > best_count) best = i, best_count = count;
  }
  char s[32];
  int len = 0;
  buf[0] = 0;
  if (!m->nconvs) return;
  ist_setting_format(&m->convs[best]->set, s, sizeof s);
  len += snprintf(buf, (size_t)cap, "*=%s", s);
  for (int i = 0; i < m->nconvs && len < cap; i++) {
    if (same_setting(&m->convs[i]->set, &m->convs[best]->set)) continue;
    ist_setting_format(&m->convs[i]->set, s, sizeof s);
    len += snprintf(buf + len, (size_t)(cap - len), ";%s=%s", m->convs[i]->name, s);
  }
}

/* Architectures: a build function that registers layers against m's arenas. */
ist_status ist_cnn3_build(ist_model *m, const ist_model_config *cfg);
ist_status ist_resnet18_cifar_build(ist_model *m, const ist_model_config *cfg);
ist_status ist_resnet18_imagenet_build(ist_model *m, const ist_model_config *cfg);
ist_status ist_mobilenetv2_cifar_build(ist_model *m, const ist_model_config *cfg);
ist_status ist_mobilenetv2_imagenet_build(ist_model *m, const ist_model_config *cfg);
ist_status ist_densenet121_cifar_build(ist_model *m, const ist_model_config *cfg);
ist_status ist_densenet121_imagenet_build(ist_model *m, const ist_model_config *cfg);
ist_status ist_mobilenetv3_small_cifar_build(ist_model *m, const ist_model_config *cfg);
ist_status ist_mobilenetv3_small_imagenet_build(ist_model *m, const ist_model_config *cfg);
ist_status ist_efficientnet_b0_cifar_build(ist_model *m, const ist_model_config *cfg);
ist_status ist_efficientnet_b0_imagenet_build(ist_model *m, const ist_model_config *cfg);

static const struct {
  const char *name;
  ist_status (*build)(ist_model *, const ist_model_config *);
} ARCHS[] = {
    {"cnn3", ist_cnn3_build},
    {"resnet18-cifar", ist_resnet18_cifar_build},
    {"resnet18", ist_resnet18_imagenet_build},
    {"mobilenetv2-cifar", ist_mobilenetv2_cifar_build},
    {"mobilenetv2", ist_mobilenetv2_imagenet_build},
    {"densenet121-cifar", ist_densenet121_cifar_build},
    {"densenet121", ist_densenet121_imagenet_build},
    {"mobilenetv3-small-cifar", ist_mobilenetv3_small_cifar_build},
    {"mobilenetv3-small", ist_mobilenetv3_small_imagenet_build},
    {"efficientnet-b0-cifar", ist_efficientnet_b0_cifar_build},
    {"efficientnet-b0", ist_efficientnet_b0_imagenet_build},
};
#define NARCHS (int)(sizeof ARCHS / sizeof ARCHS[0])

/* The architecture's layers, then what every model has: the input, labels, logits and the conv
 * scratch; per-layer overrides must name existing convs. */
static ist_status build_all(ist_model *m, const ist_model_config *cfg) {
  IST_TRY(m->build(m, cfg));
  const int b = m->batch;
  IST_TRY(ist_model_scratch(m, (int64_t)b * m->in_c * m->in_h * m->in_w, &m->input));
  IST_TRY(ist_arena_alloc(&m->acts_arena, sizeof(int32_t) * (size_t)b, (void **)&m->labels));
  IST_TRY(ist_model_scratch(m, (int64_t)b * m->classes, &m->logits));
  IST_TRY(ist_model_scratch(m, (int64_t)b * m->classes, &m->dlogits));
  IST_TRY(ist_model_scratch(m, (int64_t)m->ws_floats, &m->ws));
  /* The per-step scalars side by side, so one download reads them all. */
  IST_TRY(ist_model_scratch(m, IST_MODEL_SCALARS, &m->scalars));
  if (m->scalars) {
    m->loss_sum = m->scalars;
    m->ortho_sum = m->scalars + 1;
    m->hits = (int32_t *)(m->scalars + 2);
  }
  return ist_config_check_names(m, cfg);
}

void *ist_model_impl(ist_model *m, size_t bytes, const char *arch) {
  if (!m->impl && !(m->impl = calloc(1, bytes))) ist_fail(IST_ERR_MEMORY, "%s: out of memory", arch);
  return m->impl;
}

ist_status ist_model_create(const char *arch, const ist_backend *be, int batch, const ist_model_config *cfg,
                            ist_model *out) {
  ist_status (*build)(ist_model *, const ist_model_config *) = NULL;
  for (int i = 0; i < NARCHS; i++)
    if (!strcmp(arch, ARCHS[i].name)) build = ARCHS[i].build;
  if (!build) return ist_fail(IST_ERR_ARG, "--model: unknown architecture '%s' (cnn3, resnet18-cifar, resnet18, mobilenetv2-cifar, mobilenetv2, "
                    "densenet121-cifar, densenet121, mobilenetv3-small-cifar, mobilenetv3-small, efficientnet-b0-cifar, "
                    "efficientnet-b0)",
                    arch);
  if (batch < 1) return ist_fail(IST_ERR_ARG, "--batch: must be at least 1 (got %d)", batch);
  memset(out, 0, sizeof *out);
  out->be = be;
  out->batch = batch;
  out->bn_momentum = IST_BN_MOMENTUM;
  out->act_bits = cfg->act_bits > 0 && cfg->act_bits < 32 ? cfg->act_bits : 32;
  out->build = build;
  snprintf(out->arch, sizeof out->arch, "%s", arch);
  /* Pass 1 sizes the arenas, pass 2 lays the same tensors out in them. */
  ist_arena_measure(&out->params_arena);
  ist_arena_measure(&out->grads_arena);
  ist_arena_measure(&out->acts_arena);
  ist_arena_measure(&out->buffers_arena);
  ist_status st = build_all(out, cfg);
  if (st != IST_OK) {
    ist_model_destroy(out);
    return st;
  }
  size_t np = out->params_arena.used, nb = out->buffers_arena.used, ng = out->grads_arena.used,
         na = out->acts_arena.used;
  out->nparams = out->nconvs = 0;
  /* One block holds the trainable parameters, then the buffers; once laid out, the block counts
   * as used in full, so whole-block copies (checkpoints, broadcasts) cover the buffers too. */
  if ((st = ist_arena_create(&out->params_arena, np + nb, be)) == IST_OK)
    ist_arena_view(&out->buffers_arena, out->params_arena.base + np, nb, (ist_device)be->device);
  void *rest = NULL;
  if (st != IST_OK || (st = ist_arena_create(&out->grads_arena, ng, be)) != IST_OK ||
      (st = ist_arena_create(&out->acts_arena, na, be)) != IST_OK || (st = build_all(out, cfg)) != IST_OK ||
      (st = ist_arena_alloc(&out->params_arena, nb, &rest)) != IST_OK) {
    ist_model_destroy(out);
    return st;
  }
  return IST_OK;
}

void ist_model_destroy(ist_model *m) {
  ist_arena_destroy(&m->buffers_arena);
  ist_arena_destroy(&m->params_arena);
  ist_arena_destroy(&m->grads_arena);
  ist_arena_destroy(&m->acts_arena);
  free(m->impl);
  m->impl = NULL;
}

void ist_model_meta(const ist_model *m, const char *key, const char *value, ist_st_meta meta[IST_MODEL_META]) {
  snprintf(meta[0].key, sizeof meta[0].key, "arch");
  snprintf(meta[0].value, sizeof meta[0].value, "%s", m->arch);
  snprintf(meta[1].key, sizeof meta[1].key, "layers");
  ist_model_describe(m, meta[1].value, sizeof meta[1].value);
  snprintf(meta[2].key, sizeof meta[2].key, "classes");
  snprintf(meta[2].value, sizeof meta[2].value, "%d", m->classes);
  snprintf(meta[3].key, sizeof meta[3].key, "input");
  snprintf(meta[3].value, sizeof meta[3].value, "%dx%d", m->in_h, m->in_w);
  snprintf(meta[4].key, sizeof meta[4].key, "%s", key);
  snprintf(meta[4].value, sizeof meta[4].value, "%s", value);
}

float *ist_model_params_to_host(const ist_model *m) {
  float *host = malloc(m->params_arena.used ? m->params_arena.used : 1);
  if (host) m->be->download(host, m->params_arena.base, m->params_arena.used);
  return host;
}

const float *ist_param_in(const ist_model *m, const float *host, const ist_param *p) {
  return host + (p->data - (const float *)m->params_arena.base);
}

ist_status ist_model_save(const ist_model *m, const char *path, const char *role) {
  ist_st_tensor t[IST_MAX_PARAMS];
  float *host = ist_model_params_to_host(m);
  if (!host) return ist_fail(IST_ERR_MEMORY, "%s: out of memory", path);
  /* A checkpoint with NaN or Inf is never written (over a good one). */
  for (int i = 0; i < m->nparams; i++)
    if (ist_check_finite(path, m->params[i].name, ist_param_in(m, host, &m->params[i]), m->params[i].numel) != IST_OK) {
      free(host);
      return ist_fail(IST_ERR_NUMERIC, "%s; not written, the previous file is kept", ist_last_error());
    }
  for (int i = 0; i < m->nparams; i++) {
    const ist_param *p = &m->params[i];
    memset(&t[i], 0, sizeof t[i]);
    snprintf(t[i].name, sizeof t[i].name, "%s", p->name);
    t[i].dtype = IST_F32;
    t[i].ndim = p->ndim;
    memcpy(t[i].shape, p->shape, sizeof p->shape);
    t[i].data = ist_param_in(m, host, p);
    t[i].nbytes = sizeof(float) * (size_t)p->numel;
  }
  ist_st_meta meta[IST_MODEL_META];
  ist_model_meta(m, "role", role, meta);
  ist_status st = ist_st_write(path, t, m->nparams, meta, IST_MODEL_META);
  free(host);
  return st;
}

ist_status ist_model_load(ist_model *m, const char *path) {
  ist_safetensors f;
  IST_TRY(ist_st_read(path, &f));
  ist_status st = ist_model_load_from(m, &f, path);
  ist_st_free(&f);
  return st;
}

ist_status ist_model_load_from(ist_model *m, const ist_safetensors *fp, const char *path) {
  const ist_safetensors f = *fp;
  ist_status st = IST_OK;
  const char *arch = ist_st_meta_get(&f, "arch");
  if (arch && strcmp(arch, m->arch))
    st = ist_fail(IST_ERR_STATE, "%s: checkpoint of a %s, the model is a %s", path, arch, m->arch);
  /* Activation ranges the model has no quantizer for: an activation-quantized checkpoint. */
  for (int i = 0; st == IST_OK && i < f.ntensors; i++) {
    const char *name = f.tensors[i].name, *tail = strstr(name, ".act_range");
    if (tail && !tail[10] && !ist_model_find(m, name))
      st = ist_fail(IST_ERR_STATE, "%s: checkpoint with quantized activations (%s), the model has none: pass --act-bits",
                    path, name);
  }
  for (int i = 0; st == IST_OK && i < m->nparams; i++) {
    const ist_param *p = &m->params[i];
    const ist_st_tensor *t = ist_st_find(&f, p->name);
    if (!t) {
      const char *layers = ist_st_meta_get(&f, "layers");
      st = ist_fail(IST_ERR_STATE, "%s: no tensor %s (checkpoint layers: %s)", path, p->name, layers ? layers : "?");
      break;
    }
    int same = t->dtype == IST_F32 && t->ndim == p->ndim;
    for (int d = 0; same && d < p->ndim; d++) same = t->shape[d] == p->shape[d];
    if (!same) st = ist_fail(IST_ERR_STATE, "%s: tensor %s has another dtype or shape than the model's", path, p->name);
    else st = ist_check_finite(path, p->name, t->data, p->numel);
  }
  for (int i = 0; st == IST_OK && i < m->nparams; i++)
    m->be->upload(m->params[i].data, ist_st_find(&f, m->params[i].name)->data, sizeof(float) * (size_t)m->params[i].numel);
  return st;
}

ist_status ist_check_finite(const char *path, const char *name, const void *data, int64_t n) {
  const unsigned char *b = data;
  for (int64_t i = 0; i < n; i++) {
    float x;
    memcpy(&x, b + sizeof(float) * (size_t)i, sizeof x); /* file data need not be aligned */
    if (!isfinite(x))
      return ist_fail(IST_ERR_FORMAT, "%s: tensor %s holds a non-finite value (%g at element %lld): refused", path, name,
                      (double)x, (long long)i);
  }
  return IST_OK;
}

ist_status ist_checkpoint_config(const char *path, const ist_model_config *base, const char *fallback_arch,
                                 ist_model_config *cfg, char *arch, int cap) {
  ist_safetensors f;
  IST_TRY(ist_st_read(path, &f));
  const char *layers = ist_st_meta_get(&f, "layers"), *a = ist_st_meta_get(&f, "arch");
  const char *classes = ist_st_meta_get(&f, "classes"), *input = ist_st_meta_get(&f, "input");
  ist_status st = IST_OK;
  *cfg = *base;
  /* Checkpoints without classes/input metadata get the architecture's defaults (or the flags). */
  if (classes && !ist_parse_int(classes, 1, IST_MAX_CLASSES, &cfg->classes))
    st = ist_fail(IST_ERR_FORMAT, "%s: metadata classes '%.32s' is not a whole number in 1..%d", path, classes,
                  IST_MAX_CLASSES);
  if (st == IST_OK && (!layers || !a)) {
    /* A plain state_dict (e.g. saved from PyTorch): the given architecture with dense convs. */
    snprintf(arch, (size_t)cap, "%s", fallback_arch);
    st = ist_setting_parse("dense", &cfg->global);
  } else if (st == IST_OK) {
    const char *x = input ? strchr(input, 'x') : NULL;
    int64_t h = 0, w = 0;
    if (input && (!x || !ist_parse_i64_n(input, (size_t)(x - input), 1, IST_MAX_INPUT_SIDE, &h) ||
                  !ist_parse_i64(x + 1, 1, IST_MAX_INPUT_SIDE, &w)))
      st = ist_fail(IST_ERR_FORMAT, "%s: metadata input '%.32s' is not HxW with sides 1..%d", path, input,
                    IST_MAX_INPUT_SIDE);
    if (input && st == IST_OK) cfg->in_h = (int)h, cfg->in_w = (int)w;
    if (st == IST_OK && strlen(a) >= (size_t)cap)
      st = ist_fail(IST_ERR_FORMAT, "%s: metadata arch '%.32s...' is not an architecture", path, a);
    if (st == IST_OK) {
      char buf[4096];
      snprintf(buf, sizeof buf, "%s", layers);
      for (char *p = buf; *p; p++)
        if (*p == ';') *p = ',';
      snprintf(arch, (size_t)cap, "%s", a);
      st = ist_config_parse_overrides(buf, cfg);
      if (st != IST_OK) st = ist_fail(IST_ERR_FORMAT, "%s: bad layers metadata (%s)", path, ist_last_error());
    }
  }
  ist_st_free(&f);
  return st;
}

static int is_compressed(const char *path) {
  const char *suffix = ".compressed.safetensors";
  size_t n = strlen(path), k = strlen(suffix);
  return n >= k && !strcmp(path + n - k, suffix);
}

ist_status ist_model_load_any(ist_model *m, const char *path) {
  return is_compressed(path) ? ist_model_load_compressed(m, path) : ist_model_load(m, path);
}
