// JPEG data sets the tests write with TurboJPEG: ImageFolder and TinyImageNet-200 layouts, the
// evaluation crop, DCT-scaled decoding, augmentation that does not depend on the prefetching
// worker threads, grey and CMYK files, and damaged files and layouts as named errors. In a build
// without JPEG support (INSITU_JPEG off) they skip, and the program's one-line error is checked.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef INSITU_HAVE_JPEG
#include <turbojpeg.h>
#endif

#include <cmath>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

extern "C" {
#include "host/dataset.h"
#include "host/rng.h"
}

#include "tests/program_util.h"

namespace {

#ifndef INSITU_HAVE_JPEG
TEST(JpegData, BuildWithoutJpegSupportSaysSoInOneLine) {
  expect_one_line_error(run("teacher --dataset tinyimagenet --data /nowhere"), "this build has no JPEG support");
  ist_dataset d;
  EXPECT_NE(ist_image_folder_load("/nowhere", "train", nullptr, 0, &d), IST_OK);
  EXPECT_NE(std::string(ist_last_error()).find("libturbojpeg not found at build time"), std::string::npos)
      << ist_last_error();
}
TEST(JpegData, NeedsJpegSupport) { GTEST_SKIP() << "built without JPEG support (apt-get install libturbojpeg0-dev)"; }
#else

std::string tmp_dir(const std::string &name) { return fresh_dir("jpeg_" + name); }

void mkdirs(const std::string &path) {
  for (size_t i = 1; i <= path.size(); i++)
    if (i == path.size() || path[i] == '/') mkdir(path.substr(0, i).c_str(), 0777);
}

// Channel values of pixel (x, y).
using Pixel = std::function<std::vector<int>(int x, int y)>;

// Writes a w × h JPEG (quality 95, no chroma subsampling) in the pixel format pf.
std::vector<unsigned char> jpeg_bytes(int w, int h, const Pixel &px, int pf = TJPF_RGB) {
  const int ch = tjPixelSize[pf];
  std::vector<unsigned char> raw((size_t)w * h * ch);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      auto v = px(x, y);
      for (int c = 0; c < ch; c++) raw[((size_t)y * w + x) * ch + c] = (unsigned char)v[c];
    }
  tjhandle tj = tjInitCompress();
  unsigned char *out = nullptr;
  unsigned long size = 0;
  const int samp = pf == TJPF_GRAY ? TJSAMP_GRAY : TJSAMP_444;
  EXPECT_EQ(tjCompress2(tj, raw.data(), w, 0, h, pf, &out, &size, samp, 95, 0), 0) << tjGetErrorStr2(tj);
  std::vector<unsigned char> bytes(out, out + size);
  tjFree(out);
  tjDestroy(tj);
  return bytes;
}

void write(const std::string &path, const std::vector<unsigned char> &bytes) {
  std::ofstream(path, std::ios::binary).write((const char *)bytes.data(), (std::streamsize)bytes.size());
}

Pixel flat(int r, int g, int b) {
  return [=](int, int) { return std::vector<int>{r, g, b}; };
}

// A textured image: every crop, flip and jitter changes the pixels.
Pixel texture(int seed) {
  return [=](int x, int y) {
    return std::vector<int>{(x * 7 + y * 3 + seed * 40) % 256, (x * x + y * 5 + seed) % 256, (y * y * 3 + x) % 256};
  };
}

const ist_jpeg_options SMALL = {16, 1.0f, 2, 0};

// The pixel value (0..255) that normalized value v of channel c stands for.
float pixel(const ist_dataset &d, int c, float v) { return (v * d.std[c] + d.mean[c]) * 255.0f; }

struct Batch {
  std::vector<float> x;
  std::vector<int32_t> y;
};

Batch batch(const ist_dataset &d, const int32_t *order, int64_t start, int n, const ist_augment *aug, uint64_t seed) {
  Batch b{std::vector<float>((size_t)n * 3 * d.h * d.w), std::vector<int32_t>(n)};
  EXPECT_EQ(ist_dataset_batch(&d, order, start, n, b.x.data(), b.y.data(), aug, seed), IST_OK) << ist_last_error();
  return b;
}

// dir/{train,val}/{cat,dog}/k.jpg: cats red, dogs blue; a text file that is ignored.
std::string write_folders(const std::string &name, int per_class) {
  std::string d = tmp_dir(name);
  for (std::string split : {"train", "val"})
    for (std::string cls : {"dog", "cat"}) {
      mkdirs(d + "/" + split + "/" + cls);
      for (int k = 0; k < per_class; k++)
        write(d + "/" + split + "/" + cls + "/" + std::to_string(k) + (k % 2 ? ".JPEG" : ".jpg"),
              jpeg_bytes(24 + k, 20, cls == "cat" ? flat(200, 30, 30) : flat(20, 40, 220)));
      write(d + "/" + split + "/" + cls + "/notes.txt", {'h', 'i'});
    }
  return d;
}

TEST(ImageFolder, ClassesAreSortedFoldersAndPixelsAreNormalizedRgb) {
  std::string d = write_folders("folders", 3);
  EXPECT_EQ(ist_image_folder_classes(d.c_str()), 2);
  ist_dataset train, val;
  ASSERT_EQ(ist_image_folder_load(d.c_str(), "train", &SMALL, 0, &train), IST_OK) << ist_last_error();
  ASSERT_EQ(ist_image_folder_load(d.c_str(), "val", &SMALL, 0, &val), IST_OK) << ist_last_error();
  EXPECT_EQ(train.n, 6) << "notes.txt is not an image";
  EXPECT_EQ(train.classes, 2);
  EXPECT_EQ(train.c * 10000 + train.h * 100 + train.w, 3 * 10000 + 16 * 100 + 16);
  EXPECT_NEAR(train.mean[0], 0.485f, 1e-6);
  Batch b = batch(val, nullptr, 0, 6, nullptr, 0);
  for (int i = 0; i < 6; i++) {
    const int cat = b.y[i] == 0;  // "cat" sorts before "dog"
    EXPECT_EQ(b.y[i], i < 3 ? 0 : 1);
    const float want[3] = {cat ? 200.f : 20.f, cat ? 30.f : 40.f, cat ? 30.f : 220.f};
    for (int c = 0; c < 3; c++)
      for (int p = 0; p < 256; p++) ASSERT_NEAR(pixel(val, c, b.x[((size_t)i * 3 + c) * 256 + p]), want[c], 3.0f);
  }
  ist_dataset some;
  ASSERT_EQ(ist_image_folder_load(d.c_str(), "train", &SMALL, 2, &some), IST_OK);
  EXPECT_EQ(some.n, 2);
  Batch s = batch(some, nullptr, 0, 2, nullptr, 0);
  EXPECT_EQ(s.y[0], 0);
  EXPECT_EQ(s.y[1], 1) << "--train-limit keeps an evenly spread subset, so both classes";
  ist_dataset_free(&train);
  ist_dataset_free(&val);
  ist_dataset_free(&some);
}

// A w × h image, black left of x = w/2 and white from there on, evaluated at 10 × 10: the shorter
// side (h) becomes the crop, centred, so the output's left half is black and its right half white.
// At 160 × 80 the decoder scales by 1/8 first (DCT scaling), which must not move the edge.
TEST(ImageFolder, EvaluationCropsTheCentreAtAnyDecodingScale) {
  for (int w : {40, 160}) {
    std::string d = tmp_dir("centre" + std::to_string(w));
    mkdirs(d + "/train/a");
    mkdirs(d + "/val/a");
    auto half = [w](int x, int) { return x < w / 2 ? std::vector<int>{0, 0, 0} : std::vector<int>{255, 255, 255}; };
    write(d + "/train/a/0.jpg", jpeg_bytes(w, w / 2, half));
    write(d + "/val/a/0.jpg", jpeg_bytes(w, w / 2, half));
    const ist_jpeg_options o = {10, 1.0f, 1, 0};
    ist_dataset v;
    ASSERT_EQ(ist_image_folder_load(d.c_str(), "val", &o, 0, &v), IST_OK) << ist_last_error();
    Batch b = batch(v, nullptr, 0, 1, nullptr, 0);
    for (int y = 0; y < 10; y++)
      for (int x : {0, 1, 2, 3, 6, 7, 8, 9}) {
        const float p = pixel(v, 1, b.x[100 + y * 10 + x]);
        if (x < 5) EXPECT_LT(p, 25.0f) << "w " << w << " at " << x << "," << y;
        else EXPECT_GT(p, 230.0f) << "w " << w << " at " << x << "," << y;
      }
    ist_dataset_free(&v);
  }
}

// The prefetching worker threads never change what a batch holds: the same calls give the same
// batches with 1 or 3 threads, also when an evaluation batch in between cancels the prefetch, and
// they are those of the in-memory path's rules (draws from the seed and the order position).
TEST(ImageFolder, AugmentedBatchesDependOnlyOnTheOrderAndTheRng) {
  std::string d = tmp_dir("augment");
  for (std::string cls : {"a", "b"}) {
    mkdirs(d + "/train/" + cls);
    for (int k = 0; k < 4; k++) write(d + "/train/" + cls + "/" + std::to_string(k) + ".jpg", jpeg_bytes(40, 30, texture(k)));
  }
  const ist_augment aug = {1, 0, 0.3f, 0.2f};
  const int32_t order[8] = {5, 2, 7, 0, 1, 6, 3, 4};
  std::vector<Batch> runs[2];
  for (int threads : {1, 3}) {
    ist_jpeg_options o = {16, 1.0f, threads, 0};
    ist_dataset t;
    ASSERT_EQ(ist_image_folder_load(d.c_str(), "train", &o, 0, &t), IST_OK) << ist_last_error();
    auto &r = runs[threads == 3];
    r.push_back(batch(t, order, 0, 4, &aug, 9));
    if (threads == 3) batch(t, nullptr, 2, 3, nullptr, 0);  // drops the prefetched batch
    r.push_back(batch(t, order, 4, 4, &aug, 9));
    r.push_back(batch(t, order, 0, 4, &aug, 10));  // the same images with another seed
    ist_dataset_free(&t);
  }
  for (int k = 0; k < 3; k++) {
    EXPECT_EQ(runs[0][k].y, runs[1][k].y);
    EXPECT_EQ(runs[0][k].x, runs[1][k].x) << "batch " << k;
  }
  EXPECT_EQ(runs[0][0].y[0], 1) << "image 5 is b/1.jpg";
  EXPECT_NE(runs[0][0].x, runs[0][2].x) << "new draws, new crops";
}

// Class folders and images may be symbolic links (a common way to assemble a split).
TEST(ImageFolder, SymbolicLinksAreFollowed) {
  std::string d = tmp_dir("links");
  mkdirs(d + "/train/a");
  mkdirs(d + "/val");
  write(d + "/train/a/0.jpg", jpeg_bytes(16, 16, flat(10, 20, 30)));
  ASSERT_EQ(symlink((d + "/train/a/0.jpg").c_str(), (d + "/train/a/1.jpg").c_str()), 0);
  ASSERT_EQ(symlink((d + "/train/a").c_str(), (d + "/val/a").c_str()), 0);
  ist_dataset v;
  ASSERT_EQ(ist_image_folder_load(d.c_str(), "val", &SMALL, 0, &v), IST_OK) << ist_last_error();
  EXPECT_EQ(v.n, 2);
  ist_dataset_free(&v);
}

TEST(ImageFolder, GreyAndCmykFilesBecomeRgb) {
  std::string d = tmp_dir("colour");
  mkdirs(d + "/train/a");
  write(d + "/train/a/grey.jpg", jpeg_bytes(16, 16, [](int, int) { return std::vector<int>{90}; }, TJPF_GRAY));
  // Adobe CMYK as decoders return it (inverted inks): R = C·K/255, so K = 255 gives R, G, B = C, M, Y.
  write(d + "/train/a/inks.jpg", jpeg_bytes(16, 16, [](int, int) { return std::vector<int>{200, 100, 50, 255}; }, TJPF_CMYK));
  ist_dataset t;
  ASSERT_EQ(ist_image_folder_load(d.c_str(), "train", &SMALL, 0, &t), IST_OK) << ist_last_error();
  Batch b = batch(t, nullptr, 0, 2, nullptr, 0);
  const float want[2][3] = {{90, 90, 90}, {200, 100, 50}};  // grey.jpg sorts first
  for (int i = 0; i < 2; i++)
    for (int c = 0; c < 3; c++) EXPECT_NEAR(pixel(t, c, b.x[((size_t)i * 3 + c) * 256 + 100]), want[i][c], 4.0f) << i;
  ist_dataset_free(&t);
}

TEST(TinyImageNet, TrainFoldersAndValidationAnnotations) {
  std::string d = tmp_dir("tiny");
  for (std::string w : {"n02", "n01"}) {
    mkdirs(d + "/train/" + w + "/images");
    for (int k = 0; k < 2; k++)
      write(d + "/train/" + w + "/images/" + w + "_" + std::to_string(k) + ".JPEG", jpeg_bytes(64, 64, texture(k)));
    std::ofstream(d + "/train/" + w + "/" + w + "_boxes.txt") << "box lines\n";
  }
  mkdirs(d + "/val/images");
  std::ofstream ann(d + "/val/val_annotations.txt");
  for (int k = 0; k < 3; k++) {
    write(d + "/val/images/val_" + std::to_string(k) + ".JPEG", jpeg_bytes(64, 64, texture(k)));
    ann << "val_" << k << ".JPEG\t" << (k == 1 ? "n01" : "n02") << "\t0\t0\t63\t63\n";
  }
  ann.close();
  const ist_jpeg_options o = {64, 1.0f, 2, 0};
  ist_dataset train, val;
  ASSERT_EQ(ist_tiny_imagenet_load(d.c_str(), "train", &o, 0, &train), IST_OK) << ist_last_error();
  ASSERT_EQ(ist_tiny_imagenet_load(d.c_str(), "val", &o, 0, &val), IST_OK) << ist_last_error();
  EXPECT_EQ(train.n, 4);
  EXPECT_EQ(train.classes, 2);
  EXPECT_EQ(val.n, 3);
  Batch b = batch(val, nullptr, 0, 3, nullptr, 0);
  EXPECT_EQ(b.y, (std::vector<int32_t>{1, 0, 1})) << "n01 is class 0";
  // At its own size an image is not resampled: pixels come back as written (± JPEG error).
  const int want = (5 * 7 + 9 * 3 + 0 * 40) % 256;  // val_0 = texture(0), red at (5, 9)
  EXPECT_NEAR(pixel(val, 0, b.x[9 * 64 + 5]), want, 8.0f);
  ist_dataset_free(&train);
  ist_dataset_free(&val);
}

void expect_error(ist_status st, const std::string &mentions) {
  EXPECT_NE(st, IST_OK);
  EXPECT_NE(std::string(ist_last_error()).find(mentions), std::string::npos) << ist_last_error();
}

TEST(JpegData, DamagedFilesAndLayoutsAreNamedErrors) {
  std::string d = write_folders("damaged", 2);
  ist_dataset t;
  expect_error(ist_image_folder_load((d + "/nowhere").c_str(), "train", &SMALL, 0, &t), "nowhere/train");
  expect_error(ist_image_folder_load(d.c_str(), "test", &SMALL, 0, &t), "'test'");
  ist_jpeg_options bad = SMALL;
  bad.threads = 0;
  expect_error(ist_image_folder_load(d.c_str(), "train", &bad, 0, &t), "--loader-threads");
  mkdirs(d + "/val/cow");
  expect_error(ist_image_folder_load(d.c_str(), "val", &SMALL, 0, &t), "val/cow");
  mkdirs(d + "/train/cow");
  expect_error(ist_image_folder_load(d.c_str(), "train", &SMALL, 0, &t), "train/cow: no .jpg");
  ASSERT_EQ(system(("rm -r " + d + "/train/cow " + d + "/val/cow").c_str()), 0);

  // A truncated file and a text file named .jpg fail the batch that holds them, naming them; the
  // threads stay usable for the next batch.
  auto good = jpeg_bytes(24, 20, texture(1));
  write(d + "/train/cat/0.jpg", std::vector<unsigned char>(good.begin(), good.begin() + good.size() / 2));
  write(d + "/train/dog/0.jpg", {'n', 'o', 't', ' ', 'a', ' ', 'j', 'p', 'e', 'g'});
  ASSERT_EQ(ist_image_folder_load(d.c_str(), "train", &SMALL, 0, &t), IST_OK) << ist_last_error();
  std::vector<float> x(4 * 3 * 256);
  std::vector<int32_t> y(4);
  expect_error(ist_dataset_batch(&t, nullptr, 0, 1, x.data(), y.data(), nullptr, 0), "cat/0.jpg: corrupt or truncated");
  expect_error(ist_dataset_batch(&t, nullptr, 2, 1, x.data(), y.data(), nullptr, 0), "dog/0.jpg: not a JPEG");
  EXPECT_EQ(ist_dataset_batch(&t, nullptr, 1, 1, x.data(), y.data(), nullptr, 0), IST_OK) << ist_last_error();
  ASSERT_EQ(remove((d + "/train/cat/1.JPEG").c_str()), 0);
  expect_error(ist_dataset_batch(&t, nullptr, 0, 2, x.data(), y.data(), nullptr, 0), "cat/");
  ist_dataset_free(&t);

  std::string tiny = tmp_dir("tiny_bad");
  mkdirs(tiny + "/train/n01/images");
  write(tiny + "/train/n01/images/a.JPEG", good);
  mkdirs(tiny + "/val/images");
  write(tiny + "/val/images/v.JPEG", good);
  const ist_jpeg_options o = {16, 1.0f, 1, 0};
  std::ofstream(tiny + "/val/val_annotations.txt") << "v.JPEG\tn01\t0\t0\t1\t1\nv.JPEG\tn09\t0\t0\t1\t1\n";
  expect_error(ist_tiny_imagenet_load(tiny.c_str(), "val", &o, 0, &t), "val_annotations.txt:2: class 'n09'");
  std::ofstream(tiny + "/val/val_annotations.txt") << "missing.JPEG\tn01\t0\t0\t1\t1\n";
  expect_error(ist_tiny_imagenet_load(tiny.c_str(), "val", &o, 0, &t), "missing.JPEG does not exist");
  std::ofstream(tiny + "/val/val_annotations.txt") << "just-one-field\n";
  expect_error(ist_tiny_imagenet_load(tiny.c_str(), "val", &o, 0, &t), "val_annotations.txt:1: expected");
  remove((tiny + "/val/val_annotations.txt").c_str());
  expect_error(ist_tiny_imagenet_load(tiny.c_str(), "val", &o, 0, &t), "val_annotations.txt: cannot open");
  mkdirs(tiny + "/train/n02/images");
  expect_error(ist_tiny_imagenet_load(tiny.c_str(), "train", &o, 0, &t), "n02/images: no .jpg");
}

// The whole flow on TinyImageNet's layout (resized to 16 × 16) and on an ImageFolder tree, as a
// user runs it; an undecodable training image stops the run with one line naming it.
TEST(JpegData, ProgramTrainsResNet18OnTinyImageNetAndImageFolders) {
  std::string d = tmp_dir("tiny_prog"), out = tmp_dir("tiny_out");
  for (std::string w : {"n01", "n02"}) {
    mkdirs(d + "/train/" + w + "/images");
    for (int k = 0; k < 2; k++)
      write(d + "/train/" + w + "/images/" + std::to_string(k) + ".JPEG", jpeg_bytes(64, 64, texture(k + (w == "n02") * 5)));
  }
  mkdirs(d + "/val/images");
  write(d + "/val/images/v.JPEG", jpeg_bytes(64, 64, texture(1)));
  std::ofstream(d + "/val/val_annotations.txt") << "v.JPEG\tn01\t0\t0\t63\t63\n";
  const std::string flags = " --model resnet18-cifar --input-size 16 --setting 2-44-8-8-8 --batch 2 --teacher-epochs 1"
                            " --epochs 1 --l2-iters 2 --bn-recalib 1 --log-every 1 --loader-threads 2 --out " + out;
  Result r = run("run --dataset tinyimagenet --data " + d + flags);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("RESULT teacher"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("step 2/2"), std::string::npos) << "4 images, batch 2: " << r.out;
  Result e = run("eval --dataset tinyimagenet --data " + d + " --bn-recalib 0 --checkpoint " + out + "/student.safetensors");
  ASSERT_EQ(e.code, 0) << e.out;
  EXPECT_NE(e.out.find("on 1 images"), std::string::npos) << e.out;

  std::string f = write_folders("folders_prog", 2);
  r = run("teacher --dataset imagefolder --data " + f + flags);
  ASSERT_EQ(r.code, 0) << r.out;
  write(f + "/train/dog/1.JPEG", {'x'});
  r = run("teacher --dataset imagefolder --data " + f + flags);  // fails at the first batch holding it
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("insitu: error: " + f + "/train/dog/1.JPEG: not a JPEG file"), std::string::npos) << r.out;
  expect_one_line_error(run("teacher --dataset imagefolder --data " + f + "/none" + flags), "none/train");
}

#endif  // INSITU_HAVE_JPEG

}  // namespace
