// The VOC mAP against hand-computed values (duplicates, difficult objects, classes without
// objects, the devkit's inclusive overlap) and against tests/voc_map_check.py, an independent
// implementation with torchvision's box_iou and numpy, on random detections.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

extern "C" {
#include "host/detect_augment.h"
#include "host/rng.h"
#include "train/voc_map.h"
}

namespace {

struct Truth {
  std::vector<std::vector<ist_voc_object>> objects;
  std::vector<ist_voc_annotation> annotations() {
    std::vector<ist_voc_annotation> a(objects.size());
    for (size_t i = 0; i < objects.size(); i++) a[i] = {500, 500, 3, (int)objects[i].size(), objects[i].data()};
    return a;
  }
};

ist_voc_object obj(int label, float x0, float y0, float x1, float y1, int difficult = 0) {
  return {{x0, y0, x1, y1}, label, difficult};
}
ist_voc_detection det(int64_t image, int label, float score, float x0, float y0, float x1, float y1) {
  return {image, label, score, {x0, y0, x1, y1}};
}

const int cat = 7, dog = 11, person = 14;

TEST(VocMap, HandComputedCurveWithDuplicateDifficultAndMiss) {
  Truth t;
  t.objects = {{obj(cat, 0, 0, 9, 9)}, {obj(cat, 0, 0, 9, 9), obj(cat, 20, 20, 29, 29, 1)}, {obj(person, 1, 1, 5, 5)}};
  auto gt = t.annotations();
  std::vector<ist_voc_detection> d = {
      det(1, cat, 0.5f, 0, 0, 9, 9),      // 5th by score: hits image 1's cat → recall 1, precision 2/4
      det(0, cat, 0.9f, 0, 0, 9, 9),      // 1st: true positive → recall ½, precision 1
      det(0, cat, 0.8f, 0, 0, 9, 9),      // 2nd: the same object again → false positive
      det(1, cat, 0.7f, 20, 20, 29, 29),  // 3rd: the difficult cat → neither
      det(1, cat, 0.6f, 50, 50, 59, 59),  // 4th: nothing there → false positive
      det(2, dog, 0.9f, 1, 1, 5, 5),      // dogs have no objects: not evaluated
  };
  ist_voc_map_options o = ist_voc_map_defaults();
  ist_voc_map_result r;
  ASSERT_EQ(ist_voc_map((int64_t)gt.size(), gt.data(), (int64_t)d.size(), d.data(), &o, &r), IST_OK);
  // Recall ½ up to the 4th detection (precisions 1, ½, ½, ⅓), then 1 at precision ½.
  EXPECT_EQ(r.objects[cat], 2) << "the difficult cat is not counted";
  EXPECT_NEAR(r.ap11[cat], (6 * 1.0 + 5 * 0.5) / 11, 1e-12) << "t = 0 … 0.5 see precision 1, t = 0.6 … 1 see ½";
  EXPECT_NEAR(r.ap_area[cat], 0.5 * 1 + 0.5 * 0.5, 1e-12);
  EXPECT_TRUE(std::isnan(r.ap11[dog]));
  EXPECT_EQ(r.detections[dog], 1);
  EXPECT_EQ(r.ap11[person], 0.0) << "an object never detected";
  EXPECT_EQ(r.classes, 2);
  EXPECT_NEAR(r.map11, r.ap11[cat] / 2, 1e-12);
  EXPECT_NEAR(r.map_area, r.ap_area[cat] / 2, 1e-12);
}

TEST(VocMap, OverlapIsTheDevkitsInclusiveOneAndTheThresholdIsReached) {
  Truth t;
  t.objects = {{obj(cat, 0, 0, 9, 9)}};
  auto gt = t.annotations();
  // Inclusive: 10 × 5 of 10 × 10 = 0.5 ≥ 0.5 → hit; continuous: 9·4 / 81 = 0.44 → miss.
  std::vector<ist_voc_detection> d = {det(0, cat, 0.9f, 0, 0, 9, 4)};
  ist_voc_map_options o = ist_voc_map_defaults();
  ist_voc_map_result r;
  ASSERT_EQ(ist_voc_map(1, gt.data(), 1, d.data(), &o, &r), IST_OK);
  EXPECT_NEAR(r.ap_area[cat], 1.0, 1e-12);
  o.inclusive = 0;
  ASSERT_EQ(ist_voc_map(1, gt.data(), 1, d.data(), &o, &r), IST_OK);
  EXPECT_NEAR(r.ap_area[cat], 0.0, 1e-12);
}

TEST(VocMap, ADetectionGoesToItsBestObjectEvenIfTaken) {
  // Two cats; the first detection takes cat 0, the second overlaps cat 0 best (1) and cat 1 by
  // 2/3 ≥ 0.5: as the devkit, it is a false positive, not a hit on cat 1.
  Truth t;
  t.objects = {{obj(cat, 0, 0, 9, 9), obj(cat, 2, 0, 11, 9)}};
  auto gt = t.annotations();
  std::vector<ist_voc_detection> d = {det(0, cat, 0.9f, 0, 0, 9, 9), det(0, cat, 0.8f, 0, 0, 9, 9)};
  ist_voc_map_options o = ist_voc_map_defaults();
  ist_voc_map_result r;
  ASSERT_EQ(ist_voc_map(1, gt.data(), 2, d.data(), &o, &r), IST_OK);
  EXPECT_NEAR(r.ap_area[cat], 0.5, 1e-12) << "recall ½ at precision 1, then ½ at ½ adds nothing";
}

TEST(VocMap, TiesKeepTheDetectionOrderAndBadIndicesFail) {
  Truth t;
  t.objects = {{obj(cat, 0, 0, 9, 9)}};
  auto gt = t.annotations();
  std::vector<ist_voc_detection> miss_first = {det(0, cat, 0.5f, 30, 30, 39, 39), det(0, cat, 0.5f, 0, 0, 9, 9)};
  ist_voc_map_options o = ist_voc_map_defaults();
  ist_voc_map_result r;
  ASSERT_EQ(ist_voc_map(1, gt.data(), 2, miss_first.data(), &o, &r), IST_OK);
  EXPECT_NEAR(r.ap_area[cat], 0.5, 1e-12);
  std::swap(miss_first[0], miss_first[1]);
  ASSERT_EQ(ist_voc_map(1, gt.data(), 2, miss_first.data(), &o, &r), IST_OK);
  EXPECT_NEAR(r.ap_area[cat], 1.0, 1e-12);
  std::vector<ist_voc_detection> bad = {det(3, cat, 0.5f, 0, 0, 1, 1)};
  EXPECT_EQ(ist_voc_map(1, gt.data(), 1, bad.data(), &o, &r), IST_ERR_ARG);
  EXPECT_NE(std::string(ist_last_error()).find("names image 3 of 1"), std::string::npos) << ist_last_error();
}

TEST(VocMap, SsdDetectionsMapBackToVocCoordinates) {
  // A VOC object → continuous pixels → the 320 × 320 input, read back as a detection.
  const ist_voc_object o = obj(cat, 48, 240, 195, 371);
  float b[4];
  int32_t label;
  ist_det_boxes_from_voc(1, &o, b, &label);
  ist_detection d = {{b[0] * 320 / 500, b[1] * 320 / 375, b[2] * 320 / 500, b[3] * 320 / 375}, 0.7f, label};
  ist_voc_detection v;
  ist_voc_detections_from_ssd(1, &d, 4, 320, 500, 375, &v);
  EXPECT_EQ(v.image, 4);
  EXPECT_EQ(v.label, cat);
  EXPECT_EQ(v.score, 0.7f);
  for (int e = 0; e < 4; e++) EXPECT_NEAR(v.box[e], o.box[e], 1e-3) << "coordinate " << e;
}

TEST(VocMap, ApFunctionsOnAHandCurve) {
  const double rec[] = {0.2, 0.4, 0.4, 0.8}, prec[] = {1.0, 1.0, 2.0 / 3, 0.75};
  // Area: 0.2·1 + 0.2·1 + 0.4·0.75 = 0.7. 11-point: t = 0 … 0.4 (5 points) → 1; t = 0.5 … 0.8
  // (4 points; 8·0.1 is exactly the double 0.8) → 0.75; t = 0.9, 1 → 0.
  EXPECT_NEAR(ist_voc_ap_area(4, rec, prec), 0.7, 1e-12);
  EXPECT_NEAR(ist_voc_ap11(4, rec, prec), (5 * 1.0 + 4 * 0.75) / 11, 1e-12);
}

// Random images, objects (a fifth difficult) and detections (jittered objects with true labels,
// a few wrong labels, random boxes), written with insitu's APs for the independent script.
TEST(VocMap, AgreesWithTheIndependentScript) {
  if (std::system("/usr/bin/python3 -c 'import numpy, torch, torchvision' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "/usr/bin/python3 with numpy, torch and torchvision is not installed";
  for (int inclusive : {1, 0}) {
    ist_rng r;
    ist_rng_seed(&r, 2024 + inclusive, 0);
    Truth t;
    std::vector<ist_voc_detection> d;
    const int images = 60;
    t.objects.resize(images);
    for (int i = 0; i < images; i++) {
      int n = 1 + (int)ist_rng_below(&r, 4);
      for (int k = 0; k < n; k++) {
        float x0 = 300 * ist_rng_uniform(&r), y0 = 300 * ist_rng_uniform(&r);
        float w = 20 + 150 * ist_rng_uniform(&r), h = 20 + 150 * ist_rng_uniform(&r);
        int label = (int)ist_rng_below(&r, 6);  // a few classes, so each has many objects
        t.objects[i].push_back(obj(label, x0, y0, x0 + w, y0 + h, ist_rng_below(&r, 5) == 0));
        for (int j = 0, m = (int)ist_rng_below(&r, 3); j < m; j++) {
          float s = 0.15f * w;
          auto jit = [&] { return s * (2 * ist_rng_uniform(&r) - 1); };
          int l = ist_rng_below(&r, 8) == 0 ? (int)ist_rng_below(&r, 6) : label;
          d.push_back(det(i, l, ist_rng_uniform(&r), x0 + jit(), y0 + jit(), x0 + w + jit(), y0 + h + jit()));
        }
      }
      for (int j = 0, m = (int)ist_rng_below(&r, 3); j < m; j++) {
        float x0 = 400 * ist_rng_uniform(&r), y0 = 400 * ist_rng_uniform(&r);
        d.push_back(det(i, (int)ist_rng_below(&r, 7), 0.5f * ist_rng_uniform(&r), x0, y0, x0 + 60, y0 + 50));
      }
    }
    auto gt = t.annotations();
    ist_voc_map_options o = ist_voc_map_defaults();
    o.inclusive = inclusive;
    ist_voc_map_result res;
    ASSERT_EQ(ist_voc_map(images, gt.data(), (int64_t)d.size(), d.data(), &o, &res), IST_OK);
    EXPECT_GT(res.map_area, 0.2);
    EXPECT_LT(res.map_area, 0.9);
    auto path = std::filesystem::temp_directory_path() /
                ("ist_voc_map_check_" + std::to_string(inclusive) + "_" + std::to_string(::getpid()) + ".txt");
    {
      std::ofstream f(path);
      char line[256];
      std::snprintf(line, sizeof line, "options %.9g %d\n", o.iou_threshold, inclusive);
      f << line;
      for (int i = 0; i < images; i++)
        for (auto &ob : t.objects[i]) {
          std::snprintf(line, sizeof line, "gt %d %d %d %.9g %.9g %.9g %.9g\n", i, ob.label, ob.difficult, ob.box[0],
                        ob.box[1], ob.box[2], ob.box[3]);
          f << line;
        }
      for (auto &x : d) {
        std::snprintf(line, sizeof line, "det %lld %d %.9g %.9g %.9g %.9g %.9g\n", (long long)x.image, x.label,
                      x.score, x.box[0], x.box[1], x.box[2], x.box[3]);
        f << line;
      }
      for (int c = 0; c < IST_VOC_CLASSES; c++) {
        std::snprintf(line, sizeof line, "ap %d %.17g %.17g\n", c, res.ap11[c], res.ap_area[c]);
        f << line;
      }
      std::snprintf(line, sizeof line, "map %.17g %.17g\n", res.map11, res.map_area);
      f << line;
    }
    const char *src = std::getenv("INSITU_SOURCE_DIR");
    std::string script = src ? std::string(src) + "/tests/voc_map_check.py"
                             : (std::filesystem::path(__FILE__).parent_path() / "voc_map_check.py").string();
    std::string cmd = "/usr/bin/python3 " + script + " " + path.string();
    FILE *p = popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string out;
    char buf[512];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    int rc = pclose(p);
    std::printf("inclusive %d: %s", inclusive, out.c_str());
    EXPECT_EQ(rc, 0) << out;
    if (!std::getenv("IST_KEEP_VOC_MAP_CHECK")) std::filesystem::remove(path);
  }
}

}  // namespace
