/* BatchNorm2d (twin of kernels/cpu/batchnorm.c): training (batch statistics, saved; running stats
 * with momentum and the unbiased variance) and eval (running statistics, saved too), and the
 * backward in both modes. A block per channel: the CPU's double sums (two passes: mean, then
 * squared deviations) as deterministic block reductions, then the normalization of that channel.
 * Synchronized (sync, the host reducer of MPI data parallelism): each pass's per-channel sums go
 * through the host in double, as on the CPU; the staging buffer (4·c doubles) is allocated on the
 * first synchronized call only, and grown when a layer has more channels. */
#include <math.h>
#include <stdlib.h>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"

#define BN_THREADS 256

/* Σ over (n, hw) of channel ch of EXPR(x_at, i) (o + p indexes the element), in double. */
#define CHANNEL_SUM(acc, EXPR)                                                  \
  do {                                                                          \
    acc = 0;                                                                    \
    for (int b = 0; b < n; b++) {                                               \
      const int64_t o = ((int64_t)b * c + ch) * hw;                             \
      for (int p = threadIdx.x; p < hw; p += blockDim.x) acc += (EXPR);         \
    }                                                                           \
  } while (0)

/* y = x·a + (β − mean·a), a = γ·rstd, for channel ch (the CPU's float expression). */
static __device__ __forceinline__ void bn_apply_channel(int n, int c, int hw, int ch, const float *x, const float *gamma,
                                                 const float *beta, float mean, float rstd, float *y) {
  const float a = gamma[ch] * rstd, bsh = beta[ch] - mean * a;
  for (int b = 0; b < n; b++) {
    const int64_t o = ((int64_t)b * c + ch) * hw;
    for (int p = threadIdx.x; p < hw; p += blockDim.x) y[o + p] = x[o + p] * a + bsh;
  }
}

/* Saved statistics and running stats of a channel from its mean and Σ(x − mean)² over cnt values. */
static __device__ __forceinline__ void bn_finish_stats(int ch, double mean, double ss, double cnt, float momentum, float eps,
                                                float *save_mean, float *save_rstd, float *run_mean,
                                                float *run_var) {
  const double var = ss / cnt, unbiased = cnt > 1 ? ss / (cnt - 1) : var;
  save_mean[ch] = (float)mean;
  save_rstd[ch] = (float)(1.0 / sqrt(var + eps));
  run_mean[ch] = (1 - momentum) * run_mean[ch] + momentum * (float)mean;
  run_var[ch] = (1 - momentum) * run_var[ch] + momentum * (float)unbiased;
}

/* Training, one rank: both passes, the statistics and the output of channel blockIdx.x. */
static __global__ void bn_train_forward_kernel(int n, int c, int hw, const float *x, const float *gamma, const float *beta,
                                        float *y, float *save_mean, float *save_rstd, float *run_mean, float *run_var,
                                        float momentum, float eps) {
  IST_SHARED(double, red, IST_RED_SLOTS);
  const int ch = blockIdx.x;
  const double cnt = (double)n * hw;
  double acc;
  CHANNEL_SUM(acc, (double)x[o + p]);
  const double mean = ist_block_sum(acc, red) / cnt;
  CHANNEL_SUM(acc, ((double)x[o + p] - mean) * ((double)x[o + p] - mean));
  const double ss = ist_block_sum(acc, red);
  if (threadIdx.x == 0) bn_finish_stats(ch, mean, ss, cnt, momentum, eps, save_mean, save_rstd, run_mean, run_var);
  bn_apply_channel(n, c, hw, ch, x, gamma, beta, (float)mean, (float)(1.0 / sqrt(ss / cnt + eps)), y);
}

/* Eval: the running statistics, saved for an eval-mode backward, then the output. */
static __global__ void bn_eval_forward_kernel(int n, int c, int hw, const float *x, const float *gamma, const float *beta,
                                       float *y, float *save_mean, float *save_rstd, const float *run_mean,
                                       const float *run_var, float eps) {
  const int ch = blockIdx.x;
  const float mean = run_mean[ch], rstd = 1.0f / sqrtf(run_var[ch] + eps);
  if (threadIdx.x == 0) save_mean[ch] = mean, save_rstd[ch] = rstd;
  bn_apply_channel(n, c, hw, ch, x, gamma, beta, mean, rstd, y);
}

/* Synchronized training, one pass: this rank's Σx (mean NULL) or Σ(x − mean)² per channel, to sums. */
static __global__ void bn_channel_sums_kernel(int n, int c, int hw, const float *x, const double *mean, double *sums) {
  IST_SHARED(double, red, IST_RED_SLOTS);
  const int ch = blockIdx.x;
  double acc;
  if (mean) {
    const double m = mean[ch];
    CHANNEL_SUM(acc, ((double)x[o + p] - m) * ((double)x[o + p] - m));
  } else {
    CHANNEL_SUM(acc, (double)x[o + p]);
  }
  acc = ist_block_sum(acc, red);
  if (threadIdx.x == 0) sums[ch] = acc;
}

/* Synchronized training, the end: stats from every rank's mean and Σ(x − mean)², then the output. */
static __global__ void bn_sync_finish_kernel(int n, int c, int hw, const float *x, const float *gamma, const float *beta,
                                      float *y, const double *mean, const double *ss, double cnt, float *save_mean,
                                      float *save_rstd, float *run_mean, float *run_var, float momentum, float eps) {
  const int ch = blockIdx.x;
  if (threadIdx.x == 0)
    bn_finish_stats(ch, mean[ch], ss[ch], cnt, momentum, eps, save_mean, save_rstd, run_mean, run_var);
  bn_apply_channel(n, c, hw, ch, x, gamma, beta, (float)mean[ch], (float)(1.0 / sqrt(ss[ch] / cnt + eps)), y);
}

/* Backward sums of a channel: Σdy and Σdy·x̂ (the CPU's double expression); this rank's share goes to
 * dbeta and dgamma. */
static __device__ __forceinline__ void bn_backward_sums(int n, int c, int hw, int ch, const float *dy, const float *x,
                                                 const float *save_mean, const float *save_rstd, float *dgamma,
                                                 float *dbeta, ist_sptr<double> red, double *sdy, double *sdyx) {
  const float mean = save_mean[ch], rstd = save_rstd[ch];
  double acc;
  CHANNEL_SUM(acc, (double)dy[o + p]);
  *sdy = ist_block_sum(acc, red);
  CHANNEL_SUM(acc, dy[o + p] * ((double)x[o + p] - mean) * rstd);
  *sdyx = ist_block_sum(acc, red);
  if (threadIdx.x == 0) {
    dgamma[ch] += (float)*sdyx;
    dbeta[ch] += (float)*sdy;
  }
}

/* dx = γ·rstd·(dy − mean(dy) − x̂·mean(dy·x̂)) (training; both means 0 in eval mode). */
static __device__ __forceinline__ void bn_backward_dx(int n, int c, int hw, int ch, const float *dy, const float *x,
                                               const float *gamma, const float *save_mean, const float *save_rstd,
                                               float mdy, float mdyx, float *dx) {
  const float mean = save_mean[ch], rstd = save_rstd[ch], k = gamma[ch] * rstd;
  for (int b = 0; b < n; b++) {
    const int64_t o = ((int64_t)b * c + ch) * hw;
    for (int p = threadIdx.x; p < hw; p += blockDim.x) dx[o + p] = k * (dy[o + p] - mdy - (x[o + p] - mean) * rstd * mdyx);
  }
}

static __global__ void bn_backward_kernel(int n, int c, int hw, const float *dy, const float *x, const float *gamma,
                                   const float *save_mean, const float *save_rstd, float *dx, float *dgamma,
                                   float *dbeta, int training) {
  IST_SHARED(double, red, IST_RED_SLOTS);
  const int ch = blockIdx.x;
  double sdy, sdyx;
  bn_backward_sums(n, c, hw, ch, dy, x, save_mean, save_rstd, dgamma, dbeta, red, &sdy, &sdyx);
  const double cnt = (double)n * hw;
  const float mdy = training ? (float)(sdy / cnt) : 0.0f, mdyx = training ? (float)(sdyx / cnt) : 0.0f;
  bn_backward_dx(n, c, hw, ch, dy, x, gamma, save_mean, save_rstd, mdy, mdyx, dx);
}

/* Synchronized backward, first half: this rank's sums to sums[ch] (Σdy) and sums[c + ch] (Σdy·x̂). */
static __global__ void bn_backward_sums_kernel(int n, int c, int hw, const float *dy, const float *x,
                                        const float *save_mean, const float *save_rstd, float *dgamma, float *dbeta,
                                        double *sums) {
  IST_SHARED(double, red, IST_RED_SLOTS);
  const int ch = blockIdx.x;
  double sdy, sdyx;
  bn_backward_sums(n, c, hw, ch, dy, x, save_mean, save_rstd, dgamma, dbeta, red, &sdy, &sdyx);
  if (threadIdx.x == 0) sums[ch] = sdy, sums[c + ch] = sdyx;
}

/* Second half: dx from every rank's sums. */
static __global__ void bn_backward_sync_dx_kernel(int n, int c, int hw, const float *dy, const float *x, const float *gamma,
                                           const float *save_mean, const float *save_rstd, const double *sums,
                                           double cnt, float *dx) {
  const int ch = blockIdx.x;
  bn_backward_dx(n, c, hw, ch, dy, x, gamma, save_mean, save_rstd, (float)(sums[ch] / cnt),
                 (float)(sums[c + ch] / cnt), dx);
}

/* The synchronized path's device staging (4·c doubles) and its host mirror. */
static double *stage_dev, *stage_host;
static size_t stage_cap;

static int stage_reserve(int c) {
  const size_t need = 4 * (size_t)c;
  if (need <= stage_cap) return 1;
  if (stage_dev) IST_CUDA_CHECK(cudaFree(stage_dev), "batchnorm sync staging c=%d", c);
  free(stage_host);
  stage_dev = NULL, stage_cap = 0;
  stage_host = (double *)malloc(sizeof(double) * need);
  cudaError_t e = cudaMalloc((void **)&stage_dev, sizeof(double) * need);
  if (e != cudaSuccess || !stage_host) {
    ist_cuda_failf("CUDA batchnorm sync staging c=%d: cannot allocate %zu doubles (%s)", c, need,
                   e != cudaSuccess ? cudaGetErrorString(e) : "host memory");
    stage_dev = NULL;
    return 0;
  }
  stage_cap = need;
  return 1;
}

/* dev[0..len) → host, summed over the ranks, → dev (synchronizes: the MPI path stages through the host). */
static void stage_sum_over_ranks(const ist_reducer *sync, double *dev, int len) {
  ist_cuda_download(stage_host, dev, sizeof(double) * (size_t)len);
  sync->sum(sync->ctx, stage_host, len);
  ist_cuda_upload(dev, stage_host, sizeof(double) * (size_t)len);
}

extern "C" void ist_cuda_batchnorm_forward(int n, int c, int hw, const float *x, const float *gamma,
                                           const float *beta, float *y, float *save_mean, float *save_rstd,
                                           float *run_mean, float *run_var, float momentum, float eps, int training,
                                           const ist_reducer *sync) {
  if (c <= 0) return;
  cudaStream_t st = ist_cuda_stream();
  if (!training) {
    IST_LAUNCH(bn_eval_forward_kernel, c, BN_THREADS, 0, st, n, c, hw, x, gamma, beta, y, save_mean, save_rstd,
               run_mean, run_var, eps);
  } else if (!sync) {
    IST_LAUNCH(bn_train_forward_kernel, c, BN_THREADS, 0, st, n, c, hw, x, gamma, beta, y, save_mean, save_rstd,
               run_mean, run_var, momentum, eps);
  } else {
    if (!stage_reserve(c)) return;
    double *mean = stage_dev, *ss = stage_dev + c;
    const double cnt = (double)n * hw * sync->ranks;
    IST_LAUNCH(bn_channel_sums_kernel, c, BN_THREADS, 0, st, n, c, hw, x, (const double *)NULL, mean);
    IST_CUDA_CHECK_LAUNCH("batchnorm_forward sums n=%d c=%d hw=%d", n, c, hw);
    ist_cuda_download(stage_host, mean, sizeof(double) * (size_t)c);
    sync->sum(sync->ctx, stage_host, c);
    for (int ch = 0; ch < c; ch++) stage_host[ch] /= cnt;
    ist_cuda_upload(mean, stage_host, sizeof(double) * (size_t)c);
    IST_LAUNCH(bn_channel_sums_kernel, c, BN_THREADS, 0, st, n, c, hw, x, (const double *)mean, ss);
    IST_CUDA_CHECK_LAUNCH("batchnorm_forward squares n=%d c=%d hw=%d", n, c, hw);
    stage_sum_over_ranks(sync, ss, c);
    IST_LAUNCH(bn_sync_finish_kernel, c, BN_THREADS, 0, st, n, c, hw, x, gamma, beta, y, (const double *)mean,
               (const double *)ss, cnt, save_mean, save_rstd, run_mean, run_var, momentum, eps);
  }
  IST_CUDA_CHECK_LAUNCH("batchnorm_forward n=%d c=%d hw=%d training=%d", n, c, hw, training);
}

extern "C" void ist_cuda_batchnorm_backward(int n, int c, int hw, const float *dy, const float *x,
                                            const float *gamma, const float *save_mean, const float *save_rstd,
                                            float *dx, float *dgamma, float *dbeta, int training,
                                            const ist_reducer *sync) {
  if (c <= 0) return;
  cudaStream_t st = ist_cuda_stream();
  if (!(training && sync)) {
    IST_LAUNCH(bn_backward_kernel, c, BN_THREADS, 0, st, n, c, hw, dy, x, gamma, save_mean, save_rstd, dx, dgamma,
               dbeta, training);
  } else {
    if (!stage_reserve(c)) return;
    IST_LAUNCH(bn_backward_sums_kernel, c, BN_THREADS, 0, st, n, c, hw, dy, x, save_mean, save_rstd, dgamma, dbeta,
               stage_dev);
    IST_CUDA_CHECK_LAUNCH("batchnorm_backward sums n=%d c=%d hw=%d", n, c, hw);
    stage_sum_over_ranks(sync, stage_dev, 2 * c);
    IST_LAUNCH(bn_backward_sync_dx_kernel, c, BN_THREADS, 0, st, n, c, hw, dy, x, gamma, save_mean, save_rstd,
               (const double *)stage_dev, (double)n * hw * sync->ranks, dx);
  }
  IST_CUDA_CHECK_LAUNCH("batchnorm_backward n=%d c=%d hw=%d training=%d", n, c, hw, training);
}
