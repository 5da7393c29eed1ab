/* A network: its parameters (one arena, named views), gradients, activations, and its layers.
 * Architectures (cnn3.c, …) fill the layer list and the forward/backward functions. */
#ifndef IST_MODEL_H
#define IST_MODEL_H
#include <stdint.h>

#include "host/safetensors.h"
#include "host/tensor.h"
#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

#define IST_MAX_PARAMS 1024
#define IST_MAX_CONVS 256
#define IST_NAME_LEN 64
/* The ranges a setting, a checkpoint or a flag may give: ranks Bi, Bc (a rank not below the
 * dimensions it factors switches its level off), classes, and input sides. */
#define IST_MAX_RANK 65536
#define IST_MAX_CLASSES 100000
#define IST_MAX_INPUT_SIDE 4096
/* BatchNorm's running-statistics momentum and epsilon (PyTorch's defaults). */
#define IST_BN_MOMENTUM 0.1f
#define IST_BN_EPS 1e-5f
/* The model's per-step scalars in backend memory: the loss sum, the orthogonality penalty sum, the hit count. */
#define IST_MODEL_SCALARS 3

/* A layer's generation setting `Bi-Bc-qb-qu-qv` (SPEC §2); generated = 0 means a dense conv, or
 * the baseline conv type `baseline` (SPEC §6) when that is set. */
typedef struct {
  int generated;
  int bi, bc, qb, qu, qv;
  ist_base_type baseline;
} ist_conv_setting;

/* Parses "dense", "Bi-Bc-qb-qu-qv", or a baseline: "dsconv", "bsconv", "penni", "circnn"; fails
 * naming the text on anything else. */
ist_status ist_setting_parse(const char *text, ist_conv_setting *out);
/* "dense" or "Bi-Bc-qb-qu-qv" */
void ist_setting_format(const ist_conv_setting *s, char *buf, int cap);

/* How a generated conv runs: on a materialized W (generator, then a dense conv), or factored
 * (gconv: three small convs, no W); auto picks the one with fewer multiply-adds. */
typedef enum { IST_EXEC_AUTO, IST_EXEC_MATERIALIZE, IST_EXEC_FACTORED } ist_conv_exec;

/* Parses "auto", "materialize" or "factored". */
ist_status ist_conv_exec_parse(const char *text, ist_conv_exec *out);

typedef enum {
  IST_PARAM_CONV,    /* a dense conv weight */
  IST_PARAM_FACTOR,  /* a generated conv's Wb, U, V or free Wc */
  IST_PARAM_BN,      /* BatchNorm γ, β */
  IST_PARAM_FC,      /* the classifier's weight and bias */
  IST_PARAM_BUFFER   /* running statistics: saved, not trained, not counted */
} ist_param_kind;

typedef struct {
  char name[IST_NAME_LEN];
  ist_param_kind kind;
  float *data, *grad; /* grad is NULL for buffers */
  int ndim;
  int64_t shape[IST_MAX_DIMS];
  int64_t numel;
  int bits; /* storage bitwidth for the memory ratio (factors: their q; others 32) */
} ist_param;

typedef struct {
  char name[IST_NAME_LEN];
  ist_conv_shape shape; /* n = the model's batch */
  ist_conv_setting set;
  ist_gen_shape gen;    /* generated layers only */
  int factored;         /* generated layers: run as gconv (no W) rather than on a materialized W */
  /* Dense: w, dw are the parameter and its gradient. Generated: w, dw are scratch (the
   * materialized weight), wb/u/v (or wc when level 1 is off) the parameters. */
  float *w, *dw;
  float *wb, *u, *v, *wc_free;
  float *dwb, *du, *dv, *dwc_free;
  float *qwb, *qu, *qv, *wc, *dwc; /* quantized factors and the level-1 output, scratch */
  ist_base_shape base;             /* baseline conv types: their shape and parameters */
  float *p1, *p2, *dp1, *dp2;
  float *dqwb, *dqu, *dqv;         /* gradients w.r.t. the quantized factors, scratch */
  float *t1, *t2;                  /* factored execution's intermediate activations */
  const float *x;                  /* the forward's input, kept for the backward */
  ist_conv_exec exec;              /* as asked; the backend decides "auto" when the layer is registered */
  float *scale_b, *scale_u, *scale_v; /* the last quantization scales (backend memory, one float each) */
} ist_conv_layer;

typedef struct {
  char name[IST_NAME_LEN];
  int c, hw;
  float *gamma, *beta, *dgamma, *dbeta, *run_mean, *run_var;
  float *save_mean, *save_rstd;
  int training; /* the last forward's mode, which its backward follows */
  float eps;    /* IST_BN_EPS unless the architecture says otherwise (MobileNetV3: 1e-3) */
} ist_bn_layer;

typedef struct {
  char name[IST_NAME_LEN];
  int in, out;
  int bits;       /* < 32: weight and bias are quantized in the forward (straight-through) */
  float *w, *b, *dw, *db;
  float *qw, *qb; /* the quantized copies used by forward and backward */
  float *scales;  /* their quantization scales (backend memory, two floats) */
} ist_linear_layer;

typedef struct ist_model ist_model;
typedef struct ist_model_config ist_model_config;
struct ist_model {
  const ist_backend *be;
  char arch[32];
  int batch, in_c, in_h, in_w, classes;
  ist_param params[IST_MAX_PARAMS];
  int nparams;
  ist_conv_layer *convs[IST_MAX_CONVS]; /* every conv, for reports and projection */
  int nconvs;
  /* params_arena: the trainable parameters, then the buffers (running statistics), so that the
   * trainable part and grads_arena share one layout (a gradient lies at its parameter's offset)
   * and one optimizer step covers them all; buffers_arena is a view of the buffer part. */
  ist_arena params_arena, grads_arena, acts_arena, buffers_arena;
  /* Per-step scalars in backend memory, summed until the trainer reads them: the losses, the
   * orthogonality penalty (unscaled) and the argmax hits. */
  float *scalars; /* IST_MODEL_SCALARS floats: loss_sum, ortho_sum, hits (zero bits are 0 in both types) */
  float *loss_sum, *ortho_sum;
  int32_t *hits;
  float *input;   /* batch × in_c × in_h × in_w (backend memory, like every buffer here) */
  int32_t *labels; /* batch */
  float *logits;  /* batch × classes */
  float *dlogits;
  float bn_momentum; /* of every BN's running statistics; IST_BN_MOMENTUM except while re-estimating */
  int act_bits;      /* activation quantization: 32 = off */
  int act_training;  /* the mode of the forward under way (activation quantizers follow it) */
  const ist_reducer *bn_sync; /* non-NULL: synchronized BatchNorm over data-parallel ranks */
  float *ws;      /* shared conv scratch, ws_floats floats (the largest any layer needs) */
  size_t ws_floats;
  void *impl;     /* the architecture's layers */
  /* Registers the architecture's layers and sets in_c/in_h/in_w/classes (runs twice, see create). */
  ist_status (*build)(ist_model *m, const ist_model_config *cfg);
  /* Runs the network on the first n ≤ batch images of input into logits. */
  void (*forward)(ist_model *m, int n, int training);
  /* From dlogits, accumulates every parameter gradient (call after a training forward). */
  void (*backward)(ist_model *m, int n);
};

/* Per-layer settings: a global one, with optional overrides by conv name. */
struct ist_model_config {
  ist_conv_setting global;
  int noverride;
  char override_name[IST_MAX_CONVS][IST_NAME_LEN];
  ist_conv_setting override_set[IST_MAX_CONVS];
  ist_conv_exec exec;
  int classes, in_h, in_w; /* 0: the architecture's default */
  int act_bits;            /* activation quantization (SPEC §3, A8 = 8); 0 or 32: off */
};

/* Parses "name=setting,name=setting" into cfg's overrides. */
ist_status ist_config_parse_overrides(const char *text, ist_model_config *cfg);
const ist_conv_setting *ist_config_for(const ist_model_config *cfg, const char *conv_name);

/* Builds a model by name ("cnn3"). */
ist_status ist_model_create(const char *arch, const ist_backend *be, int batch, const ist_model_config *cfg,
                            ist_model *out);
void ist_model_destroy(ist_model *m);

/* The architecture's layer struct (bytes, zeroed) in m->impl, allocated on the build's first pass
 * and kept for the second; NULL (with the error set, naming arch) when out of memory. */
void *ist_model_impl(ist_model *m, size_t bytes, const char *arch);

/* Seeded random initialization of every parameter and buffer (computed on the host, then
 * uploaded: fails only when host memory runs out). */
ist_status ist_model_init_params(ist_model *m, uint64_t seed);
ist_param *ist_model_find(ist_model *m, const char *name);
void ist_model_zero_grad(ist_model *m);
int64_t ist_model_param_floats(const ist_model *m); /* trainable floats */
/* The trainable floats of the dense version of m (every conv with its full weight): what a
 * dense model's data-parallel step all-reduces. */
int64_t ist_model_dense_param_floats(const ist_model *m);
/* Describes the per-layer settings as "conv1=dense;conv2=2-16-4-4-4;…". */
void ist_model_describe(const ist_model *m, char *buf, int cap);

/* Checkpoints (safetensors): every parameter and buffer, with metadata naming the architecture and
 * the per-layer settings. Loading checks every name, shape and dtype before changing anything. */
ist_status ist_model_save(const ist_model *m, const char *path, const char *role);
/* Fills the metadata every checkpoint carries: arch, layers, classes, input (H×W), and key = value. */
#define IST_MODEL_META 5
void ist_model_meta(const ist_model *m, const char *key, const char *value, ist_st_meta meta[IST_MODEL_META]);
/* A host copy of every parameter (malloc'd), and where a parameter lies in it. */
float *ist_model_params_to_host(const ist_model *m);
const float *ist_param_in(const ist_model *m, const float *host, const ist_param *p);
ist_status ist_model_load(ist_model *m, const char *path);
/* The same from a file already read (path names it in errors). */
ist_status ist_model_load_from(ist_model *m, const ist_safetensors *f, const char *path);
/* The compressed form: quantized factors (and the 8-bit classifier) as packed codes + scales. */
ist_status ist_model_save_compressed(const ist_model *m, const char *path);
ist_status ist_model_load_compressed(ist_model *m, const char *path);
/* Either form, by the file name (".compressed.safetensors": the compressed one). */
ist_status ist_model_load_any(ist_model *m, const char *path);
/* The configuration a checkpoint was saved with: base (the flags' classes, input, conv execution)
 * overridden by its metadata (arch, layers, classes 1..IST_MAX_CLASSES, input HxW with sides
 * 1..IST_MAX_INPUT_SIDE), each checked; a file without arch/layers (a plain state_dict) gets
 * fallback_arch with dense convs. */
ist_status ist_checkpoint_config(const char *path, const ist_model_config *base, const char *fallback_arch,
                                 ist_model_config *cfg, char *arch, int cap);
/* Fails naming path and tensor when one of the n floats at data (any alignment) is NaN or ±Inf. */
ist_status ist_check_finite(const char *path, const char *name, const void *data, int64_t n);
/* For other frameworks (PyTorch): every tensor the forward uses, quantized ones as their
 * dequantized values; materialize: each generated or baseline conv as its one dense weight
 * "<conv>.weight" (torchvision's state_dict), else its factors under their own names. */
ist_status ist_model_export(ist_model *m, const char *path, int materialize);

/* Layer building blocks, shared by architectures. The *_register functions run twice: first
 * against measuring arenas (to size them), then for real. */
/* groups: 1 (dense) or the channel count (depthwise; generated with level 1 only, SPEC §2). */
ist_status ist_conv_layer_init(ist_conv_layer *l, const char *name, int batch, int ci, int h, int w, int co, int k,
                               int stride, int pad, int groups, const ist_conv_setting *set, ist_conv_exec exec);
/* Floats of the shared conv scratch this layer needs (model->ws is the largest over layers). */
size_t ist_conv_layer_ws_floats(const ist_backend *be, const ist_conv_layer *l);
ist_status ist_conv_layer_register(ist_model *m, ist_conv_layer *l);
void ist_conv_layer_forward(const ist_backend *be, ist_conv_layer *l, int n, const float *x, float *y, float *ws);
/* dx may be NULL (first layer). */
void ist_conv_layer_backward(const ist_backend *be, ist_conv_layer *l, int n, const float *dy, float *dx, float *ws);
/* Quantizes the factors (qwb, qu, qv, or wc when level 1 is off). */
void ist_conv_layer_quantize(const ist_backend *be, ist_conv_layer *l);
/* Quantizes the factors and materializes W (used by forward, and by projection and reports). */
void ist_conv_layer_generate(const ist_backend *be, ist_conv_layer *l);
/* From l->dw (the gradient w.r.t. the generated W), accumulates the latent factors' gradients
 * through the generator and the quantizers. */
void ist_conv_layer_generate_backward(const ist_backend *be, ist_conv_layer *l);

ist_status ist_bn_layer_register(ist_model *m, ist_bn_layer *l, const char *name, int c, int hw);
/* BatchNorm of n images with the model's momentum; the backward follows the forward's mode. */
void ist_bn_layer_forward(ist_model *m, ist_bn_layer *l, int n, const float *x, float *y, int training);
/* dx overwritten; dγ, dβ accumulated. x: the forward's input. */
void ist_bn_layer_backward(ist_model *m, ist_bn_layer *l, int n, const float *dy, const float *x, float *dx);

/* Activation quantization (models/act.c): the input of a conv or classifier quantized uniformly
 * to m->act_bits over a range learned as a running min/max (training: the batch's range, folded
 * into the running one with IST_ACT_MOMENTUM; eval: the running range), straight-through
 * gradient. The range is a buffer "<name>.act_range" saved with the model. Off (every pointer
 * NULL) when the model's act_bits is 32. */
#define IST_ACT_MOMENTUM 0.1f
typedef struct {
  int64_t per_image;  /* values per image */
  float *range, *used; /* running range (a buffer) and the range the last forward used (2 floats each) */
  float *xq;          /* the quantized values */
  const float *x;     /* the forward's input, for the straight-through mask */
} ist_act_quant;
/* name: the layer whose input it quantizes. */
ist_status ist_act_quant_register(ist_model *m, ist_act_quant *q, const char *name, int64_t per_image);
/* Returns the quantized x (or x itself when off). */
const float *ist_act_quant_forward(ist_model *m, ist_act_quant *q, int n, const float *x);
/* dx (the gradient w.r.t. the quantized values) becomes the gradient w.r.t. x, in place. */
void ist_act_quant_backward(ist_model *m, ist_act_quant *q, int n, float *dx);
/* The largest activation of one image any conv or classifier reads or writes, in values. */
int64_t ist_model_largest_activation(const ist_model *m);

/* Global average pooling and the classifier: the head of the image models. */
typedef struct {
  int c, h, w;       /* the feature map it pools */
  float *gap, *dgap; /* pooled features (n × c) and their gradient */
  ist_linear_layer fc;
  ist_act_quant aq;  /* the classifier's input */
} ist_head;
ist_status ist_head_register(ist_model *m, ist_head *hd, const char *fc_name, int c, int h, int w);
/* x (n × c × h × w) → m->logits. */
void ist_head_forward(ist_model *m, ist_head *hd, int n, const float *x);
/* From m->dlogits, the gradient w.r.t. the pooled map into dx. */
void ist_head_backward(ist_model *m, ist_head *hd, int n, float *dx);

typedef enum { IST_ACT_NONE, IST_ACT_RELU, IST_ACT_RELU6, IST_ACT_HARDSWISH, IST_ACT_SILU } ist_act;

/* y = act(x) over n values (models/act.c); IST_ACT_NONE copies unless y is x. */
void ist_act_forward(const ist_backend *be, ist_act act, int64_t n, const float *x, float *y);
/* dx = dy·act'(x); x and y are the forward's input and output (each activation needs one). */
void ist_act_backward(const ist_backend *be, ist_act act, int64_t n, const float *dy, const float *x, const float *y,
                      float *dx);

/* conv → BatchNorm (→ ReLU or ReLU6): the unit the CNNs here are built from, with its activations. */
typedef struct {
  ist_conv_layer conv;
  ist_bn_layer bn;
  ist_act act;
  ist_act_quant aq; /* the conv's input (not for the model's first conv, which reads the image) */
  float *a, *b, *r; /* conv, BN and activation outputs (r = b without activation) */
  float *da, *db;   /* gradients w.r.t. a and b */
} ist_conv_bn;

/* Registers the conv (setting from cfg by conv_name) and the BN; grows m->ws_floats. */
ist_status ist_conv_bn_register(ist_model *m, ist_conv_bn *u, const char *conv_name, const char *bn_name, int ci,
                                int h, int w, int co, int k, int stride, int pad, int groups,
                                const ist_model_config *cfg, ist_act act);
/* Returns the unit's output (r). */
const float *ist_conv_bn_forward(ist_model *m, ist_conv_bn *u, int n, const float *x, int training);
/* From dout (w.r.t. the output), accumulates parameter gradients and writes dx (may be NULL). */
void ist_conv_bn_backward(ist_model *m, ist_conv_bn *u, int n, const float *dout, float *dx);
/* Output planes: co × ho·wo. */
static inline int64_t ist_conv_bn_out_numel(const ist_conv_bn *u, int n) {
  return (int64_t)n * u->conv.shape.co * u->conv.shape.ho * u->conv.shape.wo;
}
/* 3-channel image models: the input size and classes from cfg, else the variant's data set
 * (CIFAR: 32×32, 10 classes; ImageNet: 224×224, 1000 classes). */
void ist_image_model_defaults(ist_model *m, const ist_model_config *cfg, int imagenet);

/* The stem of the image models: conv → BN → ReLU (3×3/1 on CIFAR; 7×7/2 then a 3×3/2 max-pool
 * on ImageNet). */
typedef struct {
  ist_conv_bn unit;
  int pool;          /* the ImageNet max-pool */
  int oc, oh, ow;    /* the stem's output */
  float *pooled;     /* max-pool output */
  int32_t *idx;      /* max-pool winners */
  float *dout;       /* gradient w.r.t. the stem's output (where the next layer's backward writes) */
  float *dunit;      /* gradient w.r.t. the conv unit's output, when pooled */
} ist_stem;

ist_status ist_stem_register(ist_model *m, ist_stem *st, const char *conv_name, const char *bn_name, int co,
                             int imagenet, const ist_model_config *cfg);
const float *ist_stem_forward(ist_model *m, ist_stem *st, int n, int training);
/* From st->dout, accumulates the stem's parameter gradients. */
void ist_stem_backward(ist_model *m, ist_stem *st, int n);

/* Fails naming the first per-layer override that matches no conv of m. */
ist_status ist_config_check_names(const ist_model *m, const ist_model_config *cfg);
/* The classifier is stored in 8 bits when any conv of the model is quantized (SPEC §2). */
ist_status ist_linear_layer_register(ist_model *m, ist_linear_layer *l, const char *name, int in, int out, int bits);
void ist_linear_layer_forward(const ist_backend *be, ist_linear_layer *l, int n, const float *x, float *y);
void ist_linear_layer_backward(const ist_backend *be, ist_linear_layer *l, int n, const float *dy, const float *x,
                               float *dx);
/* 8 when any generated conv of the config is quantized, else 32. */
int ist_config_fc_bits(const ist_model *m);

ist_status ist_model_add_param(ist_model *m, const char *name, ist_param_kind kind, int bits, int ndim,
                               const int64_t *shape, float **data, float **grad);
ist_status ist_model_scratch(ist_model *m, int64_t floats, float **out);
/* Copies the input images (host, n × in_c × in_h × in_w) and labels into the model's buffers. */
void ist_model_set_batch(ist_model *m, int n, const float *images, const int32_t *labels);

/* Host work on backend memory (SVD, level balancing, random init, relative errors): one block
 * downloaded, changed on the host, uploaded back. On the CPU backend the host view IS the block
 * (no copy). */
typedef struct {
  const ist_backend *be;
  float *dev;   /* the block in backend memory */
  float *host;  /* its host view */
  int64_t n;    /* floats */
  int owned;    /* host is a copy */
} ist_staged;
/* Stages n floats at dev (backend memory) into host memory. */
ist_status ist_stage(ist_staged *s, const ist_backend *be, const float *dev, int64_t n);
/* The host view of a backend pointer inside the staged block (NULL stays NULL). */
static inline float *ist_staged_at(const ist_staged *s, const float *dev) { return dev ? s->host + (dev - s->dev) : NULL; }
/* Ends the staging: writes the host view back when write_back (else the block is unchanged). */
void ist_unstage(ist_staged *s, int write_back);

#ifdef __cplusplus
}
#endif
#endif
