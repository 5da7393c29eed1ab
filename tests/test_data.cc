// Data sets the tests write themselves: CIFAR-10/100 binary files (and their errors), and the
// training augmentation (flip, padded random crop).
#include <gtest/gtest.h>
#ifdef INSITU_HAVE_SVHN
#include <matio.h>
#endif
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

extern "C" {
#include "host/dataset.h"
#include "host/rng.h"
}

#include "tests/program_util.h"

namespace {

// n records; record i has label (i·3 + first) % classes and pixel p = (i + p) % 256; CIFAR-100
// records carry a coarse label byte first.
std::vector<uint8_t> cifar_records(int n, int classes, int first) {
  std::vector<uint8_t> b;
  for (int i = 0; i < n; i++) {
    if (classes == 100) b.push_back(99);  // coarse label: not the class
    b.push_back((uint8_t)((i * 3 + first) % classes));
    for (int p = 0; p < 3072; p++) b.push_back((uint8_t)((i + p) % 256));
  }
  return b;
}

void write(const std::string &path, const std::vector<uint8_t> &bytes) {
  std::ofstream(path, std::ios::binary).write((const char *)bytes.data(), (std::streamsize)bytes.size());
}

TEST(Cifar10, LoadsEveryTrainingFileInOrderAndNormalizesPerChannel) {
  std::string d = fresh_dir("cifar10");
  for (int f = 1; f <= 5; f++) write(d + "/data_batch_" + std::to_string(f) + ".bin", cifar_records(2, 10, f));
  write(d + "/test_batch.bin", cifar_records(3, 10, 0));
  ist_dataset train, test;
  ASSERT_EQ(ist_cifar_load(d.c_str(), 10, "train", 0, &train), IST_OK) << ist_last_error();
  ASSERT_EQ(ist_cifar_load(d.c_str(), 10, "test", 0, &test), IST_OK) << ist_last_error();
  EXPECT_EQ(train.n, 10);
  EXPECT_EQ(test.n, 3);
  EXPECT_EQ(train.c * 10000 + train.h * 100 + train.w, 3 * 10000 + 32 * 100 + 32);
  EXPECT_EQ(train.labels[2], 2) << "file 2, record 0: label (0·3 + 2) % 10";
  EXPECT_EQ(train.labels[3], 5);
  // Record 1 of file 1, green plane (pixel 1024 + 5): byte (1 + 1029) % 256 = 6.
  EXPECT_NEAR(train.images[3072 + 1024 + 5], (6 / 255.0f - 0.4822f) / 0.2435f, 1e-5);
  EXPECT_NEAR(train.mean[2], 0.4465f, 1e-6);
  EXPECT_NEAR(train.std[2], 0.2616f, 1e-6);
  ist_dataset limited;
  ASSERT_EQ(ist_cifar_load(d.c_str(), 10, "train", 3, &limited), IST_OK);
  EXPECT_EQ(limited.n, 3) << "the limit cuts across files";
  ist_dataset_free(&train);
  ist_dataset_free(&test);
  ist_dataset_free(&limited);
}

TEST(Cifar100, UsesTheFineLabel) {
  std::string d = fresh_dir("cifar100");
  write(d + "/train.bin", cifar_records(4, 100, 40));
  ist_dataset train;
  ASSERT_EQ(ist_cifar_load(d.c_str(), 100, "train", 0, &train), IST_OK) << ist_last_error();
  EXPECT_EQ(train.n, 4);
  EXPECT_EQ(train.classes, 100);
  EXPECT_EQ(train.labels[1], 43);
  EXPECT_NEAR(train.images[3072], (1 / 255.0f - 0.5071f) / 0.2673f, 1e-5);
  ist_dataset_free(&train);
}

// Each failure names the file and says what is wrong.
void expect_error(const std::string &dir, int classes, const char *split, const std::string &says) {
  ist_dataset d;
  EXPECT_NE(ist_cifar_load(dir.c_str(), classes, split, 0, &d), IST_OK);
  std::string e = ist_last_error();
  EXPECT_NE(e.find(dir), std::string::npos) << e;
  EXPECT_NE(e.find(says), std::string::npos) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos) << "one line";
}

TEST(Cifar, MissingTruncatedAndCorruptFilesAreNamedErrors) {
  std::string d = fresh_dir("cifar_bad");
  std::remove((d + "/test_batch.bin").c_str());  // left by an earlier run
  expect_error(d, 10, "test", "cannot open");
  auto rec = cifar_records(2, 100, 0);
  rec.resize(rec.size() - 100);
  write(d + "/test.bin", rec);
  expect_error(d, 100, "test", "truncated");
  auto bad = cifar_records(2, 10, 0);
  bad[3073] = 10;  // record 1's label
  write(d + "/test_batch.bin", bad);
  expect_error(d, 10, "test", "record 1 has label 10");
  write(d + "/test_batch.bin", {});
  expect_error(d, 10, "test", "0 bytes");
}

#ifdef INSITU_HAVE_SVHN
// An SVHN-style MATLAB file: X (32×32×3×n uint8, column-major) with X(r, c, ch, i) = r + c + ch + i,
// y (n × 1 double) with labels 1..10.
void write_svhn(const std::string &path, int n, const std::vector<double> &labels, size_t x_rows = 32) {
  std::vector<uint8_t> x(x_rows * 32 * 3 * n);
  for (int i = 0; i < n; i++)
    for (int ch = 0; ch < 3; ch++)
      for (int c = 0; c < 32; c++)
        for (size_t r = 0; r < x_rows; r++) x[r + x_rows * (c + 32 * (ch + 3 * i))] = (uint8_t)(r + c + ch + i);
  mat_t *mat = Mat_CreateVer(path.c_str(), nullptr, MAT_FT_MAT5);
  ASSERT_NE(mat, nullptr);
  size_t xd[4] = {x_rows, 32, 3, (size_t)n}, yd[2] = {(size_t)n, 1};
  matvar_t *xv = Mat_VarCreate("X", MAT_C_UINT8, MAT_T_UINT8, 4, xd, x.data(), 0);
  matvar_t *yv = Mat_VarCreate("y", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, yd, (void *)labels.data(), 0);
  Mat_VarWrite(mat, xv, MAT_COMPRESSION_NONE);
  Mat_VarWrite(mat, yv, MAT_COMPRESSION_NONE);
  Mat_VarFree(xv);
  Mat_VarFree(yv);
  Mat_Close(mat);
}

TEST(Svhn, ReadsMatlabColumnMajorImagesAndMapsLabelTenToZero) {
  std::string d = fresh_dir("svhn");
  write_svhn(d + "/train_32x32.mat", 3, {10, 1, 7});
  ist_dataset s;
  ASSERT_EQ(ist_svhn_load(d.c_str(), "train", 0, &s), IST_OK) << ist_last_error();
  EXPECT_EQ(s.n, 3);
  EXPECT_EQ(std::vector<int32_t>(s.labels, s.labels + 3), (std::vector<int32_t>{0, 1, 7}));
  // Image 2, channel 1 (green), row 5, column 9: byte 5 + 9 + 1 + 2 = 17.
  EXPECT_NEAR(s.images[2 * 3072 + (1 * 32 + 5) * 32 + 9], (17 / 255.0f - 0.4438f) / 0.2010f, 1e-5);
  ist_dataset_free(&s);
}

TEST(Svhn, MissingGarbageAndMisshapenFilesAreNamedErrors) {
  std::string d = fresh_dir("svhn_bad");
  std::remove((d + "/test_32x32.mat").c_str());
  ist_dataset s;
  EXPECT_NE(ist_svhn_load(d.c_str(), "test", 0, &s), IST_OK);
  EXPECT_NE(std::string(ist_last_error()).find("cannot open"), std::string::npos) << ist_last_error();
  write(d + "/test_32x32.mat", std::vector<uint8_t>(300, 7));
  EXPECT_NE(ist_svhn_load(d.c_str(), "test", 0, &s), IST_OK);
  EXPECT_NE(std::string(ist_last_error()).find("test_32x32.mat"), std::string::npos) << ist_last_error();
  write_svhn(d + "/test_32x32.mat", 2, {1, 2}, 31);
  EXPECT_NE(ist_svhn_load(d.c_str(), "test", 0, &s), IST_OK);
  EXPECT_NE(std::string(ist_last_error()).find("32x32x3xN"), std::string::npos) << ist_last_error();
  write_svhn(d + "/test_32x32.mat", 2, {1, 11});
  EXPECT_NE(ist_svhn_load(d.c_str(), "test", 0, &s), IST_OK);
  EXPECT_NE(std::string(ist_last_error()).find("label 1"), std::string::npos) << ist_last_error();
}

#else
TEST(Svhn, BuildWithoutSvhnSupportSaysSoInOneLine) {
  expect_one_line_error(run("teacher --dataset svhn --data /nowhere"),
                        "--dataset svhn: this build has no SVHN support (libmatio not found at build time)");
  ist_dataset s;
  EXPECT_NE(ist_svhn_load("/nowhere", "train", 0, &s), IST_OK);
}
TEST(Svhn, NeedsSvhnSupport) { GTEST_SKIP() << "built without SVHN support (apt-get install libmatio-dev)"; }
#endif  // INSITU_HAVE_SVHN

// A 1-channel 4×4 image with pixel value = index, to follow where pixels go.
struct Tiny {
  std::vector<float> img = std::vector<float>(16);
  std::vector<int32_t> lab = {7};
  ist_dataset d{};
  Tiny() {
    for (int i = 0; i < 16; i++) img[i] = (float)i;
    d.n = 1, d.c = 1, d.h = d.w = 4, d.classes = 10, d.images = img.data(), d.labels = lab.data();
    d.mean[0] = 5, d.std[0] = 1;  // a black pixel (0) is −5 once normalized
  }
};

TEST(Augment, NoneCopiesTheImage) {
  Tiny t;
  std::vector<float> x(16);
  int32_t y;
  ist_dataset_batch(&t.d, nullptr, 0, 1, x.data(), &y, nullptr, 0);
  EXPECT_EQ(x, t.img);
  EXPECT_EQ(y, 7);
}

TEST(Augment, PaddedCropsShiftTheImageAndFillWithBlack) {
  Tiny t;
  ist_augment aug{0, 2, 0, 0};
  int shifted = 0;
  for (int trial = 0; trial < 50; trial++) {
    std::vector<float> x(16);
    int32_t y;
    ist_dataset_batch(&t.d, nullptr, 0, 1, x.data(), &y, &aug, (uint64_t)trial);
    // Find the offset from any pixel that is not black: every pixel must then agree with it.
    int dy = 99, dx = 99;
    for (int i = 0; i < 16 && dy == 99; i++)
      if (x[i] != -5) dy = (int)x[i] / 4 - i / 4, dx = (int)x[i] % 4 - i % 4;
    ASSERT_NE(dy, 99) << "a 4×4 crop of a 2-padded 4×4 image always keeps a pixel";
    EXPECT_LE(std::abs(dy), 2);
    EXPECT_LE(std::abs(dx), 2);
    for (int r = 0; r < 4; r++)
      for (int c = 0; c < 4; c++) {
        int sr = r + dy, sc = c + dx;
        float want = sr >= 0 && sr < 4 && sc >= 0 && sc < 4 ? (float)(sr * 4 + sc) : -5.0f;
        EXPECT_EQ(x[r * 4 + c], want) << "trial " << trial;
      }
    shifted += dy != 0 || dx != 0;
  }
  EXPECT_GT(shifted, 30) << "24 of 25 offsets move the image";
}

TEST(Augment, FlipMirrorsRows) {
  Tiny t;
  ist_augment aug{1, 0, 0, 0};
  int flips = 0;
  for (int trial = 0; trial < 40; trial++) {
    std::vector<float> x(16);
    int32_t y;
    ist_dataset_batch(&t.d, nullptr, 0, 1, x.data(), &y, &aug, (uint64_t)trial);
    bool flipped = x[0] == 3;
    for (int i = 0; i < 16; i++) EXPECT_EQ(x[i], flipped ? (float)(i / 4 * 4 + 3 - i % 4) : (float)i);
    flips += flipped;
  }
  EXPECT_GT(flips, 8);
  EXPECT_LT(flips, 32);
}

// A 3-channel 8×8 image with values from a smooth ramp, normalized with mean 0.5, std 0.25.
struct Rgb {
  std::vector<float> img = std::vector<float>(3 * 64);
  std::vector<int32_t> lab = {1};
  ist_dataset d{};
  Rgb() {
    for (int i = 0; i < 3 * 64; i++) img[i] = ((float)(i % 64) / 64.0f - 0.5f) / 0.25f;
    d.n = 1, d.c = 3, d.h = d.w = 8, d.classes = 10, d.images = img.data(), d.labels = lab.data();
    for (int c = 0; c < 3; c++) d.mean[c] = 0.5f, d.std[c] = 0.25f;
  }
};

// The same (seed, position) gives the same draws wherever the image is loaded; positions differ.
TEST(Augment, DrawsDependOnTheSeedAndThePositionOnly) {
  Rgb t;
  std::vector<float> img4;
  for (int k = 0; k < 4; k++) img4.insert(img4.end(), t.img.begin(), t.img.end());
  std::vector<int32_t> lab4(4, 1);
  ist_dataset d = t.d;
  d.n = 4, d.images = img4.data(), d.labels = lab4.data();
  ist_augment aug{1, 2, 0, 0.3f};
  std::vector<float> all(4 * 192), one(192);
  std::vector<int32_t> y(4);
  ist_dataset_batch(&d, nullptr, 0, 4, all.data(), y.data(), &aug, 77);
  ist_dataset_batch(&d, nullptr, 2, 1, one.data(), y.data(), &aug, 77);
  EXPECT_EQ(one, std::vector<float>(all.begin() + 2 * 192, all.begin() + 3 * 192)) << "position 2, alone or in a batch";
  EXPECT_NE(std::vector<float>(all.begin(), all.begin() + 192), std::vector<float>(all.begin() + 192, all.begin() + 384));
}

TEST(Augment, RandomResizedCropsInterpolateWithinTheImageRange) {
  Rgb t;
  ist_augment aug{};
  aug.rrc_min_scale = 0.08f;
  const float lo = *std::min_element(t.img.begin(), t.img.end()), hi = *std::max_element(t.img.begin(), t.img.end());
  int changed = 0;
  for (int trial = 0; trial < 20; trial++) {
    std::vector<float> x(t.img.size());
    int32_t y;
    ist_dataset_batch(&t.d, nullptr, 0, 1, x.data(), &y, &aug, (uint64_t)trial);
    for (float v : x) {
      EXPECT_GE(v, lo - 1e-5f);
      EXPECT_LE(v, hi + 1e-5f) << "bilinear samples are convex combinations of pixels";
    }
    changed += x != t.img;
  }
  EXPECT_GT(changed, 15);
}

TEST(Augment, ColourJitterKeepsPixelsInRangeAndZeroJitterIsIdentity) {
  Rgb t;
  ist_augment none{}, aug{};
  aug.jitter = 0.4f;
  std::vector<float> x(t.img.size());
  int32_t y;
  ist_dataset_batch(&t.d, nullptr, 0, 1, x.data(), &y, &none, 6);
  EXPECT_EQ(x, t.img);
  ist_dataset_batch(&t.d, nullptr, 0, 1, x.data(), &y, &aug, 6);
  EXPECT_NE(x, t.img);
  for (float v : x) {
    EXPECT_GE(v * 0.25f + 0.5f, -1e-6f) << "pixels stay in [0, 1]";
    EXPECT_LE(v * 0.25f + 0.5f, 1 + 1e-6f);
  }
}

}  // namespace
