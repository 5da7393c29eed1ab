/* The orthogonality penalty of SPEC §4 for one generated layer (twin of kernels/cpu/ortho.c):
 *   Σ_j ‖Wb_j·Wb_jᵀ − I‖²_F + ‖Ũ_jᵀ·Ũ_j − I‖²_F, plus ‖ṼᵀṼ − I‖²_F (unit-norm columns Ũ, Ṽ).
 * A block per factor (Wb_j, U_j, V: small matrices), each Gram entry, norm and gradient entry
 * summed by one thread in the CPU's order and precision. Forward: each block adds its factors'
 * penalties in factor order to a static device array, and one thread adds those in block order to
 * *loss_sum (deterministic; the op has no scratch argument and every op runs on one stream).
 * Backward: the factors' gradients are disjoint, so the blocks write them directly. */
#include <math.h>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"

#define ORTHO_THREADS 256
#define ORTHO_MAX_BLOCKS 1024
/* Added to a column norm before dividing by it (the CPU's guard against a zero column). */
#define ORTHO_NORM_GUARD 1e-12f
/* d‖E‖²/dA = 4·E·A for E = A·Aᵀ − I (symmetric E). */
#define ORTHO_GRAD_FACTOR 4.0f
/* Static shared memory limit for one block without opting in. */
#define ORTHO_SMEM_LIMIT (48 * 1024)

static __device__ double ortho_part[ORTHO_MAX_BLOCKS];

/* ‖A·Aᵀ − I‖² of the rows of a (r × c); adds scale·4·E·A to da (when not NULL). e: r·r floats. */
static __device__ double rows_penalty(int r, int c, const float *a, float scale, float *da, ist_sptr<float> e) {
  for (int idx = threadIdx.x; idx < r * r; idx += blockDim.x) {
    const int i = idx / r, j = idx % r;
    double d = 0;
    for (int t = 0; t < c; t++) d += (double)a[i * c + t] * a[j * c + t];
    e[idx] = (float)(d - (i == j));
  }
  __syncthreads();
  double loss = 0;
  if (threadIdx.x == 0)
    for (int idx = 0; idx < r * r; idx++) loss += (double)e[idx] * e[idx];
  if (da)
    for (int idx = threadIdx.x; idx < r * c; idx += blockDim.x) {
      const int i = idx / c, t = idx % c;
      double s = 0;
      for (int j = 0; j < r; j++) s += (double)e[i * r + j] * a[j * c + t];
      da[idx] += scale * ORTHO_GRAD_FACTOR * (float)s;
    }
  __syncthreads(); /* e is reused by the next factor */
  return loss;
}

/* ‖ÃᵀÃ − I‖² of the normalized columns of a (r × c); adds the gradient through the normalization,
 * scale·(G − ã·(ã·G))/‖a‖ per column with G = 4·Ã·E, to da (when not NULL).
 * sm: c·c (E) + c (norms) + r (a gradient column) floats. */
static __device__ double cols_penalty(int r, int c, const float *a, float scale, float *da, ist_sptr<float> sm,
                               ist_sptr<double> red) {
  ist_sptr<float> e = sm, nrm = sm + c * c, gcol = sm + c * c + c;
  for (int j = threadIdx.x; j < c; j += blockDim.x) {
    double s = 0;
    for (int i = 0; i < r; i++) s += (double)a[i * c + j] * a[i * c + j];
    nrm[j] = (float)sqrt(s) + ORTHO_NORM_GUARD;
  }
  __syncthreads();
  /* ã_j[t] = a[t][j] / ‖a_j‖, recomputed where needed (the CPU's stored float, bit for bit). */
  for (int idx = threadIdx.x; idx < c * c; idx += blockDim.x) {
    const int i = idx / c, j = idx % c;
    const float ni = nrm[i], nj = nrm[j];
    double d = 0;
    for (int t = 0; t < r; t++) d += (double)(a[t * c + i] / ni) * (a[t * c + j] / nj);
    e[idx] = (float)(d - (i == j));
  }
  __syncthreads();
  double loss = 0;
  if (threadIdx.x == 0)
    for (int idx = 0; idx < c * c; idx++) loss += (double)e[idx] * e[idx];
  if (da)
    for (int j = 0; j < c; j++) {
      const float nj = nrm[j];
      double dot = 0;
      for (int t = threadIdx.x; t < r; t += blockDim.x) {
        double s = 0;
        for (int i = 0; i < c; i++) s += (double)e[j * c + i] * (a[t * c + i] / nrm[i]);
        gcol[t] = ORTHO_GRAD_FACTOR * (float)s;
        dot += (double)gcol[t] * (a[t * c + j] / nj);
      }
      dot = ist_block_sum(dot, red);
      for (int t = threadIdx.x; t < r; t += blockDim.x)
        da[t * c + j] += scale * (gcol[t] - (float)dot * (a[t * c + j] / nj)) / nj;
      __syncthreads(); /* gcol is rewritten for the next column */
    }
  __syncthreads();
  return loss;
}

/* Factor f: 2j is Wb_j's rows, 2j+1 U_j's columns (level 1), the last V's columns (level 2). */
static __device__ double factor_penalty(ist_gen_shape g, int f, const float *wb, const float *u, const float *v, float scale,
                                 float *dwb, float *du, float *dv, ist_sptr<float> sm, ist_sptr<double> red) {
  if (g.level1 && f < 2 * g.nb) {
    const int j = f / 2;
    if (f % 2 == 0) {
      const int64_t ob = (int64_t)j * g.bi * g.k2;
      return rows_penalty(g.bi, g.k2, wb + ob, scale, dwb ? dwb + ob : NULL, sm);
    }
    const int64_t ou = (int64_t)j * g.ci * g.bi;
    return cols_penalty(g.ci, g.bi, u + ou, scale, du ? du + ou : NULL, sm, red);
  }
  return cols_penalty(g.co, g.bc, v, scale, dv, sm, red);
}

static __global__ void ortho_kernel(ist_gen_shape g, int factors, const float *wb, const float *u, const float *v,
                             float scale, float *dwb, float *du, float *dv, int forward) {
  IST_DYNAMIC_SHARED(float, sm);
  IST_SHARED(double, red, IST_RED_SLOTS);
  double loss = 0;
  for (int f = blockIdx.x; f < factors; f += gridDim.x)
    loss += factor_penalty(g, f, wb, u, v, scale, dwb, du, dv, sm, red);
  if (forward && threadIdx.x == 0) ortho_part[blockIdx.x] = loss;
}

static __global__ void ortho_total_kernel(int parts, float *loss_sum) {
  double loss = 0;
  for (int b = 0; b < parts; b++) loss += ortho_part[b];
  *loss_sum += (float)loss;
}

static int ortho_factors(const ist_gen_shape *g) { return (g->level1 ? 2 * g->nb : 0) + (g->level2 ? 1 : 0); }

/* Shared floats of the largest factor's work. */
static size_t ortho_smem_bytes(const ist_gen_shape *g) {
  size_t f = 0;
  if (g->level1) {
    const size_t rows = (size_t)g->bi * g->bi, cols = (size_t)g->bi * g->bi + g->bi + g->ci;
    f = rows > cols ? rows : cols;
  }
  if (g->level2) {
    const size_t cols = (size_t)g->bc * g->bc + g->bc + g->co;
    f = cols > f ? cols : f;
  }
  return sizeof(float) * f;
}

static void ortho_launch(const ist_gen_shape *g, const float *wb, const float *u, const float *v, float scale,
                         float *dwb, float *du, float *dv, float *loss_sum) {
  const int factors = ortho_factors(g);
  const size_t smem = ortho_smem_bytes(g);
  if (smem > ORTHO_SMEM_LIMIT) {
    ist_cuda_failf("CUDA ortho co=%d ci=%d bi=%d bc=%d: %zu bytes of shared memory, over %d", g->co, g->ci, g->bi,
                   g->bc, smem, ORTHO_SMEM_LIMIT);
    return;
  }
  const int blocks = factors < ORTHO_MAX_BLOCKS ? factors : ORTHO_MAX_BLOCKS;
  cudaStream_t st = ist_cuda_stream();
  if (blocks > 0) {
    IST_LAUNCH(ortho_kernel, blocks, ORTHO_THREADS, smem, st, *g, factors, wb, u, v, scale, dwb, du, dv,
               loss_sum != NULL);
    IST_CUDA_CHECK_LAUNCH("ortho co=%d ci=%d k2=%d bi=%d bc=%d", g->co, g->ci, g->k2, g->bi, g->bc);
  }
  if (loss_sum) {
    IST_LAUNCH(ortho_total_kernel, 1, 1, 0, st, blocks, loss_sum);
    IST_CUDA_CHECK_LAUNCH("ortho total co=%d ci=%d k2=%d bi=%d bc=%d", g->co, g->ci, g->k2, g->bi, g->bc);
  }
}

extern "C" void ist_cuda_ortho_forward(const ist_gen_shape *g, const float *wb, const float *u, const float *v,
                                       float *loss_sum) {
  ortho_launch(g, wb, u, v, 0.0f, NULL, NULL, NULL, loss_sum);
}

extern "C" void ist_cuda_ortho_backward(float scale, const ist_gen_shape *g, const float *wb, const float *u,
                                        const float *v, float *dwb, float *du, float *dv) {
  ortho_launch(g, wb, u, v, scale, dwb, du, dv, NULL);
}
