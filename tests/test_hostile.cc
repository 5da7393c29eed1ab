// Hostile input and numeric faults: numbers from files and flags are parsed whole and checked
// against their ranges, paths never reach a shell, an image's header bounds its memory, a
// non-finite loss stops training without overwriting good files, and bad input fails before work.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <zlib.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern "C" {
#include "host/checked.h"
#include "host/dataset.h"
#include "host/idx.h"
#include "host/safetensors.h"
#include "kernels/backend.h"
#include "models/model.h"
#include "train/trainer.h"
}

#include "tests/program_util.h"

namespace {

std::string tmp_dir(const std::string &name) { return fresh_dir("hostile_" + name); }

void write(const std::string &path, const std::string &bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), (std::streamsize)bytes.size());
}

std::string slurp(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

bool exists(const std::string &path) {
  struct stat sb;
  return stat(path.c_str(), &sb) == 0;
}

// A safetensors file with this JSON header and `data` bytes after it.
std::string safetensors(const std::string &header, const std::string &data = "") {
  std::string h = header;
  while (h.size() % 8) h += ' ';
  std::string out(8, '\0');
  for (int i = 0; i < 8; i++) out[i] = (char)((uint64_t)h.size() >> (8 * i));
  return out + h + data;
}

std::string read_error(const std::string &path) {
  ist_safetensors f;
  if (ist_st_read(path.c_str(), &f) == IST_OK) {
    ist_st_free(&f);
    return "";
  }
  return ist_last_error();
}

// A cnn3 at batch 1 with initialized parameters (setting: "dense" or Bi-Bc-qb-qu-qv).
void make_cnn3(const char *setting, int batch, ist_model *m) {
  ist_model_config cfg;
  memset(&cfg, 0, sizeof cfg);
  ASSERT_EQ(ist_setting_parse(setting, &cfg.global), IST_OK) << ist_last_error();
  ASSERT_EQ(ist_model_create("cnn3", ist_backend_cpu(), batch, &cfg, m), IST_OK) << ist_last_error();
  ist_model_init_params(m, 1);
}

// n synthetic 28×28 images in 10 classes (finite unless poisoned).
ist_dataset synthetic(int n) {
  ist_dataset d = {};
  d.n = n, d.c = 1, d.h = d.w = 28, d.classes = 10, d.std[0] = 1;
  d.images = (float *)calloc((size_t)n * 784, sizeof(float));
  d.labels = (int32_t *)calloc((size_t)n, sizeof(int32_t));
  for (int i = 0; i < n * 784; i++) d.images[i] = (float)(i % 23) / 23.0f - 0.5f;
  for (int i = 0; i < n; i++) d.labels[i] = i % 10;
  return d;
}

ist_train_config small_config(const std::string &state, const std::string &ckpt, int epochs) {
  ist_train_config c = {};
  c.stage = "teacher";
  c.epochs = epochs;
  c.lr = 0.002f, c.lr_decay = 0.9f, c.weight_decay = 5e-4f, c.seed = 1;
  c.state_path = state.empty() ? nullptr : state.c_str();
  c.checkpoint = ckpt.empty() ? nullptr : ckpt.c_str();
  c.state_every = 1;
  c.resume = 1;
  return c;
}

// ---- 1. numbers from files and flags: whole, in range, no overflow ----

TEST(StrictNumbers, WholeTextNoWrapAroundNoSignsOrSpaces) {
  int64_t v;
  EXPECT_TRUE(ist_parse_i64("9223372036854775807", 0, INT64_MAX, &v));
  EXPECT_EQ(v, INT64_MAX);
  EXPECT_TRUE(ist_parse_i64("-9223372036854775808", INT64_MIN, 0, &v));
  EXPECT_EQ(v, INT64_MIN);
  for (const char *bad : {"9223372036854775808", "", "-", "+1", " 1", "1 ", "1x", "0x10", "4294967298"})
    EXPECT_FALSE(ist_parse_i64(bad, 0, 4294967297, &v)) << bad;
  int i;
  EXPECT_FALSE(ist_parse_int("2147483648", 0, 2147483647, &i));
  double d;
  EXPECT_FALSE(ist_parse_double("1e999", -1e308, 1e308, &d));
  EXPECT_FALSE(ist_parse_double("nan", -1e308, 1e308, &d));
  EXPECT_TRUE(ist_parse_double("0.25", 0, 1, &d));
  EXPECT_EQ(d, 0.25);
  int64_t p;
  EXPECT_FALSE(ist_mul_i64((int64_t)1 << 32, (int64_t)1 << 31, &p));
  EXPECT_TRUE(ist_mul_i64((int64_t)1 << 32, (int64_t)1 << 30, &p));
}

TEST(StrictNumbers, SafetensorsShapeWhoseProductOverflowsIsAFormatError) {
  const std::string p = tmp_dir("st") + "/overflow.safetensors";
  write(p, safetensors(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,0]}})"));
  const std::string e = read_error(p);
  EXPECT_NE(e.find(p + ": tensor w: shape's element count exceeds 2^63"), std::string::npos) << e;
}

TEST(StrictNumbers, SafetensorsIntegersAreDigitsOnly) {
  const std::string d = tmp_dir("st_int");
  write(d + "/plus.safetensors", safetensors(R"({"w":{"dtype":"U8","shape":[+2],"data_offsets":[0,2]}})", "ab"));
  EXPECT_NE(read_error(d + "/plus.safetensors").find("tensor w: bad shape"), std::string::npos);
  write(d + "/big.safetensors",
        safetensors(R"({"w":{"dtype":"U8","shape":[2],"data_offsets":[0,99999999999999999999]}})", "ab"));
  EXPECT_NE(read_error(d + "/big.safetensors").find("tensor w: bad data_offsets"), std::string::npos);
}

TEST(StrictNumbers, SafetensorsMetadataEntriesAreBounded) {
  std::string meta;
  for (int i = 0; i <= IST_ST_MAX_META; i++) meta += (i ? "," : "") + ("\"k" + std::to_string(i) + "\":\"v\"");
  const std::string p = tmp_dir("st_meta") + "/meta.safetensors";
  write(p, safetensors("{\"__metadata__\":{" + meta + "}}"));
  EXPECT_NE(read_error(p).find("__metadata__ has more than 256 entries"), std::string::npos) << read_error(p);
}

TEST(StrictNumbers, IdxDimensionOutOfRangeIsNamedWithoutOverflow) {
  // 2^28 × 2^6 × (2^32 − 1): the last size is out of range, and the product would overflow.
  const std::string p = tmp_dir("idx") + "/huge.idx";
  write(p, std::string("\x00\x00\x08\x03\x10\x00\x00\x00\x00\x00\x00\x40\xff\xff\xff\xff", 16));
  int64_t dims[3];
  uint8_t *data;
  ASSERT_NE(ist_idx_read_u8(p.c_str(), 3, dims, &data), IST_OK);
  EXPECT_NE(std::string(ist_last_error()).find(p + ": dimension 2 has size 4294967295 (allowed 1..268435456)"),
            std::string::npos)
      << ist_last_error();
}

TEST(StrictNumbers, SettingRanksThatWouldWrapAreRejected) {
  ist_conv_setting s;
  EXPECT_NE(ist_setting_parse("4294967298-16-4-4-4", &s), IST_OK) << "a 10-digit rank must not become 2";
  EXPECT_NE(std::string(ist_last_error()).find("Bi and Bc must be 1..65536"), std::string::npos) << ist_last_error();
  for (const char *bad : {"2-16-4-4-4 ", " 2-16-4-4-4", "2-+16-4-4-4", "2-16-4-4-4-4", "2--16-4-4", "-2-16-4-4-4"})
    EXPECT_NE(ist_setting_parse(bad, &s), IST_OK) << bad;
  EXPECT_EQ(ist_setting_parse("2-16-4-4-4", &s), IST_OK);
  expect_one_line_error(run("report --setting 4294967298-16-4-4-4"), "Bi and Bc must be 1..65536");
}

TEST(StrictNumbers, CheckpointClassesAndInputMetadataAreRangeChecked) {
  const std::string d = tmp_dir("meta");
  ist_model m;
  make_cnn3("2-16-4-4-4", 1, &m);
  const std::string good = d + "/good.safetensors";
  ASSERT_EQ(ist_model_save(&m, good.c_str(), "init"), IST_OK);
  ist_model_destroy(&m);
  // The same tensors under rewritten metadata.
  auto rewrite = [&](const std::string &key, const std::string &value, const std::string &out) {
    ist_safetensors f;
    ASSERT_EQ(ist_st_read(good.c_str(), &f), IST_OK);
    for (int i = 0; i < f.nmeta; i++)
      if (key == f.meta[i].key) snprintf(f.meta[i].value, sizeof f.meta[i].value, "%s", value.c_str());
    ASSERT_EQ(ist_st_write(out.c_str(), f.tensors, f.ntensors, f.meta, f.nmeta), IST_OK);
    ist_st_free(&f);
  };
  ist_model_config base = {}, cfg;
  char arch[32];
  const std::string in = d + "/input.safetensors", cl = d + "/classes.safetensors";
  rewrite("input", "2147483647x2147483647", in);
  ASSERT_NE(ist_checkpoint_config(in.c_str(), &base, "cnn3", &cfg, arch, sizeof arch), IST_OK);
  EXPECT_NE(std::string(ist_last_error()).find(in + ": metadata input '2147483647x2147483647' is not HxW with sides 1..4096"),
            std::string::npos)
      << ist_last_error();
  rewrite("classes", "-3", cl);
  ASSERT_NE(ist_checkpoint_config(cl.c_str(), &base, "cnn3", &cfg, arch, sizeof arch), IST_OK);
  EXPECT_NE(std::string(ist_last_error()).find("metadata classes '-3' is not a whole number in 1..100000"), std::string::npos)
      << ist_last_error();
  expect_one_line_error(run("report --checkpoint " + in), "metadata input");
}

TEST(StrictNumbers, FlagsAreWholeNumbersInTheirRange) {
  expect_one_line_error(run("report --epochs -5"), "--epochs: -5 is out of range (allowed -1..1000000)");
  expect_one_line_error(run("report --batch 0"), "--batch: 0 is out of range (allowed 1..65536)");
  expect_one_line_error(run("report --seed ' 7'"), "--seed: ' 7' is not a whole number");
  expect_one_line_error(run("report --lr-decay 1e30"), "--lr-decay: 1e30 is out of range (allowed -1..1)");
  expect_one_line_error(run("report --lr-decay 0"), "--lr-decay: 0 (allowed: -1");
  expect_one_line_error(run("report --lr inf"), "--lr: 'inf' is not a finite number");
  Result help = run("teacher --help");
  EXPECT_NE(help.out.find("(default: 64; allowed: 1..65536)"), std::string::npos) << help.out;
}

TEST(StrictNumbers, ValidationAnnotationsNeedWholeBoxesAndPlainFileNames) {
  const std::string d = tmp_dir("tiny");
  ASSERT_EQ(system(("mkdir -p '" + d + "/train/n01/images' '" + d + "/val/images'").c_str()), 0);
  tjhandle tj = tjInitCompress();
  std::vector<unsigned char> raw(8 * 8 * 3, 128);
  unsigned char *jpg = nullptr;
  unsigned long size = 0;
  ASSERT_EQ(tjCompress2(tj, raw.data(), 8, 0, 8, TJPF_RGB, &jpg, &size, TJSAMP_444, 90, 0), 0);
  const std::string bytes((const char *)jpg, size);
  tjFree(jpg);
  tjDestroy(tj);
  write(d + "/train/n01/images/a.JPEG", bytes);
  write(d + "/val/images/v.JPEG", bytes);
  const ist_jpeg_options o = {16, 1.0f, 1, 0};
  ist_dataset ds;
  write(d + "/val/val_annotations.txt", "v.JPEG\tn01\t0\t1\t7\t7\n");
  ASSERT_EQ(ist_tiny_imagenet_load(d.c_str(), "val", &o, 0, &ds), IST_OK) << ist_last_error();
  ist_dataset_free(&ds);
  write(d + "/val/val_annotations.txt", "v.JPEG\tn01\t0\t1\t4294967303\t7\n");
  ASSERT_NE(ist_tiny_imagenet_load(d.c_str(), "val", &o, 0, &ds), IST_OK);
  EXPECT_NE(std::string(ist_last_error()).find("val_annotations.txt:1: expected"), std::string::npos) << ist_last_error();
  write(d + "/val/val_annotations.txt", "../train/n01/images/a.JPEG\tn01\t0\t1\t7\t7\n");
  ASSERT_NE(ist_tiny_imagenet_load(d.c_str(), "val", &o, 0, &ds), IST_OK);
  EXPECT_NE(std::string(ist_last_error()).find("is not a plain file name"), std::string::npos) << ist_last_error();
}

TEST(StrictNumbers, SvhnFilesWhoseSizesLibmatioWouldTrustAreRefusedBeforeItReadsThem) {
  // Found by fuzz_svhn: a shifted header makes libmatio read the file as MATLAB 4, and a matrix
  // element larger than the file makes it allocate what it says; either kept it clearing memory
  // for tens of seconds for a few hundred bytes.
  const char *src = getenv("INSITU_SOURCE_DIR");
  ASSERT_NE(src, nullptr);
  const std::string d = tmp_dir("svhn"), regs = std::string(src) + "/tests/fuzz/regressions/svhn/";
  const struct {
    const char *file, *message;
  } cases[] = {{"headerless_matlab4_reading_clears_gigabytes", "no MATLAB 5.0 file header"},
               {"version_7.3_text_over_a_version_5_body_allocates_2.7_GB", "no MATLAB 5.0 file header"},
               {"matrix_element_larger_than_the_file_libmatio_clears_gigabytes", "element at byte 128 declares 3128 bytes"},
               // Cells, structs and functions: libmatio allocates a pointer per declared element.
               {"function_class_array_libmatio_allocates_6.4_GB_of_pointers", "malformed variable at byte 128 (a numeric array"},
               // A complex X: its data are two pointers, which were read as pixels.
               {"complex_x_data_read_as_pixels_heap_overflow", "X and y must be real arrays"},
               // X of 0 images and a y of (2^32 − 5) × 225 labels: 0 = 0 let libmatio allocate 7.7 TB.
               {"empty_x_and_huge_y_dimensions_allocate_7.7_TB", "X declares 0 images (allowed 1..2097152"},
               // A label of 6.6e31 was converted to int before its range was checked (undefined).
               {"label_6.6e31_converted_to_int_undefined", "label "}};
  for (const auto &c : cases) {
    write(d + "/test_32x32.mat", slurp(regs + c.file));
    ist_dataset ds;
    ASSERT_NE(ist_svhn_load(d.c_str(), "test", 0, &ds), IST_OK) << c.file;
    EXPECT_NE(std::string(ist_last_error()).find(d + "/test_32x32.mat: " + c.message), std::string::npos)
        << c.file << ": " << ist_last_error();
  }
}

// ---- 2. no shell: any path is only a name ----

TEST(NoShell, PngPathWithQuotesSpacesAndCommandsIsPlottedAsNamed) {
  // Run in d, so that a command hidden in the name would create d/pwned.
  const std::string d = tmp_dir("png"), png = "it's a \"plot\"; touch pwned; echo '.png";
  // Single-quoted for the test's own shell: ' becomes '\''.
  std::string quoted = "'";
  for (char c : png) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  quoted += "'";
  Result r = run_shell("cd '" + d + "' && " + INSITU_BINARY + " hw --model cnn3 --setting 2-16-4-4-4 --png " + quoted);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(exists(d + "/" + png)) << "the PNG under its own name";
  EXPECT_FALSE(exists(d + "/pwned")) << "a file name ran a command";
  expect_one_line_error(run("hw --model cnn3 --png '" + d + "/a\nb.png'"), "--png: the path has a control character");
}

TEST(NoShell, ExploreWritesItsPlotsIntoAnOutWithAnApostrophe) {
  const std::string d = tmp_dir("explore") + "/runs of O'Brien";
  ASSERT_EQ(mkdir(d.c_str(), 0777), 0);
  ist_model m;
  make_cnn3("dense", 1, &m);
  ASSERT_EQ(ist_model_save(&m, (d + "/teacher.safetensors").c_str(), "teacher"), IST_OK);
  ist_model_destroy(&m);
  Result r = run("explore --out \"" + d + "\" --l2-iters 2 --grid-bi 1 --grid-bc 8 --grid-q 4-4-4 --target-ratio 0");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(exists(d + "/explore_pareto.png")) << r.out;
  EXPECT_TRUE(exists(d + "/explore_heat_4-4-4.png")) << r.out;
}

// ---- 3. images: memory bounded by the header, frames required ----

std::string small_jpeg(int w, int h) {
  tjhandle tj = tjInitCompress();
  std::vector<unsigned char> raw((size_t)w * h * 3);
  for (size_t i = 0; i < raw.size(); i++) raw[i] = (unsigned char)(i * 7);
  unsigned char *jpg = nullptr;
  unsigned long size = 0;
  EXPECT_EQ(tjCompress2(tj, raw.data(), w, 0, h, TJPF_RGB, &jpg, &size, TJSAMP_444, 90, 0), 0);
  std::string bytes((const char *)jpg, size);
  tjFree(jpg);
  tjDestroy(tj);
  return bytes;
}

// An ImageFolder tree with one class "a" holding `bytes` as x.jpg in train and val.
std::string folder_with(const std::string &name, const std::string &bytes) {
  const std::string d = tmp_dir(name);
  EXPECT_EQ(system(("mkdir -p '" + d + "/train/a' '" + d + "/val/a'").c_str()), 0);
  write(d + "/train/a/x.jpg", bytes);
  write(d + "/val/a/x.jpg", bytes);
  return d;
}

TEST(ImageMemory, HeaderDeclaringAHugeFrameFailsBeforeDecoding) {
  std::string bytes = small_jpeg(16, 16);
  const size_t sof = bytes.find("\xff\xc0");
  ASSERT_NE(sof, std::string::npos);
  // SOF0: marker, length (2), precision (1), height (2), width (2): 65000 × 65000.
  bytes[sof + 5] = (char)0xfd, bytes[sof + 6] = (char)0xe8, bytes[sof + 7] = (char)0xfd, bytes[sof + 8] = (char)0xe8;
  const std::string d = folder_with("huge", bytes);
  const ist_jpeg_options o = {16, 1.0f, 1, 0};
  ist_dataset ds;
  ASSERT_NE(ist_image_folder_load(d.c_str(), "val", &o, 0, &ds), IST_OK) << "validation headers are checked at loading";
  EXPECT_NE(std::string(ist_last_error()).find(d + "/val/a/x.jpg: header declares 65000 × 65000 = 4225000000 pixels, more "
                                                   "than --max-image-pixels 89478485 allows"),
            std::string::npos)
      << ist_last_error();
  // Training files are checked as each is decoded, before any pixel memory.
  ASSERT_EQ(ist_image_folder_load(d.c_str(), "train", &o, 0, &ds), IST_OK) << ist_last_error();
  std::vector<float> x(3 * 16 * 16);
  int32_t y;
  EXPECT_NE(ist_dataset_batch(&ds, nullptr, 0, 1, x.data(), &y, nullptr, 0), IST_OK);
  EXPECT_NE(std::string(ist_last_error()).find("more than --max-image-pixels"), std::string::npos) << ist_last_error();
  ist_dataset_free(&ds);
}

TEST(ImageMemory, MaxImagePixelsIsTheLimit) {
  const std::string d = folder_with("limit", small_jpeg(20, 10));
  ist_dataset ds;
  const ist_jpeg_options tight = {16, 1.0f, 1, 199}, enough = {16, 1.0f, 1, 200};
  EXPECT_NE(ist_image_folder_load(d.c_str(), "val", &tight, 0, &ds), IST_OK);
  EXPECT_NE(std::string(ist_last_error()).find("20 × 10 = 200 pixels, more than --max-image-pixels 199"), std::string::npos)
      << ist_last_error();
  ASSERT_EQ(ist_image_folder_load(d.c_str(), "val", &enough, 0, &ds), IST_OK) << ist_last_error();
  ist_dataset_free(&ds);
  const ist_jpeg_options wrong = {16, 1.0f, 1, -1};
  EXPECT_NE(ist_image_folder_load(d.c_str(), "val", &wrong, 0, &ds), IST_OK);
  EXPECT_NE(std::string(ist_last_error()).find("--max-image-pixels: -1"), std::string::npos) << ist_last_error();
}

TEST(ImageMemory, TablesWithoutAFrameAreAnError) {
  // The tables of a real JPEG (everything before its frame), then the end marker.
  std::string bytes = small_jpeg(16, 16);
  bytes = bytes.substr(0, bytes.find("\xff\xc0")) + "\xff\xd9";
  const std::string d = folder_with("tables", bytes);
  const ist_jpeg_options o = {16, 1.0f, 1, 0};
  ist_dataset ds;
  ASSERT_NE(ist_image_folder_load(d.c_str(), "val", &o, 0, &ds), IST_OK);
  const std::string e = ist_last_error();
  EXPECT_NE(e.find(d + "/val/a/x.jpg: "), std::string::npos) << e;
  EXPECT_TRUE(e.find("has no frame") != std::string::npos || e.find("not a JPEG file") != std::string::npos) << e;
  ASSERT_EQ(ist_image_folder_load(d.c_str(), "train", &o, 0, &ds), IST_OK) << ist_last_error();
  std::vector<float> x(3 * 16 * 16);
  int32_t y;
  EXPECT_NE(ist_dataset_batch(&ds, nullptr, 0, 1, x.data(), &y, nullptr, 0), IST_OK);
  ist_dataset_free(&ds);
}

// ---- 4. numeric faults ----

TEST(NumericFaults, NonFiniteLossStopsTrainingAndKeepsTheLastGoodFiles) {
  const std::string d = tmp_dir("nan"), state = d + "/teacher.state.safetensors", ckpt = d + "/teacher.safetensors";
  ist_dataset train = synthetic(4), test = synthetic(2);
  ist_model m;
  make_cnn3("dense", 2, &m);
  ist_train_result r;
  ist_train_config c = small_config(state, ckpt, 1);
  ASSERT_EQ(ist_train(&m, nullptr, &train, &test, &c, &r), IST_OK) << ist_last_error();
  const std::string good_ckpt = slurp(ckpt);
  // The second epoch meets an image with a NaN: the loss of its step is NaN.
  train.images[3 * 784 + 100] = NAN;
  c.epochs = 2;
  ASSERT_EQ(ist_train(&m, nullptr, &train, &test, &c, &r), IST_ERR_NUMERIC);
  const std::string e = ist_last_error();
  // The NaN shows in the loss of its step, or (when the network's ReLUs drop it) in the gradients.
  EXPECT_NE(e.find("[teacher] the "), std::string::npos) << e;
  EXPECT_NE(e.find(" is nan at epoch 2, step "), std::string::npos) << e;
  EXPECT_NE(e.find("the last good state " + state + " and checkpoint is kept"), std::string::npos) << e;
  EXPECT_TRUE(slurp(ckpt) == good_ckpt) << "the checkpoint (written at epoch ends) is not overwritten";
  // The state is the last good one: epoch 2's steps before the fault at most, every value finite.
  ist_safetensors f;
  ASSERT_EQ(ist_st_read(state.c_str(), &f), IST_OK) << ist_last_error();
  EXPECT_EQ(std::string(ist_st_meta_get(&f, "position")).rfind("epoch=1 step=", 0), 0u) << ist_st_meta_get(&f, "position");
  for (int i = 0; i < f.ntensors; i++)
    EXPECT_EQ(ist_check_finite(state.c_str(), f.tensors[i].name, f.tensors[i].data, (int64_t)f.tensors[i].nbytes / 4), IST_OK)
        << ist_last_error();
  ist_st_free(&f);
  ist_model_destroy(&m);
  ist_dataset_free(&train);
  ist_dataset_free(&test);
}

TEST(NumericFaults, CheckpointsWithNonFiniteValuesAreNeitherWrittenNorLoaded) {
  const std::string d = tmp_dir("nanckpt"), good = d + "/good.safetensors", bad = d + "/bad.safetensors";
  ist_model m;
  make_cnn3("2-16-4-4-4", 1, &m);
  ASSERT_EQ(ist_model_save(&m, good.c_str(), "init"), IST_OK);
  // Writing refuses a NaN parameter, and leaves the file as it was.
  const std::string before = slurp(good);
  m.params[0].data[3] = INFINITY;
  EXPECT_EQ(ist_model_save(&m, good.c_str(), "init"), IST_ERR_NUMERIC);
  EXPECT_EQ(ist_model_save_compressed(&m, (d + "/x.compressed.safetensors").c_str()), IST_ERR_NUMERIC);
  EXPECT_TRUE(slurp(good) == before);
  // A file with one (written by someone else) is refused by loading, naming the tensor.
  ist_safetensors f;
  ASSERT_EQ(ist_st_read(good.c_str(), &f), IST_OK);
  std::vector<uint8_t> copy(f.blob, f.blob + f.size);
  const float nan = NAN;
  memcpy((uint8_t *)f.tensors[1].data, &nan, sizeof nan);
  ASSERT_EQ(ist_st_write(bad.c_str(), f.tensors, f.ntensors, f.meta, f.nmeta), IST_OK);
  const std::string name = f.tensors[1].name;
  ist_st_free(&f);
  EXPECT_NE(ist_model_load(&m, bad.c_str()), IST_OK);
  EXPECT_NE(std::string(ist_last_error()).find(bad + ": tensor " + name + " holds a non-finite value (nan at element 0)"),
            std::string::npos)
      << ist_last_error();
  ist_model_destroy(&m);
  if (!have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed (the eval program's part)";
  expect_one_line_error(run("eval --test-limit 16 --bn-recalib 0 --checkpoint " + bad), "holds a non-finite value");
}

TEST(NumericFaults, LearningRatesThatCouldOverflowAreRefusedAndMetricsAreJson) {
  expect_one_line_error(run("teacher --lr-decay 1e30"), "--lr-decay");
  if (!have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const std::string d = tmp_dir("metrics");
  Result r = run("teacher --out " + d + " --teacher-epochs 2 --train-limit 64 --test-limit 32 --batch 32 --lr-decay 1");
  ASSERT_EQ(r.code, 0) << r.out;
  std::ifstream f(d + "/metrics.jsonl");
  int lines = 0;
  for (std::string line; std::getline(f, line); lines++) {
    EXPECT_EQ(line.front(), '{');
    EXPECT_EQ(line.back(), '}');
    for (const char *bad : {"inf", "nan", "NaN", "Inf"}) EXPECT_EQ(line.find(bad), std::string::npos) << line;
  }
  EXPECT_EQ(lines, 2);
}

// ---- 5. failing before work ----

TEST(FailEarly, UnwritableOutFailsBeforeAnyTraining) {
  // /proc/self is a directory nobody, root included, can create files in.
  expect_one_line_error(run("teacher --out /proc/self --teacher-epochs 1"), "--out: cannot write into /proc/self");
}

TEST(FailEarly, OutputFilesOutsideOutAreCheckedBeforeTraining) {
  const std::string d = tmp_dir("outputs");
  expect_one_line_error(run("run --out " + d + " --student " + d + "/missing/s.safetensors"),
                        "--student: folder " + d + "/missing of");
  expect_one_line_error(run("eval --checkpoint x --logits /nonexistent/l.safetensors"), "--logits: folder /nonexistent");
}

TEST(FailEarly, BadGridEntriesFailBeforeAnyGridPoint) {
  const std::string d = tmp_dir("grid");
  ist_model m;
  make_cnn3("dense", 1, &m);
  ASSERT_EQ(ist_model_save(&m, (d + "/teacher.safetensors").c_str(), "teacher"), IST_OK);
  ist_model_destroy(&m);
  // One line only: no grid point is computed before the bad entry is found.
  expect_one_line_error(run("explore --out " + d + " --l2-iters 2 --grid-q 4-4-4,4-4-40"), "--grid-q: '4-4-40'");
  expect_one_line_error(run("explore --out " + d + " --grid-bi 1,2,+3"), "--grid-bi: '+3'");
  expect_one_line_error(run("explore --out " + d + " --grid-bc 8,4294967304"), "--grid-bc: '4294967304'");
}

TEST(FailEarly, TeacherEpochsZeroClaimsNoSave) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const std::string d = tmp_dir("zero");
  Result r = run("teacher --out " + d + " --teacher-epochs 0 --test-limit 32");
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_EQ(r.out.find("saved"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--teacher-epochs 0 trains nothing and needs an existing teacher"), std::string::npos) << r.out;
  EXPECT_FALSE(exists(d + "/teacher.safetensors"));
}

// ---- 6. error messages ----

TEST(ErrorMessages, AMessageMayQuoteTheCurrentOne) {
  ist_fail(IST_ERR_IO, "inner: cannot open");
  ist_fail(IST_ERR_FORMAT, "outer (%s) and again (%s)", ist_last_error(), ist_last_error());
  EXPECT_STREQ(ist_last_error(), "outer (inner: cannot open) and again (inner: cannot open)");
}

TEST(ErrorMessages, ADirectoryWhereAFileBelongsIsNamedAsADirectory) {
  const std::string d = tmp_dir("dir");
  EXPECT_NE(read_error(d).find(d + ": is a directory, not a file"), std::string::npos) << read_error(d);
  Result r = run("report --checkpoint " + d);
  expect_one_line_error(r, "is a directory");
  EXPECT_EQ(r.out.find("9223372036854775807"), std::string::npos) << r.out;
}

// ---- 7. training states: positions checked before use ----

class ResumePosition : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_dir("resume");
    state_ = dir_ + "/teacher.state.safetensors";
    train_ = synthetic(4);
    test_ = synthetic(2);
    ist_model m;
    make_cnn3("1-2-4-4-4", 2, &m);
    ist_train_result r;
    ist_train_config c = small_config(state_, "", 1);
    ASSERT_EQ(ist_train(&m, nullptr, &train_, &test_, &c, &r), IST_OK) << ist_last_error();
    ist_model_destroy(&m);
  }
  void TearDown() override {
    ist_dataset_free(&train_);
    ist_dataset_free(&test_);
  }
  // Resumes (2 epochs) from the state with its position replaced; returns the status.
  ist_status resume_with(const std::string &position) {
    ist_safetensors f;
    EXPECT_EQ(ist_st_read(state_.c_str(), &f), IST_OK);
    const std::string bad = dir_ + "/bad.state.safetensors";
    for (int i = 0; i < f.nmeta; i++)
      if (!strcmp(f.meta[i].key, "position")) snprintf(f.meta[i].value, sizeof f.meta[i].value, "%s", position.c_str());
    EXPECT_EQ(ist_st_write(bad.c_str(), f.tensors, f.ntensors, f.meta, f.nmeta), IST_OK);
    ist_st_free(&f);
    ist_model m;
    make_cnn3("1-2-4-4-4", 2, &m);
    ist_train_result r;
    ist_train_config c = small_config(bad, "", 2);
    c.state_every = 0;
    const ist_status st = ist_train(&m, nullptr, &train_, &test_, &c, &r);
    ist_model_destroy(&m);
    return st;
  }
  std::string dir_, state_;
  ist_dataset train_, test_;
};

TEST_F(ResumePosition, AValidMidEpochPositionResumes) {
  EXPECT_EQ(resume_with("epoch=1 step=1 radam_step=3 loss_sum=2.25 hits_sum=1 seconds=0.5 test_acc=0.5"), IST_OK)
      << ist_last_error();
}

TEST_F(ResumePosition, StepsAndEpochsOutsideTheRunAreRefusedBeforeUse) {
  const struct {
    const char *position, *message;
  } cases[] = {
      {"epoch=0 step=99999999 radam_step=99999999 loss_sum=0 hits_sum=0 seconds=0 test_acc=0", "position step=99999999 (allowed 0..1"},
      {"epoch=-1 step=0 radam_step=0 loss_sum=0 hits_sum=0 seconds=0 test_acc=0", "epoch '-1' is not a whole number in 0..2147483647"},
      {"epoch=7 step=0 radam_step=14 loss_sum=0 hits_sum=0 seconds=0 test_acc=0", "position epoch=7 is past this run's --epochs (allowed 0..2)"},
      {"epoch=4294967297 step=0 radam_step=0 loss_sum=0 hits_sum=0 seconds=0 test_acc=0", "epoch '4294967297' is not a whole number"},
      {"epoch=2147483647 step=2147483647 radam_step=1 loss_sum=0 hits_sum=0 seconds=0 test_acc=0", "is past this run's --epochs"},
      {"epoch=1 step=0 radam_step=5 loss_sum=0 hits_sum=0 seconds=0 test_acc=0", "radam_step=5 (must be epoch × 2 + step = 2)"},
      {"epoch=2 step=1 radam_step=5 loss_sum=0 hits_sum=0 seconds=0 test_acc=0", "position step=1 (allowed 0..1, 0 once every epoch is done)"},
      {"epoch=1 step=1 radam_step=3 loss_sum=nan hits_sum=0 seconds=0 test_acc=0", "loss_sum 'nan' is not a finite number"},
      {"epoch=1 step=1 radam_step=3 loss_sum=0 hits_sum=9 seconds=0 test_acc=0", "hits_sum=9 (a whole number in 0..2)"},
      {"epoch=1 step=1 radam_step=3 loss_sum=0 hits_sum=0 seconds=0 test_acc=2", "test_acc=2 (allowed 0..1)"},
      {"epoch=1 step=1 radam_step=3 loss_sum=0 hits_sum=0 seconds=0 test_acc=0 extra", "unexpected 'extra'"},
      {"epoch=1 step=1x radam_step=3 loss_sum=0 hits_sum=0 seconds=0 test_acc=0", "step '1x' is not a whole number"},
      {"step=1 epoch=1 radam_step=3 loss_sum=0 hits_sum=0 seconds=0 test_acc=0", "expected epoch=<number>"},
  };
  for (const auto &c : cases) {
    EXPECT_NE(resume_with(c.position), IST_OK) << c.position;
    const std::string e = ist_last_error();
    EXPECT_NE(e.find(dir_ + "/bad.state.safetensors: position"), std::string::npos) << e;
    EXPECT_NE(e.find(c.message), std::string::npos) << c.position << " → " << e;
  }
}

TEST_F(ResumePosition, NegativeSecondMomentsAreRefused) {
  ist_safetensors f;
  ASSERT_EQ(ist_st_read(state_.c_str(), &f), IST_OK);
  for (int i = 0; i < f.ntensors; i++)
    if (!strcmp(f.tensors[i].name, "optimizer.v")) {
      const float neg = -1;
      memcpy((uint8_t *)f.tensors[i].data + 8, &neg, sizeof neg);
    }
  ASSERT_EQ(ist_st_write(state_.c_str(), f.tensors, f.ntensors, f.meta, f.nmeta), IST_OK);
  ist_st_free(&f);
  ist_model m;
  make_cnn3("1-2-4-4-4", 2, &m);
  ist_train_result r;
  ist_train_config c = small_config(state_, "", 2);
  EXPECT_NE(ist_train(&m, nullptr, &train_, &test_, &c, &r), IST_OK);
  EXPECT_NE(std::string(ist_last_error()).find("optimizer.v has a negative value at element 2"), std::string::npos)
      << ist_last_error();
  ist_model_destroy(&m);
}

}  // namespace
