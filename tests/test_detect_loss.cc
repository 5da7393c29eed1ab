// The multibox loss and the detection distillation loss against a naive reference (mining by
// ranks, not by sorting), gradients against finite differences of that reference with the mining
// held fixed (as torchvision holds it), and hand-made mining cases.
#include <cmath>
#include <vector>

#include "test_util.h"

extern "C" {
#include "kernels/cpu/multibox_loss.h"
}

namespace {

struct Batch {
  int n = 0, anchors = 0, classes = 0;
  std::vector<float> logits, box, offsets, t_logits, t_box;
  std::vector<int32_t> labels;
};

// Random logits and regressions; anchor a of image i is positive with probability ~1/6.
Batch random_batch(int n, int anchors, int classes, uint64_t seed) {
  Batch b;
  b.n = n, b.anchors = anchors, b.classes = classes;
  b.logits = randn((size_t)n * anchors * classes, seed, 2.0f);
  b.t_logits = randn((size_t)n * anchors * classes, seed + 1, 2.0f);
  b.box = randn((size_t)n * anchors * 4, seed + 2, 1.5f);
  b.t_box = randn((size_t)n * anchors * 4, seed + 3, 1.5f);
  b.offsets = randn((size_t)n * anchors * 4, seed + 4, 1.0f);
  ist_rng r;
  ist_rng_seed(&r, seed, 9);
  b.labels.resize((size_t)n * anchors);
  for (auto &l : b.labels) l = ist_rng_below(&r, 6) == 0 ? 1 + (int)ist_rng_below(&r, classes - 1) : 0;
  return b;
}

double ce(const float *z, int c, int label) {
  double mx = z[0], s = 0;
  for (int j = 1; j < c; j++) mx = std::max(mx, (double)z[j]);
  for (int j = 0; j < c; j++) s += std::exp(z[j] - mx);
  return std::log(s) + mx - z[label];
}

// Positives and the mined negatives by the naive rule: a background anchor is mined when fewer
// than k = min(3·#pos, #neg) background anchors of its image rank before it (larger CE, or equal
// CE and a lower index).
std::vector<int32_t> naive_selection(const Batch &b) {
  std::vector<int32_t> sel(b.labels.size());
  for (int i = 0; i < b.n; i++) {
    int pos = 0, neg = 0;
    std::vector<double> loss(b.anchors);
    for (int a = 0; a < b.anchors; a++) {
      size_t ia = (size_t)i * b.anchors + a;
      loss[a] = ce(&b.logits[ia * b.classes], b.classes, b.labels[ia]);
      (b.labels[ia] > 0 ? pos : neg)++;
    }
    int k = std::min(3 * pos, neg);
    for (int a = 0; a < b.anchors; a++) {
      size_t ia = (size_t)i * b.anchors + a;
      if (b.labels[ia] > 0) {
        sel[ia] = 1;
        continue;
      }
      int rank = 0;
      for (int o = 0; o < b.anchors; o++)
        if (b.labels[(size_t)i * b.anchors + o] == 0 && o != a && (loss[o] > loss[a] || (loss[o] == loss[a] && o < a)))
          rank++;
      sel[ia] = rank < k;
    }
  }
  return sel;
}

double positives(const Batch &b) {
  double p = 0;
  for (auto l : b.labels) p += l > 0;
  return std::max(1.0, p);
}

// The multibox loss with a given selection: [box, class].
std::vector<double> naive_multibox(const Batch &b, const std::vector<int32_t> &sel) {
  double box = 0, cls = 0;
  for (size_t a = 0; a < b.labels.size(); a++) {
    if (sel[a]) cls += ce(&b.logits[a * b.classes], b.classes, b.labels[a]);
    if (b.labels[a] > 0)
      for (int e = 0; e < 4; e++) {
        double d = std::fabs((double)b.box[4 * a + e] - b.offsets[4 * a + e]);
        box += d < 1 ? 0.5 * d * d : d - 0.5;
      }
  }
  return {box / positives(b), cls / positives(b)};
}

// The KD terms with a given selection: [KL class term, box ℓ2 term].
std::vector<double> naive_kd(const Batch &b, const std::vector<int32_t> &sel, double t, double box_weight) {
  double kl = 0, l2 = 0;
  for (size_t a = 0; a < b.labels.size(); a++) {
    if (sel[a]) {
      std::vector<double> q(b.classes), p(b.classes);
      double zq = 0, zp = 0;
      for (int j = 0; j < b.classes; j++) {
        q[j] = std::exp(b.t_logits[a * b.classes + j] / t);
        p[j] = std::exp(b.logits[a * b.classes + j] / t);
        zq += q[j], zp += p[j];
      }
      for (int j = 0; j < b.classes; j++) kl += q[j] / zq * std::log((q[j] / zq) / (p[j] / zp));
    }
    if (b.labels[a] > 0)
      for (int e = 0; e < 4; e++) l2 += 0.5 * std::pow((double)b.box[4 * a + e] - b.t_box[4 * a + e], 2);
  }
  return {t * t * kl / positives(b), box_weight * l2 / positives(b)};
}

struct Out {
  float loss;
  float parts[4];
  std::vector<int32_t> sel;
  std::vector<float> dlogits, dbox;
};

Out run_multibox(const Batch &b) {
  Out o;
  std::vector<float> ce_s(b.labels.size());
  std::vector<int32_t> order(b.anchors);
  ist_multibox_scratch s{ce_s.data(), order.data()};
  o.sel.resize(b.labels.size());
  o.dlogits.resize(b.logits.size());
  o.dbox.resize(b.box.size());
  o.loss = ist_cpu_multibox_loss(b.n, b.anchors, b.classes, b.logits.data(), b.box.data(), b.labels.data(),
                                 b.offsets.data(), IST_SSD_NEG_POS_RATIO, &s, o.sel.data(), o.parts, o.dlogits.data(),
                                 o.dbox.data());
  return o;
}

Out run_kd(const Batch &b, float beta, float t, float box_weight) {
  Out o;
  std::vector<float> ce_s(b.labels.size());
  std::vector<int32_t> order(b.anchors);
  ist_multibox_scratch s{ce_s.data(), order.data()};
  o.sel.resize(b.labels.size());
  o.dlogits.resize(b.logits.size());
  o.dbox.resize(b.box.size());
  o.loss = ist_cpu_detect_kd_loss(b.n, b.anchors, b.classes, b.logits.data(), b.box.data(), b.t_logits.data(),
                                  b.t_box.data(), b.labels.data(), b.offsets.data(), IST_SSD_NEG_POS_RATIO, beta, t,
                                  box_weight, &s, o.sel.data(), o.parts, o.dlogits.data(), o.dbox.data());
  return o;
}

TEST(MultiboxLoss, MatchesTheNaiveReference) {
  for (uint64_t seed : {1, 2, 3}) {
    Batch b = random_batch(3, 40, 5, seed);
    Out o = run_multibox(b);
    auto sel = naive_selection(b);
    ASSERT_EQ(o.sel, sel) << "seed " << seed;
    auto ref = naive_multibox(b, sel);
    EXPECT_NEAR(o.parts[0], ref[0], 1e-4 * (1 + ref[0]));
    EXPECT_NEAR(o.parts[1], ref[1], 1e-4 * (1 + ref[1]));
    EXPECT_NEAR(o.loss, ref[0] + ref[1], 1e-4 * (1 + ref[0] + ref[1]));
  }
}

TEST(MultiboxLoss, MinesThreeNegativesPerPositiveByLoss) {
  // Image 0: one positive, five negatives of decreasing CE except anchor 5 (the largest):
  // mined = {5, 1, 2}. Image 1: no positive, so nothing. Image 2: two positives, four
  // negatives: all four mined (min(6, 4)).
  Batch b;
  b.n = 3, b.anchors = 6, b.classes = 2;
  b.labels = {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0};
  // CE of a background anchor with logits (0, z) grows with z.
  const float z0[6] = {0, 3, 2, 1, 0.5f, 4};
  b.logits.assign(2 * 18, 0.0f);
  for (int a = 0; a < 6; a++) b.logits[2 * a + 1] = z0[a];
  for (int a = 6; a < 12; a++) b.logits[2 * a + 1] = 5;
  b.box.assign(4 * 18, 0.0f);
  b.offsets.assign(4 * 18, 0.0f);
  Out o = run_multibox(b);
  const std::vector<int32_t> want = {1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1};
  EXPECT_EQ(o.sel, want);
  // Normalized by the 3 positives of the batch.
  double cls = 0;
  for (int a = 0; a < 18; a++)
    if (want[a]) cls += ce(&b.logits[2 * a], 2, b.labels[a]);
  EXPECT_NEAR(o.parts[1], cls / 3, 1e-5);
  EXPECT_EQ(o.parts[0], 0.0f);
}

TEST(MultiboxLoss, WithoutPositivesTheLossIsZero) {
  Batch b = random_batch(2, 10, 4, 5);
  std::fill(b.labels.begin(), b.labels.end(), 0);
  Out o = run_multibox(b);
  EXPECT_EQ(o.loss, 0.0f);
  for (float g : o.dlogits) EXPECT_EQ(g, 0.0f);
}

TEST(MultiboxLoss, GradientsMatchFiniteDifferences) {
  Batch b = random_batch(2, 24, 4, 11);
  Out o = run_multibox(b);
  auto sel = o.sel;  // mining held fixed
  auto f = [&] {
    auto r = naive_multibox(b, sel);
    return r[0] + r[1];
  };
  expect_gradient(b.logits, o.dlogits, f, 1e-3, 2e-3, "d logits");
  expect_gradient(b.box, o.dbox, f, 1e-3, 2e-3, "d box");
}

TEST(DetectKdLoss, MatchesTheNaiveReference) {
  const float beta = 0.7f, t = 4.0f, w = IST_DETECT_KD_BOX_WEIGHT;
  Batch b = random_batch(3, 30, 6, 21);
  Out o = run_kd(b, beta, t, w);
  auto sel = naive_selection(b);
  ASSERT_EQ(o.sel, sel);
  auto mb = naive_multibox(b, sel);
  auto kd = naive_kd(b, sel, t, w);
  EXPECT_NEAR(o.parts[2], kd[0], 1e-4 * (1 + kd[0]));
  EXPECT_NEAR(o.parts[3], kd[1], 1e-4 * (1 + kd[1]));
  double want = (1 - beta) * (mb[0] + mb[1]) + beta * (kd[0] + kd[1]);
  EXPECT_NEAR(o.loss, want, 1e-4 * (1 + want));
}

TEST(DetectKdLoss, GradientsMatchFiniteDifferences) {
  const float beta = 0.6f, t = 2.0f, w = 0.5f;
  Batch b = random_batch(2, 20, 5, 31);
  Out o = run_kd(b, beta, t, w);
  auto sel = o.sel;
  auto f = [&] {
    auto mb = naive_multibox(b, sel);
    auto kd = naive_kd(b, sel, t, w);
    return (1 - beta) * (mb[0] + mb[1]) + beta * (kd[0] + kd[1]);
  };
  expect_gradient(b.logits, o.dlogits, f, 1e-3, 2e-3, "d logits");
  expect_gradient(b.box, o.dbox, f, 1e-3, 2e-3, "d box");
}

TEST(DetectKdLoss, BetaZeroIsTheMultiboxLossAndAPerfectStudentAddsNothing) {
  Batch b = random_batch(2, 20, 5, 41);
  Out mb = run_multibox(b);
  Out kd0 = run_kd(b, 0.0f, 3.0f, 1.0f);
  EXPECT_FLOAT_EQ(kd0.loss, mb.loss);
  b.t_logits = b.logits;
  b.t_box = b.box;
  Out same = run_kd(b, 0.5f, 3.0f, 1.0f);
  EXPECT_NEAR(same.parts[2], 0.0, 1e-6);
  EXPECT_NEAR(same.parts[3], 0.0, 1e-12);
  EXPECT_NEAR(same.loss, 0.5 * mb.loss, 1e-5);
}

}  // namespace
