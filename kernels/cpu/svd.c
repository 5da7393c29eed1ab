/* Thin SVD for the SVD initialization of SPEC §4 (Co×K and Ci×k² weights), in double precision:
 * LAPACK's divide-and-conquer dgesdd (from OpenBLAS), and one-sided Jacobi rotations (Hestenes)
 * as the simple reference it is tested against. */
#include <math.h>
#include <stdlib.h>

#include "kernels/cpu/cpu.h"

/* LAPACK (Fortran calling convention; the trailing argument is jobz's hidden string length). */
void dgesdd_(const char *jobz, const int *m, const int *n, double *a, const int *lda, double *s, double *u,
             const int *ldu, double *vt, const int *ldvt, double *work, const int *lwork, int *iwork, int *info,
             size_t jobz_len);

/* a (m × n, m ≥ n) → u (m × n, orthonormal columns), s (n), v (n × n); unsorted. */
static void jacobi_tall(int m, int n, double *a, double *s, double *v) {
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) v[i * n + j] = i == j;
  for (int sweep = 0; sweep < 80; sweep++) {
    int rotated = 0;
    for (int p = 0; p < n - 1; p++)
      for (int q = p + 1; q < n; q++) {
        double al = 0, be = 0, ga = 0;
        for (int i = 0; i < m; i++) {
          al += a[i * n + p] * a[i * n + p];
          be += a[i * n + q] * a[i * n + q];
          ga += a[i * n + p] * a[i * n + q];
        }
        if (fabs(ga) <= 1e-15 * sqrt(al * be) || ga == 0) continue;
        rotated = 1;
        double zeta = (be - al) / (2 * ga);
        double t = (zeta >= 0 ? 1.0 : -1.0) / (fabs(zeta) + sqrt(1 + zeta * zeta));
        double c = 1 / sqrt(1 + t * t), sn = c * t;
        for (int i = 0; i < m; i++) {
          double ap = a[i * n + p], aq = a[i * n + q];
          a[i * n + p] = c * ap - sn * aq;
          a[i * n + q] = sn * ap + c * aq;
        }
        for (int i = 0; i < n; i++) {
          double vp = v[i * n + p], vq = v[i * n + q];
          v[i * n + p] = c * vp - sn * vq;
          v[i * n + q] = sn * vp + c * vq;
        }
      }
    if (!rotated) break;
  }
  for (int j = 0; j < n; j++) {
    double nr = 0;
    for (int i = 0; i < m; i++) nr += a[i * n + j] * a[i * n + j];
    s[j] = sqrt(nr);
    if (s[j] > 0)
      for (int i = 0; i < m; i++) a[i * n + j] /= s[j];
  }
}

int ist_cpu_svd_ref(int m, int n, const float *a, float *u, float *s, float *vt) {
  const int tall = m >= n, r = tall ? n : m, rows = tall ? m : n;
  double *w = malloc(sizeof(double) * ((size_t)rows * r + (size_t)r * r + r));
  int *order = malloc(sizeof(int) * r);
  if (!w || !order) {
    free(w);
    free(order);
    return 0;
  }
  double *v = w + (size_t)rows * r, *sv = v + (size_t)r * r;
  /* Work on a when tall, on aᵀ when wide: a = U S Vᵀ, or aᵀ = U' S V'ᵀ so a = V' S U'ᵀ. */
  for (int i = 0; i < rows; i++)
    for (int j = 0; j < r; j++) w[i * r + j] = tall ? a[i * n + j] : a[j * n + i];
  jacobi_tall(rows, r, w, sv, v);
  for (int j = 0; j < r; j++) order[j] = j;
  for (int i = 1; i < r; i++) /* insertion sort, descending */
    for (int j = i; j > 0 && sv[order[j]] > sv[order[j - 1]]; j--) {
      int t = order[j];
      order[j] = order[j - 1];
      order[j - 1] = t;
    }
  for (int jj = 0; jj < r; jj++) {
    int j = order[jj];
    s[jj] = (float)sv[j];
    if (tall) {
      for (int i = 0; i < m; i++) u[i * r + jj] = (float)w[i * r + j];
      for (int i = 0; i < n; i++) vt[jj * n + i] = (float)v[i * r + j];
    } else {
      for (int i = 0; i < m; i++) u[i * r + jj] = (float)v[i * r + j];
      for (int i = 0; i < n; i++) vt[jj * n + i] = (float)w[i * r + j];
    }
  }
  free(w);
  free(order);
  return 1;
}

/* LAPACK is column-major: a row-major m×n matrix is, to it, the n×m matrix aᵀ = V·S·Uᵀ. Its
 * "U" (n×r, leading dimension n) read row-major is our Vᵀ (r×n), and its "Vᵀ" (r×m, leading
 * dimension r) read row-major is our U (m×r). */
int ist_cpu_svd(int m, int n, const float *a, float *u, float *s, float *vt) {
  const int r = m < n ? m : n;
  int lwork = -1, info = 0;
  double query;
  int *iwork = malloc(sizeof(int) * 8 * (size_t)r);
  double *d = malloc(sizeof(double) * ((size_t)m * n + (size_t)r * (n + m + 1)));
  if (!iwork || !d) {
    free(iwork);
    free(d);
    return 0;
  }
  double *ds = d + (size_t)m * n, *dvt = ds + r, *du = dvt + (size_t)r * n;
  for (size_t i = 0; i < (size_t)m * n; i++) d[i] = a[i];
  dgesdd_("S", &n, &m, d, &n, ds, dvt, &n, du, &r, &query, &lwork, iwork, &info, 1);
  lwork = (int)query;
  double *work = info == 0 ? malloc(sizeof(double) * (size_t)lwork) : NULL;
  if (work) dgesdd_("S", &n, &m, d, &n, ds, dvt, &n, du, &r, work, &lwork, iwork, &info, 1);
  const int ok = work && info == 0;
  if (ok) {
    for (int j = 0; j < r; j++) s[j] = (float)ds[j];
    for (size_t i = 0; i < (size_t)r * n; i++) vt[i] = (float)dvt[i];
    for (size_t i = 0; i < (size_t)m * r; i++) u[i] = (float)du[i];
  }
  free(work);
  free(iwork);
  free(d);
  return ok;
}
