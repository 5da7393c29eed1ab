// Detection batches from a small VOC-layout set written by the test (JPEG images of grey with a
// red object and a difficult blue one): normalized pixels, targets on the object's pixels with and
// without augmentation, determinism across thread counts, and the size-mismatch error.
#include <gtest/gtest.h>
#include <turbojpeg.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

extern "C" {
#include "host/voc_batch.h"
#include "train/boxes.h"
}

namespace {

const int W = 100, H = 80;
// Red pixels x ∈ [20, 60), y ∈ [10, 50) (0-based) = VOC box 21 11 60 50; blue (difficult)
// x ∈ [70, 90), y ∈ [55, 75) = VOC box 71 56 90 75.
bool red_px(int x, int y) { return x >= 20 && x < 60 && y >= 10 && y < 50; }
bool blue_px(int x, int y) { return x >= 70 && x < 90 && y >= 55 && y < 75; }

void write_jpeg(const std::filesystem::path &p, int w, int h) {
  std::vector<unsigned char> raw((size_t)w * h * 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      unsigned char *q = &raw[((size_t)y * w + x) * 3];
      q[0] = red_px(x, y) ? 255 : blue_px(x, y) ? 0 : 128;
      q[1] = red_px(x, y) || blue_px(x, y) ? 0 : 128;
      q[2] = blue_px(x, y) ? 255 : red_px(x, y) ? 0 : 128;
    }
  tjhandle tj = tjInitCompress();
  unsigned char *out = nullptr;
  unsigned long size = 0;
  ASSERT_EQ(tjCompress2(tj, raw.data(), w, 0, h, TJPF_RGB, &out, &size, TJSAMP_444, 95, 0), 0);
  std::ofstream(p, std::ios::binary).write((const char *)out, (std::streamsize)size);
  tjFree(out);
  tjDestroy(tj);
}

class VocBatch : public ::testing::Test {
 protected:
  std::filesystem::path dir;
  ist_voc_set set{};
  std::vector<float> anchors;
  ist_voc_batch_options o{};
  int na = 0;
  void SetUp() override {
    dir = std::filesystem::temp_directory_path() /
          ("ist_voc_batch_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir / "Annotations");
    std::filesystem::create_directories(dir / "JPEGImages");
    std::filesystem::create_directories(dir / "ImageSets" / "Main");
    std::ofstream list(dir / "ImageSets" / "Main" / "trainval.txt");
    for (int i = 0; i < 4; i++) {
      std::string id = "00000" + std::to_string(i);
      list << id << "\n";
      write_jpeg(dir / "JPEGImages" / (id + ".jpg"), W, H);
      std::ofstream(dir / "Annotations" / (id + ".xml"))
          << "<annotation><size><width>" << W << "</width><height>" << H << "</height><depth>3</depth></size>"
          << "<object><name>cat</name><difficult>0</difficult><bndbox><xmin>21</xmin><ymin>11</ymin>"
          << "<xmax>60</xmax><ymax>50</ymax></bndbox></object>"
          << "<object><name>dog</name><difficult>1</difficult><bndbox><xmin>71</xmin><ymin>56</ymin>"
          << "<xmax>90</xmax><ymax>75</ymax></bndbox></object></annotation>\n";
    }
    list.close();
    std::string root = dir.string();
    const char *roots[] = {root.c_str()};
    ASSERT_EQ(ist_voc_load(roots, 1, "trainval", 0, &set), IST_OK) << ist_last_error();
    ist_ssd_anchor_config c = ist_ssdlite320_anchor_config();
    na = ist_ssd_anchor_count(&c);
    anchors.resize(4 * na);
    ist_ssd_anchors(&c, anchors.data());
    o.size = 320;
    o.threads = 2;
    for (int k = 0; k < 3; k++) o.mean[k] = 0.5f, o.std[k] = 0.5f;
    o.n_anchors = na;
    o.anchors = anchors.data();
  }
  void TearDown() override {
    ist_voc_set_free(&set);
    std::filesystem::remove_all(dir);
  }
};

// (R − G) of output pixel (x, y) of image i, in normalized units (red: ≈ 2, grey: ≈ 0).
float redness(const std::vector<float> &x, int i, int px, int py) {
  const size_t plane = 320 * 320;
  return x[(size_t)i * 3 * plane + (size_t)py * 320 + px] - x[(size_t)i * 3 * plane + plane + (size_t)py * 320 + px];
}

TEST_F(VocBatch, WithoutAugmentationTargetsAreTheScaledBoxes) {
  const int n = 4;
  std::vector<float> x((size_t)n * 3 * 320 * 320), off((size_t)n * na * 4);
  std::vector<int32_t> labels((size_t)n * na), pos(n);
  ASSERT_EQ(ist_voc_batch(&set, &o, nullptr, 0, n, nullptr, 1, x.data(), labels.data(), off.data(), pos.data()), IST_OK)
      << ist_last_error();
  const float want[4] = {20 * 3.2f, 10 * 4.0f, 60 * 3.2f, 50 * 4.0f};  // continuous pixels × 320/W, 320/H
  for (int i = 0; i < n; i++) {
    EXPECT_GT(pos[i], 0);
    int counted = 0;
    for (int a = 0; a < na; a++) {
      int32_t l = labels[(size_t)i * na + a];
      ASSERT_TRUE(l == 0 || l == 8) << "only the cat (class 7 + 1); the difficult dog is left out";
      if (l == 0) continue;
      counted++;
      float b[4];
      ist_box_decode(&anchors[4 * a], &off[((size_t)i * na + a) * 4], b);
      for (int e = 0; e < 4; e++) ASSERT_NEAR(b[e], want[e], 1e-2) << "anchor " << a;
    }
    EXPECT_EQ(counted, pos[i]);
    EXPECT_NEAR(x[(size_t)i * 3 * 320 * 320 + 5 * 320 + 5], 128 / 255.0f * 2 - 1, 0.02) << "grey, normalized";
    EXPECT_GT(redness(x, i, 128, 96), 1.8f) << "the box centre is red";
  }
}

TEST_F(VocBatch, AugmentedTargetsStayOnTheObject) {
  ist_det_augment aug = ist_det_augment_defaults();
  aug.photometric = 0;
  const int n = 4;
  std::vector<float> x((size_t)n * 3 * 320 * 320), off((size_t)n * na * 4);
  std::vector<int32_t> labels((size_t)n * na), pos(n);
  int moved = 0;
  for (uint64_t seed = 0; seed < 10; seed++) {
    ASSERT_EQ(ist_voc_batch(&set, &o, nullptr, 0, n, &aug, seed, x.data(), labels.data(), off.data(), pos.data()),
              IST_OK)
        << ist_last_error();
    for (int i = 0; i < n; i++)
      for (int a = 0; a < na; a++) {
        if (labels[(size_t)i * na + a] == 0) continue;
        float b[4];
        ist_box_decode(&anchors[4 * a], &off[((size_t)i * na + a) * 4], b);
        int cx = (int)(0.5f * (b[0] + b[2])), cy = (int)(0.5f * (b[1] + b[3]));
        ASSERT_GT(redness(x, i, cx, cy), 1.5f) << "seed " << seed << " image " << i << " anchor " << a;
        moved += std::fabs(b[0] - 64) > 1;
      }
  }
  EXPECT_GT(moved, 0);
}

TEST_F(VocBatch, TheSameSeedGivesTheSameBatchOnAnyThreadCount) {
  ist_det_augment aug = ist_det_augment_defaults();
  const int n = 4;
  std::vector<float> x1((size_t)n * 3 * 320 * 320), x2(x1.size()), o1((size_t)n * na * 4), o2(o1.size());
  std::vector<int32_t> l1((size_t)n * na), l2(l1.size());
  const int32_t order[4] = {3, 1, 0, 2};
  o.threads = 1;
  ASSERT_EQ(ist_voc_batch(&set, &o, order, 0, n, &aug, 9, x1.data(), l1.data(), o1.data(), nullptr), IST_OK);
  o.threads = 3;
  ASSERT_EQ(ist_voc_batch(&set, &o, order, 0, n, &aug, 9, x2.data(), l2.data(), o2.data(), nullptr), IST_OK);
  EXPECT_EQ(x1, x2);
  EXPECT_EQ(l1, l2);
  EXPECT_EQ(o1, o2);
}

TEST_F(VocBatch, AnImageOfAnotherSizeThanItsAnnotationFails) {
  write_jpeg(dir / "JPEGImages" / "000002.jpg", W + 1, H);
  std::vector<float> x((size_t)4 * 3 * 320 * 320), off((size_t)4 * na * 4);
  std::vector<int32_t> labels((size_t)4 * na);
  EXPECT_EQ(ist_voc_batch(&set, &o, nullptr, 0, 4, nullptr, 1, x.data(), labels.data(), off.data(), nullptr),
            IST_ERR_IO);
  std::string e = ist_last_error();
  EXPECT_NE(e.find("JPEGImages/000002.jpg: 101×80 pixels, but its annotation's <size> says 100×80"), std::string::npos)
      << e;
}

}  // namespace
