// Helpers shared by the tests: seeded random buffers, comparisons, finite differences.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

extern "C" {
#include "host/rng.h"
#include "kernels/cpu/cpu.h"
#include "models/model.h"
}

inline std::vector<float> randn(size_t n, uint64_t seed, float std = 1.0f) {
  ist_rng r;
  ist_rng_seed(&r, seed, 3);
  std::vector<float> v(n);
  for (auto &x : v) x = std * ist_rng_normal(&r);
  return v;
}

// Largest |a−b| / (|b| + floor) over the elements.
inline double max_rel_diff(const float *a, const float *b, size_t n, double floor = 1e-3) {
  double m = 0;
  for (size_t i = 0; i < n; i++) m = std::max(m, std::fabs((double)a[i] - b[i]) / (std::fabs((double)b[i]) + floor));
  return m;
}

// Central finite differences of a scalar loss f over the entries of x (restored afterwards),
// checked against the analytic gradient g: |g − fd| ≤ tol·(|fd| + scale) for every entry, where
// scale is the largest |fd| (so tiny entries are judged against the gradient's size).
inline void expect_gradient(std::vector<float> &x, const std::vector<float> &g, const std::function<double()> &f,
                            double eps, double tol, const char *what) {
  std::vector<double> fd(x.size());
  double scale = 0;
  for (size_t i = 0; i < x.size(); i++) {
    float keep = x[i];
    x[i] = keep + (float)eps;
    double up = f();
    x[i] = keep - (float)eps;
    double dn = f();
    x[i] = keep;
    fd[i] = (up - dn) / (2 * eps);
    scale = std::max(scale, std::fabs(fd[i]));
  }
  for (size_t i = 0; i < x.size(); i++)
    ASSERT_NEAR(g[i], fd[i], tol * (std::fabs(fd[i]) + scale)) << what << " entry " << i;
}

// Σ r_i·y_i: a random linear read-out turns any op into a scalar loss for gradient checks.
inline double dot(const std::vector<float> &r, const float *y) {
  double s = 0;
  for (size_t i = 0; i < r.size(); i++) s += (double)r[i] * y[i];
  return s;
}

// The mean cross-entropy of the model's logits on its labels (dlogits written when not null), read
// back from the backend's loss scalar.
inline float model_cross_entropy(ist_model *m, int n, float *dlogits) {
  m->be->zero(m->scalars, IST_MODEL_SCALARS);
  m->be->cross_entropy(n, m->classes, m->logits, m->labels, dlogits, m->loss_sum, nullptr);
  float loss = 0;
  m->be->download(&loss, m->loss_sum, sizeof loss);
  return loss;
}
