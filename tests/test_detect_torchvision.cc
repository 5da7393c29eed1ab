// The multibox loss and the SSD post-processing against torchvision's own SSD.compute_loss and
// SSD.postprocess_detections (tests/ssd_loss_check.py), on SSDLite320's anchors with random objects
// and random head outputs. Skipped without /usr/bin/python3 + torchvision.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "test_util.h"

extern "C" {
#include "kernels/cpu/multibox_loss.h"
#include "train/boxes.h"
}

namespace {

TEST(SsdHead, LossAndDetectionsAgreeWithTorchvision) {
  if (std::system("/usr/bin/python3 -c 'import torch, torchvision' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "/usr/bin/python3 with torch and torchvision is not installed";
  const int n = 2, classes = 21, per_image = 8;
  ist_ssd_anchor_config cfg = ist_ssdlite320_anchor_config();
  const int na = ist_ssd_anchor_count(&cfg);
  std::vector<float> anchors(4 * na), offsets((size_t)n * na * 4), objects((size_t)n * per_image * 4);
  std::vector<int32_t> object_labels(n * per_image), labels((size_t)n * na), matches(na);
  ist_ssd_anchors(&cfg, anchors.data());
  ist_rng r;
  ist_rng_seed(&r, 5, 0);
  for (int i = 0; i < n * per_image; i++) {
    float w = 16 * std::pow(18.0f, ist_rng_uniform(&r)), h = 16 * std::pow(18.0f, ist_rng_uniform(&r));
    float x0 = (320 - w) * ist_rng_uniform(&r), y0 = (320 - h) * ist_rng_uniform(&r);
    float *b = &objects[4 * i];
    b[0] = x0, b[1] = y0, b[2] = x0 + w, b[3] = y0 + h;
    object_labels[i] = 1 + (int)ist_rng_below(&r, classes - 1);
  }
  for (int i = 0; i < n; i++)
    ist_ssd_targets(na, anchors.data(), per_image, &objects[4 * i * per_image], &object_labels[i * per_image],
                    IST_SSD_IOU_THRESHOLD, matches.data(), &labels[(size_t)i * na], &offsets[(size_t)i * na * 4]);
  auto logits = randn((size_t)n * na * classes, 6, 2.0f), box = randn((size_t)n * na * 4, 7, 0.7f);
  std::vector<float> ce((size_t)n * na);
  std::vector<int32_t> order(na), selected((size_t)n * na);
  ist_multibox_scratch s{ce.data(), order.data()};
  float parts[2];
  ist_cpu_multibox_loss(n, na, classes, logits.data(), box.data(), labels.data(), offsets.data(), IST_SSD_NEG_POS_RATIO,
                        &s, selected.data(), parts, nullptr, nullptr);

  auto path = std::filesystem::temp_directory_path() / ("ist_ssd_loss_check_" + std::to_string(::getpid()) + ".txt");
  {
    std::ofstream f(path);
    char line[256];
    f << "sizes " << n << " " << na << " " << classes << "\n";
    for (int a = 0; a < na; a++) {
      std::snprintf(line, sizeof line, "anchor %.9g %.9g %.9g %.9g\n", anchors[4 * a], anchors[4 * a + 1],
                    anchors[4 * a + 2], anchors[4 * a + 3]);
      f << line;
    }
    for (int i = 0; i < n * per_image; i++) {
      std::snprintf(line, sizeof line, "object %d %d %.9g %.9g %.9g %.9g\n", i / per_image, object_labels[i],
                    objects[4 * i], objects[4 * i + 1], objects[4 * i + 2], objects[4 * i + 3]);
      f << line;
    }
    for (int i = 0; i < n; i++)
      for (int a = 0; a < na; a++) {
        size_t ia = (size_t)i * na + a;
        f << "logits " << i << " " << a;
        for (int c = 0; c < classes; c++) {
          std::snprintf(line, sizeof line, " %.9g", logits[ia * classes + c]);
          f << line;
        }
        std::snprintf(line, sizeof line, "\nbox %d %d %.9g %.9g %.9g %.9g\n", i, a, box[4 * ia], box[4 * ia + 1],
                      box[4 * ia + 2], box[4 * ia + 3]);
        f << line;
      }
    std::snprintf(line, sizeof line, "loss %.9g %.9g\n", parts[0], parts[1]);
    f << line;
    ist_ssd_postprocess pp = ist_ssdlite_postprocess_defaults();
    std::vector<float> probs((size_t)na * classes);
    std::vector<ist_detection> det(pp.max_detections);
    for (int i = 0; i < n; i++) {
      for (int a = 0; a < na; a++)
        ist_cpu_softmax_row(classes, &logits[((size_t)i * na + a) * classes], 1.0f, &probs[(size_t)a * classes]);
      int count;
      ASSERT_EQ(ist_ssd_detect(na, classes, anchors.data(), &box[(size_t)i * na * 4], probs.data(), 320, 320, &pp,
                               det.data(), &count),
                IST_OK);
      EXPECT_EQ(count, pp.max_detections) << "random scores fill the detection budget";
      for (int k = 0; k < count; k++) {
        std::snprintf(line, sizeof line, "det %d %d %.9g %.9g %.9g %.9g %.9g\n", i, det[k].label, det[k].score,
                      det[k].box[0], det[k].box[1], det[k].box[2], det[k].box[3]);
        f << line;
      }
    }
  }
  const char *src = std::getenv("INSITU_SOURCE_DIR");
  std::string script = src ? std::string(src) + "/tests/ssd_loss_check.py"
                           : (std::filesystem::path(__FILE__).parent_path() / "ssd_loss_check.py").string();
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
