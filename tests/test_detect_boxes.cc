// SSD boxes: IoU, the box coder (torchvision's weights 10, 10, 5, 5), SSDLite320's default boxes,
// matching on hand-made cases, NMS on hand-made boxes and the per-class post-processing.
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
#include "host/rng.h"
#include "train/boxes.h"
}

namespace {

TEST(BoxIou, HandComputedValues) {
  const float a[4] = {0, 0, 2, 2}, b[4] = {1, 1, 3, 3}, c[4] = {2, 0, 4, 2}, d[4] = {0, 0, 2, 1};
  EXPECT_FLOAT_EQ(ist_box_iou(a, b), 1.0f / 7);
  EXPECT_FLOAT_EQ(ist_box_iou(a, c), 0.0f) << "touching edges do not overlap";
  EXPECT_FLOAT_EQ(ist_box_iou(a, d), 0.5f);
  EXPECT_FLOAT_EQ(ist_box_iou(a, a), 1.0f);
}

TEST(BoxCoder, EncodesWithTorchvisionsWeights) {
  const float anchor[4] = {0, 0, 10, 10}, box[4] = {1, 2, 11, 14};
  float d[4];
  ist_box_encode(anchor, box, d);
  EXPECT_NEAR(d[0], 10 * (6.0 - 5.0) / 10, 1e-6);
  EXPECT_NEAR(d[1], 10 * (8.0 - 5.0) / 10, 1e-6);
  EXPECT_NEAR(d[2], 5 * std::log(10.0 / 10), 1e-6);
  EXPECT_NEAR(d[3], 5 * std::log(12.0 / 10), 1e-6);
}

TEST(BoxCoder, DecodeInvertsEncode) {
  ist_rng r;
  ist_rng_seed(&r, 7, 0);
  for (int t = 0; t < 200; t++) {
    float a[4], b[4], d[4], back[4];
    for (float *x : {a, b}) {
      x[0] = 300 * ist_rng_uniform(&r), x[1] = 300 * ist_rng_uniform(&r);
      // Sizes 10 … 210: ratios below the decoder's clamp (1000/16).
      x[2] = x[0] + 10 + 200 * ist_rng_uniform(&r), x[3] = x[1] + 10 + 200 * ist_rng_uniform(&r);
    }
    ist_box_encode(a, b, d);
    ist_box_decode(a, d, back);
    for (int e = 0; e < 4; e++) ASSERT_NEAR(back[e], b[e], 2e-3) << "trial " << t << " coordinate " << e;
  }
}

TEST(BoxCoder, DecodeClampsLogSizesAsTorchvision) {
  const float anchor[4] = {0, 0, 16, 16}, d[4] = {0, 0, 100, -100};
  float box[4];
  ist_box_decode(anchor, d, box);
  EXPECT_NEAR(box[2] - box[0], 1000.0, 0.1) << "width clamped to exp(log(1000/16))·16";
  EXPECT_NEAR(box[3] - box[1], 16 * std::exp(-20.0), 1e-6) << "shrinking is not clamped";
}

TEST(SsdAnchors, Ssdlite320HasTorchvisionsBoxes) {
  ist_ssd_anchor_config c = ist_ssdlite320_anchor_config();
  ASSERT_EQ(ist_ssd_anchor_count(&c), 6 * (400 + 100 + 25 + 9 + 4 + 1));
  std::vector<float> a(4 * ist_ssd_anchor_count(&c));
  ist_ssd_anchors(&c, a.data());
  auto expect_box = [&](int i, double cx, double cy, double w, double h) {
    EXPECT_NEAR(a[4 * i + 0], cx - w / 2, 1e-3) << "anchor " << i;
    EXPECT_NEAR(a[4 * i + 1], cy - h / 2, 1e-3) << "anchor " << i;
    EXPECT_NEAR(a[4 * i + 2], cx + w / 2, 1e-3) << "anchor " << i;
    EXPECT_NEAR(a[4 * i + 3], cy + h / 2, 1e-3) << "anchor " << i;
  };
  // Map 0 (20 × 20, scale 0.2, next 0.35), cell (0, 0), centre (8, 8).
  expect_box(0, 8, 8, 64, 64);
  expect_box(1, 8, 8, 320 * std::sqrt(0.2 * 0.35), 320 * std::sqrt(0.2 * 0.35));
  expect_box(2, 8, 8, 64 * std::sqrt(2.0), 64 / std::sqrt(2.0));
  expect_box(3, 8, 8, 64 / std::sqrt(2.0), 64 * std::sqrt(2.0));
  expect_box(5, 8, 8, 64 / std::sqrt(3.0), 64 * std::sqrt(3.0));
  // Columns vary fastest: anchor 6 is cell (row 0, column 1), anchor 6·20 is (row 1, column 0).
  expect_box(6, 24, 8, 64, 64);
  expect_box(6 * 20, 8, 24, 64, 64);
  // Map 1 starts after 2400 anchors: 10 × 10, scale 0.35, centre (16, 16).
  expect_box(2400, 16, 16, 112, 112);
  // Map 5 (1 × 1, scale 0.95, next 1): sizes clipped to the image.
  int last = ist_ssd_anchor_count(&c) - 6;
  expect_box(last, 160, 160, 304, 304);
  expect_box(last + 1, 160, 160, 320 * std::sqrt(0.95), 320 * std::sqrt(0.95));
  expect_box(last + 2, 160, 160, 320, 304 / std::sqrt(2.0));
  expect_box(last + 5, 160, 160, 304 / std::sqrt(3.0), 320);
}

TEST(SsdMatch, ThresholdMatchesAndForcedBestAnchors) {
  const float objects[] = {0, 0, 10, 10, 20, 0, 30, 10, 60, 0, 64, 4};
  const float anchors[] = {
      0,  0, 10, 10,  // 0: IoU 1 with object 0
      0,  0, 10, 12,  // 1: IoU 0.83 with object 0
      20, 0, 26, 10,  // 2: IoU 0.6 with object 1
      40, 0, 50, 10,  // 3: overlaps nothing
      0,  0, 20, 10,  // 4: IoU exactly 0.5 with object 0: matched (≥)
      25, 0, 45, 10,  // 5: IoU 0.2 with object 1
      60, 0, 70, 10,  // 6: IoU 0.16 with object 2, but its best anchor: forced
  };
  int32_t m[7];
  ist_ssd_match(7, anchors, 3, objects, IST_SSD_IOU_THRESHOLD, m);
  const int32_t want[7] = {0, 0, 1, -1, 0, -1, 2};
  for (int a = 0; a < 7; a++) EXPECT_EQ(m[a], want[a]) << "anchor " << a;
}

TEST(SsdMatch, ALaterObjectWinsASharedBestAnchor) {
  const float objects[] = {0, 0, 5, 5, 0, 0, 6, 6};
  const float anchors[] = {0, 0, 10, 10, 100, 100, 110, 110};
  int32_t m[2];
  ist_ssd_match(2, anchors, 2, objects, IST_SSD_IOU_THRESHOLD, m);
  EXPECT_EQ(m[0], 1);
  EXPECT_EQ(m[1], -1);
}

TEST(SsdMatch, ForcingOverridesAThresholdMatch) {
  // Anchor 0 has IoU 0.9 with object 0 and 0.36 with object 1, whose best anchor it is.
  const float objects[] = {0, 0, 10, 10, 0, 0, 10, 3.6f};
  const float anchors[] = {0, 0, 10, 9, 50, 50, 60, 60};
  int32_t m[2];
  ist_ssd_match(2, anchors, 2, objects, IST_SSD_IOU_THRESHOLD, m);
  EXPECT_EQ(m[0], 1);
  EXPECT_EQ(m[1], -1) << "object 0 loses its only overlapping anchor, as in torchvision";
}

TEST(SsdTargets, LabelsAndEncodedOffsetsOfMatchedAnchors) {
  const float objects[] = {0, 0, 10, 10};
  const int32_t labels_in[] = {7};
  const float anchors[] = {0, 0, 10, 12, 40, 0, 50, 10};
  int32_t m[2], labels[2];
  float off[8];
  EXPECT_EQ(ist_ssd_targets(2, anchors, 1, objects, labels_in, IST_SSD_IOU_THRESHOLD, m, labels, off), 1);
  EXPECT_EQ(labels[0], 7);
  EXPECT_EQ(labels[1], 0);
  float want[4];
  ist_box_encode(anchors, objects, want);
  for (int e = 0; e < 4; e++) {
    EXPECT_FLOAT_EQ(off[e], want[e]);
    EXPECT_EQ(off[4 + e], 0.0f);
  }
}

TEST(BoxNms, HandMadeBoxes) {
  const float boxes[] = {0, 0, 10, 10, 1, 0, 11, 10, 20, 20, 30, 30, 0, 5, 10, 15};
  const float scores[] = {0.9f, 0.8f, 0.7f, 0.95f};
  int32_t keep[4];
  // IoU(3, 0) = 1/3, IoU(1, 0) = 9/11, IoU(1, 3) = 45/155.
  ASSERT_EQ(ist_box_nms(4, boxes, scores, 0.5f, keep), 3);
  EXPECT_EQ(keep[0], 3);
  EXPECT_EQ(keep[1], 0);
  EXPECT_EQ(keep[2], 2);
  ASSERT_EQ(ist_box_nms(4, boxes, scores, 0.3f, keep), 3);
  EXPECT_EQ(keep[0], 3);
  EXPECT_EQ(keep[1], 1) << "box 0 is dropped by box 3, so box 1 survives";
  EXPECT_EQ(keep[2], 2);
}

TEST(BoxNms, IouEqualToTheThresholdIsKept) {
  const float boxes[] = {0, 0, 10, 10, 0, 0, 10, 5};
  const float scores[] = {0.5f, 0.5f};
  int32_t keep[2];
  ASSERT_EQ(ist_box_nms(2, boxes, scores, 0.5f, keep), 2);
  EXPECT_EQ(keep[0], 0) << "ties: lower index first";
  ASSERT_EQ(ist_box_nms(2, boxes, scores, 0.49f, keep), 1);
}

TEST(SsdDetect, NmsIsPerClassAndBoxesAreClipped) {
  // Three anchors, zero offsets (boxes = anchors); classes: background, A, B.
  const float anchors[] = {-5, 0, 10, 10, 1, 0, 11, 10, 50, 50, 60, 60};
  const float offsets[12] = {0};
  const float probs[] = {0.1f, 0.6f, 0.3f,     // anchor 0: A 0.6, B 0.3
                         0.1f, 0.5f, 0.4f,     // anchor 1: overlaps anchor 0 (IoU 9/11 after clipping)
                         0.9995f, 0.0f, 0.0005f};  // anchor 2: below the score threshold
  ist_ssd_postprocess p = ist_ssdlite_postprocess_defaults();
  ist_detection det[16];
  int n;
  ASSERT_EQ(ist_ssd_detect(3, 3, anchors, offsets, probs, 40, 40, &p, det, &n), IST_OK);
  ASSERT_EQ(n, 2);
  EXPECT_EQ(det[0].label, 1);
  EXPECT_FLOAT_EQ(det[0].score, 0.6f);
  EXPECT_FLOAT_EQ(det[0].box[0], 0.0f) << "clipped to the image";
  EXPECT_EQ(det[1].label, 2) << "class B's best box survives class A's NMS";
  EXPECT_FLOAT_EQ(det[1].score, 0.4f);
  EXPECT_FLOAT_EQ(det[1].box[0], 1.0f);
  p.max_detections = 1;
  ASSERT_EQ(ist_ssd_detect(3, 3, anchors, offsets, probs, 40, 40, &p, det, &n), IST_OK);
  EXPECT_EQ(n, 1);
  EXPECT_EQ(det[0].label, 1);
}

// SSDLite320's anchors, matches and offsets of random objects, written for tests/ssd_boxes_check.py,
// which recomputes them with torchvision's DefaultBoxGenerator, SSDMatcher and BoxCoder.
TEST(SsdBoxes, AgreeWithTorchvision) {
  if (std::system("/usr/bin/python3 -c 'import torch, torchvision' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "/usr/bin/python3 with torch and torchvision is not installed";
  ist_ssd_anchor_config c = ist_ssdlite320_anchor_config();
  int na = ist_ssd_anchor_count(&c);
  std::vector<float> anchors(4 * na), objects, offsets(4 * na);
  ist_ssd_anchors(&c, anchors.data());
  ist_rng r;
  ist_rng_seed(&r, 99, 0);
  const int n_objects = 12;
  std::vector<int32_t> labels_in(n_objects, 1), matches(na), labels(na);
  for (int o = 0; o < n_objects; o++) {
    // Sizes from 8 to 300 pixels, log-uniform, so small objects rely on the forced matches.
    float w = 8 * std::pow(37.5f, ist_rng_uniform(&r)), h = 8 * std::pow(37.5f, ist_rng_uniform(&r));
    float x0 = (320 - w) * ist_rng_uniform(&r), y0 = (320 - h) * ist_rng_uniform(&r);
    objects.insert(objects.end(), {x0, y0, x0 + w, y0 + h});
  }
  ist_ssd_targets(na, anchors.data(), n_objects, objects.data(), labels_in.data(), IST_SSD_IOU_THRESHOLD,
                  matches.data(), labels.data(), offsets.data());
  auto path = std::filesystem::temp_directory_path() / ("ist_ssd_boxes_check_" + std::to_string(::getpid()) + ".txt");
  {
    std::ofstream f(path);
    char line[256];
    for (int a = 0; a < na; a++) {
      std::snprintf(line, sizeof line, "anchor %.9g %.9g %.9g %.9g\nmatch %d %d\n", anchors[4 * a], anchors[4 * a + 1],
                    anchors[4 * a + 2], anchors[4 * a + 3], a, matches[a]);
      f << line;
      if (matches[a] >= 0) {
        std::snprintf(line, sizeof line, "offset %d %.9g %.9g %.9g %.9g\n", a, offsets[4 * a], offsets[4 * a + 1],
                      offsets[4 * a + 2], offsets[4 * a + 3]);
        f << line;
      }
    }
    for (int o = 0; o < n_objects; o++) {
      std::snprintf(line, sizeof line, "object %.9g %.9g %.9g %.9g\n", objects[4 * o], objects[4 * o + 1],
                    objects[4 * o + 2], objects[4 * o + 3]);
      f << line;
    }
  }
  const char *src = std::getenv("INSITU_SOURCE_DIR");
  std::string script = src ? std::string(src) + "/tests/ssd_boxes_check.py"
                           : (std::filesystem::path(__FILE__).parent_path() / "ssd_boxes_check.py").string();
  FILE *p = popen(("/usr/bin/python3 " + script + " " + path.string() + " 2>&1").c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  int rc = pclose(p);
  std::printf("%s", out.c_str());
  EXPECT_EQ(rc, 0) << out;
  std::filesystem::remove(path);
}

}  // namespace
