/* Model plumbing shared by every architecture: settings, parameter registry, two-pass arena
 * sizing, and checkpoints. */
#include "models/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
  int v[5], used = 0;
  if (sscanf(text, "%d-%d-%d-%d-%d%n", &v[0], &v[1], &v[2], &v[3], &v[4], &used) != 5 || text[used] != 0)
    return ist_fail(IST_ERR_ARG,
                    "setting '%s': expected Bi-Bc-qb-qu-qv (e.g. 2-16-4-4-4), 'dense' or a baseline (dsconv, bsconv, "
                    "penni, circnn)",
                    text);
  if (v[0] < 1 || v[1] < 1)
    return ist_fail(IST_ERR_ARG, "setting '%s': Bi and Bc must be at least 1", text);
  for (int i = 2; i < 5; i++)
    if (v[i] < 1 || v[i] > 32)
      return ist_fail(IST_ERR_ARG, "setting '%s': bitwidths must be 1..32 (32 = not quantized)", text);
  *out = (ist_conv_setting){1, v[0], v[1], v[2], v[3], v[4], IST_BASE_NONE};
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
  IST_TRY(ist_arena_alloc(&m->params_arena, sizeof(float) * (size_t)p->numel, (void **)&p->data));
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
  ist_status st = build_all(out, cfg);
  if (st != IST_OK) {
    ist_model_destroy(out);
    return st;
  }
  size_t np = out->params_arena.used, ng = out->grads_arena.used, na = out->acts_arena.used;
  out->nparams = out->nconvs = 0;
  const ist_device dev = (ist_device)be->device;
  if ((st = ist_arena_create(&out->params_arena, np, dev)) != IST_OK ||
      (st = ist_arena_create(&out->grads_arena, ng, dev)) != IST_OK ||
      (st = ist_arena_create(&out->acts_arena, na, dev)) != IST_OK || (st = build_all(out, cfg)) != IST_OK) {
    ist_model_destroy(out);
    return st;
  }
  return IST_OK;
}

void ist_model_destroy(ist_model *m) {
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
  }
  for (int i = 0; st == IST_OK && i < m->nparams; i++)
    m->be->upload(m->params[i].data, ist_st_find(&f, m->params[i].name)->data, sizeof(float) * (size_t)m->params[i].numel);
  return st;
}
