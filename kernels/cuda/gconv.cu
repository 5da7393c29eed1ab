/* The generated convolution run in factored form on the GPU (twin of kernels/cpu/gconv.c):
 * conv(x, V·{U_j·Wb_j}) = V ⋆ (Wb ⋆ (U ⋆ x)), so W is never built (SPEC §2). The 1×1 stages are
 * strided-batched cuBLAS GEMMs over the images; the k×k stage is conv2d.cu's convolution (grouped,
 * nb groups of bi → 1, when level 1 is on; dense ci → nb with the free Wc otherwise). Parameter
 * gradients that sum over images (dV, dU) go through per-image partials in scratch and a
 * fixed-order sum, so results do not depend on scheduling. */
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/ist_cuda.h"

namespace {
constexpr int kThreads = 256;
constexpr int kMaxBlocks = 1 << 16;

/* Scratch layout, in floats: Uᵀ (nb·bi × ci), the level-2 input gradient dt2 (n × nb × ho·wo),
 * per-image partial dV (n × co × nb), the level-1 input gradient dt1 (n × nb·bi × h·w), per-image
 * partial dUᵀ (n × nb·bi × ci), then the k×k convolution's own scratch (last, so that only
 * ist_cuda_gconv_ws_floats asks for its size: asking chooses cuDNN's algorithms, and the ops must
 * run with the ones the caller's scratch was sized for). */
struct Layout {
  size_t ut, dt2, dvp, dt1, dup, conv;
};

/* The k×k stage: grouped over t1 (level 1 on), or dense over x with Wc (level 1 off). */
ist_conv_shape kxk_shape(const ist_conv_shape *s, const ist_gen_shape *g) {
  ist_conv_shape c = *s;
  c.co = g->nb;
  if (g->level1) {
    c.ci = g->nb * g->bi;
    c.groups = g->nb;
  }
  return c;
}

Layout layout(const ist_conv_shape *s, const ist_gen_shape *g, bool with_conv) {
  Layout L = {};
  const size_t ohw = (size_t)s->ho * s->wo, hw = (size_t)s->h * s->w, nbi = (size_t)g->nb * g->bi;
  if (g->level1) {
    L.ut = nbi * s->ci;
    L.dt1 = (size_t)s->n * nbi * hw;
    L.dup = (size_t)s->n * nbi * s->ci;
  }
  if (g->level2) {
    L.dt2 = (size_t)s->n * g->nb * ohw;
    L.dvp = (size_t)s->n * s->co * g->nb;
  }
  if (with_conv) {
    const ist_conv_shape c = kxk_shape(s, g);
    L.conv = ist_cuda_conv_ws_floats(&c);
  }
  return L;
}

/* Uᵀ: row j·bi + b of the 1×1 conv's weight is column b of U_j (ci × bi). */
__global__ void transpose_u_kernel(int nb, int ci, int bi, const float *u, float *ut) {
  const int64_t total = (int64_t)nb * ci * bi;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int c = (int)(i % ci);
    const int64_t row = i / ci; /* j·bi + b */
    const int b = (int)(row % bi), j = (int)(row / bi);
    ut[i] = u[((int64_t)j * ci + c) * bi + b];
  }
}

/* dst += Σ over images of the per-image partials (images summed in order). With bi > 0 the partial
 * is dUᵀ (nb·bi × ci) and lands in dU's layout (nb × ci × bi). */
__global__ void sum_images_kernel(const float *part, int images, int64_t per, int ci, int bi, float *dst) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < per; i += (int64_t)gridDim.x * blockDim.x) {
    float acc = 0.0f;
    for (int t = 0; t < images; t++) acc += part[(int64_t)t * per + i];
    if (bi > 0) {
      const int64_t row = i / ci, c = i % ci, j = row / bi, b = row % bi;
      dst[(j * ci + c) * bi + b] += acc;
    } else {
      dst[i] += acc;
    }
  }
}

void transpose_u(const ist_gen_shape *g, const float *u, float *ut) {
  const int64_t total = (int64_t)g->nb * g->ci * g->bi;
  IST_LAUNCH(transpose_u_kernel, ist_cuda_blocks(total, kThreads, kMaxBlocks), kThreads, 0, ist_cuda_stream(), g->nb,
             g->ci, g->bi, u, ut);
  IST_CUDA_CHECK_LAUNCH("gconv transpose U nb=%d ci=%d bi=%d", g->nb, g->ci, g->bi);
}

void sum_images(const float *part, int images, int64_t per, int ci, int bi, float *dst, const char *what) {
  IST_LAUNCH(sum_images_kernel, ist_cuda_blocks(per, kThreads, kMaxBlocks), kThreads, 0, ist_cuda_stream(), part,
             images, per, ci, bi, dst);
  IST_CUDA_CHECK_LAUNCH("gconv %s: sum of %d images of %lld", what, images, (long long)per);
}
} // namespace

extern "C" size_t ist_cuda_gconv_ws_floats(const ist_conv_shape *s, const ist_gen_shape *g) {
  const Layout L = layout(s, g, true);
  return L.ut + L.dt2 + L.dvp + L.dt1 + L.dup + L.conv;
}

extern "C" void ist_cuda_gconv_forward(const ist_conv_shape *s, const ist_gen_shape *g, const float *x,
                                       const float *wb, const float *u, const float *wc, const float *v, float *t1,
                                       float *t2, float *y, float *ws) {
  const Layout L = layout(s, g, false);
  const int hw = s->h * s->w, ohw = s->ho * s->wo, nbi = g->nb * g->bi;
  float *ut = ws, *conv_ws = ws + L.ut + L.dt2 + L.dvp + L.dt1 + L.dup;
  float *lvl1_out = g->level2 ? t2 : y;
  const ist_conv_shape c = kxk_shape(s, g);
  if (g->level1) {
    transpose_u(g, u, ut);
    /* t1_b (nb·bi × hw) = Uᵀ (nb·bi × ci) · x_b (ci × hw) */
    ist_cuda_gemm_batched("gconv forward U", 0, 0, nbi, hw, s->ci, 1.0f, ut, s->ci, 0, x, hw, (int64_t)s->ci * hw,
                          0.0f, t1, hw, (int64_t)nbi * hw, s->n);
    ist_cuda_conv2d_forward(&c, t1, wb, NULL, lvl1_out, conv_ws);
  } else {
    ist_cuda_conv2d_forward(&c, x, wc, NULL, lvl1_out, conv_ws);
  }
  if (g->level2) /* y_b (co × ohw) = V (co × nb) · t2_b (nb × ohw) */
    ist_cuda_gemm_batched("gconv forward V", 0, 0, s->co, ohw, g->nb, 1.0f, v, g->nb, 0, t2, ohw,
                          (int64_t)g->nb * ohw, 0.0f, y, ohw, (int64_t)s->co * ohw, s->n);
}

extern "C" void ist_cuda_gconv_backward(const ist_conv_shape *s, const ist_gen_shape *g, const float *dy,
                                        const float *x, const float *wb, const float *u, const float *wc,
                                        const float *v, const float *t1, const float *t2, float *dx, float *dwb,
                                        float *du, float *dwc, float *dv, float *ws) {
  const Layout L = layout(s, g, false);
  const int hw = s->h * s->w, ohw = s->ho * s->wo, nbi = g->nb * g->bi;
  float *ut = ws, *dt2 = ut + L.ut, *dvp = dt2 + L.dt2, *dt1 = dvp + L.dvp, *dup = dt1 + L.dt1, *conv_ws = dup + L.dup;
  const ist_conv_shape c = kxk_shape(s, g);
  if (g->level2) {
    /* dV += Σ_b dy_b · t2_bᵀ;  dt2_b = Vᵀ · dy_b */
    ist_cuda_gemm_batched("gconv backward dV", 0, 1, s->co, g->nb, ohw, 1.0f, dy, ohw, (int64_t)s->co * ohw, t2, ohw,
                          (int64_t)g->nb * ohw, 0.0f, dvp, g->nb, (int64_t)s->co * g->nb, s->n);
    sum_images(dvp, s->n, (int64_t)s->co * g->nb, 0, 0, dv, "dV");
    ist_cuda_gemm_batched("gconv backward dt2", 1, 0, g->nb, ohw, s->co, 1.0f, v, g->nb, 0, dy, ohw,
                          (int64_t)s->co * ohw, 0.0f, dt2, ohw, (int64_t)g->nb * ohw, s->n);
  }
  const float *dlvl1 = g->level2 ? dt2 : dy;
  if (g->level1) {
    transpose_u(g, u, ut);
    ist_cuda_conv2d_backward(&c, dlvl1, t1, wb, dt1, dwb, NULL, conv_ws);
    /* dUᵀ += Σ_b dt1_b · x_bᵀ;  dx_b = Uᵀᵀ · dt1_b */
    ist_cuda_gemm_batched("gconv backward dU", 0, 1, nbi, s->ci, hw, 1.0f, dt1, hw, (int64_t)nbi * hw, x, hw,
                          (int64_t)s->ci * hw, 0.0f, dup, s->ci, (int64_t)nbi * s->ci, s->n);
    sum_images(dup, s->n, (int64_t)nbi * s->ci, s->ci, g->bi, du, "dU");
    if (dx)
      ist_cuda_gemm_batched("gconv backward dx", 1, 0, s->ci, hw, nbi, 1.0f, ut, s->ci, 0, dt1, hw, (int64_t)nbi * hw,
                            0.0f, dx, hw, (int64_t)s->ci * hw, s->n);
  } else {
    ist_cuda_conv2d_backward(&c, dlvl1, x, wc, dx, dwc, NULL, conv_ws);
  }
}
