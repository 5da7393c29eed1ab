/* The op interface: every compute op the models and trainers call, as one table per backend.
 * models/ and train/ only ever call through an ist_backend, so a CUDA backend slots in by
 * filling the same table. Pointers are device pointers of that backend; shapes are plain ints.
 * Backward ops take the upstream gradient first and ACCUMULATE into parameter gradients;
 * input gradients (dx) are overwritten. */
#ifndef IST_BACKEND_H
#define IST_BACKEND_H
#include <stddef.h>
#include <stdint.h>

#include "host/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Sums over data-parallel ranks, on host memory: sum(ctx, buf, n) replaces buf[0..n) by its sum
 * over the `ranks` ranks (every rank calls it in the same order). sum_device, when not NULL, does
 * the same on backend memory, ordered after the ops issued so far (NCCL on the compute stream):
 * a GPU backend uses it rather than staging its statistics through the host. */
typedef struct {
  void (*sum)(void *ctx, double *buf, int n);
  void *ctx;
  int ranks;
  void (*sum_device)(void *ctx, double *buf, int n);
} ist_reducer;

/* A 2-D convolution, NCHW, square kernel; weights (co × ci/groups × k × k). */
typedef struct {
  int n, ci, h, w;   /* input */
  int co, k, stride, pad;
  int ho, wo;        /* output, from ist_conv_shape_init */
  int groups;        /* 0 or 1: a dense conv; ci and co must be multiples of it */
} ist_conv_shape;

/* Fills ho, wo (and groups 0 → 1); returns 0 when the shape is impossible. */
int ist_conv_shape_init(ist_conv_shape *s);
/* Output size of a k-window pooling with stride and padding (floor mode). */
int ist_pool_out(int in, int k, int stride, int pad);
/* Weight elements co·(ci/groups)·k² and fan-in (ci/groups)·k² of a conv. */
int64_t ist_conv_weight_numel(const ist_conv_shape *s);
int ist_conv_fan_in(const ist_conv_shape *s);
/* Floats of scratch the CPU's conv2d_forward/backward need (sized for the current thread count);
 * models ask their backend (conv_ws_floats), whose kernels may need another amount. */
size_t ist_conv_ws_floats(const ist_conv_shape *s);

/* The generator of SPEC §2 for one layer: W (co × ci·k2) = V · {U_j · Wb_j}.
 * level1 off: Wc (nb × ci·k2) is a free parameter; level2 off: nb = co and W = Wc.
 * A depthwise layer is co = 1, ci = channels, level 2 off. */
typedef struct {
  int co, ci, k2;
  int bi, bc;
  int level1, level2;
  int nb; /* bc when level 2 is on, co otherwise */
} ist_gen_shape;

/* The generator of a co × ci × k × k conv at ranks (bi, bc); a level is on only when its rank is
 * below both dimensions it factors (SPEC §2). */
ist_gen_shape ist_gen_shape_make(int co, int ci, int k, int bi, int bc);
/* Sizes of the generator's factors, in floats. */
int64_t ist_gen_wb_numel(const ist_gen_shape *g); /* nb·bi·k2, or 0 */
int64_t ist_gen_u_numel(const ist_gen_shape *g);  /* nb·ci·bi, or 0 */
int64_t ist_gen_wc_numel(const ist_gen_shape *g); /* nb·ci·k2 (free Wc when level 1 is off; scratch otherwise) */
int64_t ist_gen_v_numel(const ist_gen_shape *g);  /* co·bc, or 0 */

/* Floats of scratch the CPU's gconv_forward/backward need (models ask their backend). */
size_t ist_gconv_ws_floats(const ist_conv_shape *s, const ist_gen_shape *g);
/* Floats the factored forward keeps for the backward: t1 (level 1 on) and t2 (level 2 on). */
int64_t ist_gconv_t1_numel(const ist_conv_shape *s, const ist_gen_shape *g);
int64_t ist_gconv_t2_numel(const ist_conv_shape *s, const ist_gen_shape *g);
/* Multiply-adds per output pixel of the generated conv run on a materialized W, and run factored
 * (the 1×1 of level 1 runs at the input resolution, so it is scaled by h·w / (ho·wo)). */
double ist_gconv_macs_materialized(const ist_conv_shape *s, const ist_gen_shape *g);
double ist_gconv_macs_factored(const ist_conv_shape *s, const ist_gen_shape *g);
/* Whether the factored execution needs at most `share` of the materialized one's multiply-adds
 * (each backend's rule for "auto" is this with its own share). */
int ist_gconv_factored_within(const ist_conv_shape *s, const ist_gen_shape *g, double share);

/* The baselines of SPEC §6 as conv types whose weight is built from their own parameters
 * (p1, p2), then convolved densely (numerically the same conv as their usual two-step form):
 *   DSConv   W[o,c,t] = PW[o,c]·DW[c,t]      p1 = DW (ci × k²), p2 = PW (co × ci)
 *   BSConv-U W[o,c,t] = DW[o,t]·PW[o,c]      p1 = DW (co × k²), p2 = PW (co × ci)
 *   PENNI    W[o,c,:] = Σ_i C[o,c,i]·B[i,:]  p1 = B (2 × k²),  p2 = C (co·ci × 2)
 *   CirCNN   4×4 blocks of (o, c) circulant per tap: W[o,c,t] = P[o/4, c/4, t, (o − c) mod 4],
 *            p1 = P (co/4 · ci/4 · k² · 4), no p2. */
typedef enum { IST_BASE_NONE, IST_BASE_DSCONV, IST_BASE_BSCONV, IST_BASE_PENNI, IST_BASE_CIRCNN } ist_base_type;
#define IST_PENNI_D 2
#define IST_CIRCNN_BLOCK 4
typedef struct {
  ist_base_type type;
  int co, ci, k2;
} ist_base_shape;
int64_t ist_base_p1_numel(const ist_base_shape *b);
int64_t ist_base_p2_numel(const ist_base_shape *b);

typedef struct {
  float lr, beta1, beta2, eps, weight_decay;
} ist_radam_hparams;

typedef struct ist_backend {
  const char *name;
  int device; /* the ist_device its arenas live on */

  /* Memory: backend memory (zeroed; NULL when there is none left), and pinned host memory (page-
   * locked on a GPU, so uploads from it run asynchronously; plain memory on the CPU). */
  void *(*alloc)(size_t bytes);
  void (*free)(void *p); /* NULL is fine */
  void *(*host_alloc)(size_t bytes);
  void (*host_free)(void *p);
  /* Waits for every op issued so far; returns the first failure of any of them (ops are void, a
   * failure is recorded and reported here, naming the op and its shape). */
  ist_status (*sync)(void);

  /* Moving data: host ↔ backend memory (both wait until the copy is done), and within backend
   * memory. */
  void (*upload)(void *dst, const void *host_src, size_t bytes);
  void (*download)(void *host_dst, const void *src, size_t bytes);
  /* An upload from pinned host memory ordered after the ops issued so far, returning at once:
   * host_src must stay unchanged until upload_wait(host_src) returns. */
  void (*upload_async)(void *dst, const void *host_src, size_t bytes);
  void (*upload_wait)(const void *host_src);
  void (*zero)(float *p, int64_t n);
  void (*copy)(float *dst, const float *src, int64_t n);

  /* Facts of this backend's kernels: the scratch (floats) its conv2d and gconv need for a shape,
   * and whether "auto" runs a generated conv factored (gconv) rather than on a materialized W. */
  size_t (*conv_ws_floats)(const ist_conv_shape *s);
  size_t (*gconv_ws_floats)(const ist_conv_shape *s, const ist_gen_shape *g);
  int (*gconv_prefers_factored)(const ist_conv_shape *s, const ist_gen_shape *g);

  /* y = conv(x, w) + bias (bias may be NULL); ws: ist_conv_ws_floats floats of scratch. */
  void (*conv2d_forward)(const ist_conv_shape *s, const float *x, const float *w, const float *bias,
                         float *y, float *ws);
  /* dx (may be NULL) = conv^T(dy); dw += dy ⋆ x; dbias (may be NULL) += Σ dy. */
  void (*conv2d_backward)(const ist_conv_shape *s, const float *dy, const float *x, const float *w,
                          float *dx, float *dw, float *dbias, float *ws);

  /* BatchNorm over (n, hw) per channel c. Training: batch statistics, saved mean/rstd, running
   * stats updated with momentum (unbiased variance, as PyTorch). Eval: running statistics (also
   * saved). The backward follows the forward's mode: in eval mode the statistics are constants.
   * With sync (not NULL, training only) the batch statistics, and the backward's sums, are over
   * every rank's batch (synchronized BatchNorm); dgamma and dbeta stay this rank's share. */
  void (*batchnorm_forward)(int n, int c, int hw, const float *x, const float *gamma, const float *beta,
                            float *y, float *save_mean, float *save_rstd, float *run_mean, float *run_var,
                            float momentum, float eps, int training, const ist_reducer *sync);
  void (*batchnorm_backward)(int n, int c, int hw, const float *dy, const float *x, const float *gamma,
                             const float *save_mean, const float *save_rstd, float *dx, float *dgamma,
                             float *dbeta, int training, const ist_reducer *sync);

  /* Channels [src_off, src_off + c) of each of n images of src (src_c channels of hw values each)
   * into channels [dst_off, dst_off + c) of dst (dst_c channels): copied, or added when accumulate
   * (DenseNet's concatenation and its backward). */
  void (*copy_channels)(int n, int hw, int c, const float *src, int src_c, int src_off, float *dst, int dst_c,
                        int dst_off, int accumulate);
  /* y = a + b (y may alias a or b). */
  void (*add)(int64_t n, const float *a, const float *b, float *y);
  /* x *= a (data-parallel gradient averaging). */
  void (*scale)(int64_t n, float a, float *x);

  void (*relu_forward)(int64_t n, const float *x, float *y);
  void (*relu_backward)(int64_t n, const float *dy, const float *y, float *dx);
  /* min(max(x, 0), 6) (MobileNetV2); the backward passes dy where 0 < y < 6. */
  void (*relu6_forward)(int64_t n, const float *x, float *y);
  void (*relu6_backward)(int64_t n, const float *dy, const float *y, float *dx);

  /* Adaptive average pooling (PyTorch's bins) from h×w to oh×ow. */
  void (*avgpool_forward)(int n, int c, int h, int w, int oh, int ow, const float *x, float *y);
  void (*avgpool_backward)(int n, int c, int h, int w, int oh, int ow, const float *dy, float *dx);

  /* Max pooling over k×k windows; padding cells never win (PyTorch's semantics).
   * idx: per output, the winning input's offset within its plane, for the backward. */
  void (*maxpool_forward)(int n, int c, int h, int w, int k, int stride, int pad, const float *x, float *y,
                          int32_t *idx);
  /* dx (overwritten) = dy routed to the winners. */
  void (*maxpool_backward)(int n, int c, int h, int w, int oh, int ow, const float *dy, const int32_t *idx, float *dx);

  /* y (n × out) = x (n × in) · wᵀ + b */
  void (*linear_forward)(int n, int in, int out, const float *x, const float *w, const float *b, float *y);
  void (*linear_backward)(int n, int in, int out, const float *dy, const float *x, const float *w, float *dx,
                          float *dw, float *db);

  /* Scalars an op produces (a loss, a hit count, a quantizer's scale) go to backend memory, so a
   * step never waits for the device; the trainer reads them at log intervals, epoch ends,
   * checkpoints and evaluation. */
  /* Mean softmax cross-entropy over the batch; writes dlogits (of the mean loss) when non-NULL.
   * *loss_sum += the loss; *correct += the number of argmax hits (correct may be NULL). */
  void (*cross_entropy)(int n, int c, const float *logits, const int32_t *labels, float *dlogits, float *loss_sum,
                        int32_t *correct);
  /* L = β·T²·KL(softmax(t/T) ‖ softmax(s/T)) + (1−β)·CE(y, softmax(s)), mean over the batch (SPEC §4);
   * accumulated as cross_entropy's. */
  void (*kd_loss)(int n, int c, const float *student, const float *teacher, const int32_t *labels, float beta,
                  float temperature, float *dlogits, float *loss_sum, int32_t *correct);

  /* Uniform symmetric quantizer with a per-tensor fp32 scale (SPEC §3); the scale (the clip) is
   * written to *scale, which the backward reads.
   * Straight-through backward: dx += dy where |x| ≤ scale (values beyond the clip get no
   * gradient, or they would drift with no effect on the output); everything passes for q = 1
   * and q ≥ 32. */
  void (*quantize_forward)(int64_t n, int bits, const float *x, float *y, float *scale);
  void (*quantize_backward)(int64_t n, int bits, const float *scale, const float *x, const float *dy, float *dx);

  /* W = generator(Wb, U, V) (SPEC §2); wc: nb·ci·k2 floats, the level-1 output (an input when
   * level 1 is off). */
  void (*generate_forward)(const ist_gen_shape *g, const float *wb, const float *u, const float *v, float *wc,
                           float *w);
  /* From dW: dWb, dU, dV += ; dwc: nb·ci·k2 floats, overwritten (and, when level 1 is off, the
   * free Wc's gradient to accumulate by the caller). */
  void (*generate_backward)(const ist_gen_shape *g, const float *dw, const float *wb, const float *u,
                            const float *v, const float *wc, float *dwb, float *du, float *dv, float *dwc);

  /* The generated conv without W (factored execution): conv(x, V·{U_j·Wb_j}) is linear in each
   * factor, so y = V ⋆ (Wb ⋆ (U ⋆ x)):
   *   level 1 on:  t1 = U ⋆ x (1×1, ci → nb·bi), then Wb ⋆ t1 (k×k, nb groups of bi → 1);
   *   level 1 off: Wc ⋆ x (dense k×k, ci → nb);
   *   level 2 on:  t2 = that, y = V ⋆ t2 (1×1, nb → co); off: y = that.
   * Factors are the quantized ones (wc: the free Wc when level 1 is off); t1, t2 are kept for the
   * backward. ws: ist_gconv_ws_floats floats. */
  void (*gconv_forward)(const ist_conv_shape *s, const ist_gen_shape *g, const float *x, const float *wb,
                        const float *u, const float *wc, const float *v, float *t1, float *t2, float *y, float *ws);
  /* dx (may be NULL) overwritten; dWb, dU, dWc (level 1 off), dV accumulated. */
  void (*gconv_backward)(const ist_conv_shape *s, const ist_gen_shape *g, const float *dy, const float *x,
                         const float *wb, const float *u, const float *wc, const float *v, const float *t1,
                         const float *t2, float *dx, float *dwb, float *du, float *dwc, float *dv, float *ws);

  /* A baseline conv's weight (co × ci·k²) from its parameters, and dp1, dp2 += from dW. */
  void (*baseline_forward)(const ist_base_shape *b, const float *p1, const float *p2, float *w);
  void (*baseline_backward)(const ist_base_shape *b, const float *dw, const float *p1, const float *p2, float *dp1,
                            float *dp2);

  /* Orthogonality penalty of SPEC §4 for one layer, added to *loss_sum; backward adds scale·∂L
   * into the grads. */
  void (*ortho_forward)(const ist_gen_shape *g, const float *wb, const float *u, const float *v, float *loss_sum);
  void (*ortho_backward)(float scale, const ist_gen_shape *g, const float *wb, const float *u, const float *v,
                         float *dwb, float *du, float *dv);

  /* One RAdam step (PyTorch's algorithm, L2 weight decay added to the gradient); step counts from 1. */
  void (*radam_update)(int64_t n, float *param, const float *grad, float *m, float *v, int step,
                       const ist_radam_hparams *h);

  /* The gradient of the mean squared error (ℓ2 projection, SPEC §4 step 1):
   * grad = 2·(a − b)/n; *loss_sum += Σ(a − b)²/n when loss_sum is not NULL. */
  void (*sq_diff)(int64_t n, const float *a, const float *b, float *grad, float *loss_sum);
  /* ---- Compact networks (MobileNetV3, EfficientNet) and 8-bit activations (A8). ----
   * Element-wise activations with PyTorch's definitions; the backward of the first three takes
   * the forward's input x, sigmoid's its output y; dx is overwritten (it may alias dy). */
  void (*hardswish_forward)(int64_t n, const float *x, float *y);   /* x·relu6(x+3)/6 */
  void (*hardswish_backward)(int64_t n, const float *dy, const float *x, float *dx);
  void (*hardsigmoid_forward)(int64_t n, const float *x, float *y); /* relu6(x+3)/6 */
  void (*hardsigmoid_backward)(int64_t n, const float *dy, const float *x, float *dx);
  void (*silu_forward)(int64_t n, const float *x, float *y);        /* x·σ(x) */
  void (*silu_backward)(int64_t n, const float *dy, const float *x, float *dx);
  void (*sigmoid_forward)(int64_t n, const float *x, float *y);
  void (*sigmoid_backward)(int64_t n, const float *dy, const float *y, float *dx);
  /* Squeeze-and-excitation's scale: y[i,c,:] = x[i,c,:]·s[i,c] (s: n × c). Backward: dx (may be
   * NULL) = dy·s and ds = Σ_hw dy·x, both overwritten. */
  void (*channel_scale_forward)(int n, int c, int hw, const float *x, const float *s, float *y);
  void (*channel_scale_backward)(int n, int c, int hw, const float *dy, const float *x, const float *s, float *dx,
                                 float *ds);
  /* A per-channel bias (the SE block's 1×1 convs): y[i,c,:] += b[c]; backward db[c] += Σ dy[i,c,:]. */
  void (*channel_bias_forward)(int n, int c, int hw, float *y, const float *b);
  void (*channel_bias_backward)(int n, int c, int hw, const float *dy, float *db);
  /* Inverted dropout: each run of `group` consecutive elements is zeroed with probability p, or
   * kept and scaled by 1/(1−p); the mask is a hash of (seed, i / group), so the backward and every
   * backend draw the same one. group 1: dropout; group = one image's elements: stochastic depth
   * ("row" mode). dx overwritten. */
  void (*dropout_forward)(int64_t n, int64_t group, float p, uint64_t seed, const float *x, float *y);
  void (*dropout_backward)(int64_t n, int64_t group, float p, uint64_t seed, const float *dy, float *dx);
  /* Activation quantization: uniform, 2^bits − 1 steps over a range [lo, hi] that holds 0.
   * Training: the batch's min/max (used_range ← it), folded into run_range (2 floats, device
   * memory, a buffer saved with the model) with momentum (the first batch sets it). Eval:
   * used_range ← run_range. bits ≥ 32: y = x. Straight-through backward: dx = dy where
   * lo ≤ x ≤ hi of used_range (every element in training), else 0; dx may alias dy. */
  void (*act_quantize_forward)(int64_t n, int bits, const float *x, float *y, float *run_range, float *used_range,
                               float momentum, int training);
  void (*act_quantize_backward)(int64_t n, int bits, const float *used_range, const float *x, const float *dy,
                                float *dx);
} ist_backend;

const ist_backend *ist_backend_cpu(void);
#if defined(INSITU_HAVE_CUDA) || defined(IST_CUDA_EMU)
/* The CUDA backend (kernels/cuda/backend_cuda.c; on a GPU, or under the CPU execution check). Start it once, before any model is built, on
 * GPU `gpu`; fails with one line naming --device when there is no usable GPU or driver. */
ist_status ist_backend_cuda_init(int gpu);
const ist_backend *ist_backend_cuda(void);
/* The stream (a cudaStream_t) every CUDA op runs on: communicators order collectives on it. */
void *ist_backend_cuda_stream(void);
#endif

#ifdef __cplusplus
}
#endif
#endif
