// Host utilities: IDX reading (and its errors), safetensors round trips and corrupt files, flags,
// settings, the arena and the RNG.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

extern "C" {
#include "host/cli.h"
#include "host/idx.h"
#include "host/rng.h"
#include "host/safetensors.h"
#include "host/tensor.h"
#include "models/model.h"
}

namespace {

std::string tmp_path(const std::string &name) {
  return std::string(::testing::TempDir()) + "insitu_" + name;
}

void write_gz(const std::string &path, const std::vector<uint8_t> &bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, bytes.data(), (unsigned)bytes.size());
  gzclose(f);
}

std::vector<uint8_t> idx3(int n, int h, int w) {
  std::vector<uint8_t> b = {0, 0, 8, 3};
  for (int d : {n, h, w})
    for (int s = 24; s >= 0; s -= 8) b.push_back((uint8_t)(d >> s));
  for (int i = 0; i < n * h * w; i++) b.push_back((uint8_t)(i * 7));
  return b;
}

TEST(Idx, ReadsGzipAndPlainFiles) {
  auto bytes = idx3(2, 3, 4);
  std::string gz = tmp_path("ok.idx.gz"), plain = tmp_path("ok.idx");
  write_gz(gz, bytes);
  std::ofstream(plain, std::ios::binary).write((const char *)bytes.data(), (std::streamsize)bytes.size());
  for (const auto &p : {gz, plain}) {
    int64_t dims[3];
    uint8_t *data;
    ASSERT_EQ(ist_idx_read_u8(p.c_str(), 3, dims, &data), IST_OK) << ist_last_error();
    EXPECT_EQ(dims[0], 2);
    EXPECT_EQ(dims[1], 3);
    EXPECT_EQ(dims[2], 4);
    EXPECT_EQ(data[5], 35);
    free(data);
  }
}

TEST(Idx, TruncatedFileIsAnErrorNamingTheFile) {
  auto bytes = idx3(2, 3, 4);
  bytes.resize(bytes.size() - 5);
  std::string p = tmp_path("trunc.idx.gz");
  write_gz(p, bytes);
  int64_t dims[3];
  uint8_t *data;
  EXPECT_EQ(ist_idx_read_u8(p.c_str(), 3, dims, &data), IST_ERR_FORMAT);
  EXPECT_NE(std::string(ist_last_error()).find(p), std::string::npos);
  EXPECT_NE(std::string(ist_last_error()).find("truncated"), std::string::npos);
}

TEST(Idx, WrongMagicAndTrailingBytesAreErrors) {
  auto bytes = idx3(1, 2, 2);
  bytes[2] = 0x0D;  // float data
  std::string p = tmp_path("magic.idx.gz");
  write_gz(p, bytes);
  int64_t dims[3];
  uint8_t *data;
  EXPECT_EQ(ist_idx_read_u8(p.c_str(), 3, dims, &data), IST_ERR_FORMAT);
  EXPECT_NE(std::string(ist_last_error()).find("magic"), std::string::npos);
  bytes = idx3(1, 2, 2);
  bytes.push_back(1);
  write_gz(p, bytes);
  EXPECT_EQ(ist_idx_read_u8(p.c_str(), 3, dims, &data), IST_ERR_FORMAT);
  EXPECT_NE(std::string(ist_last_error()).find("trailing"), std::string::npos);
}

TEST(Idx, CorruptGzipStreamIsAnError) {
  auto bytes = idx3(4, 8, 8);
  std::string p = tmp_path("corrupt.idx.gz");
  write_gz(p, bytes);
  std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(20);
  f.write("\xff\xff\xff\xff\xff\xff", 6);
  f.close();
  int64_t dims[3];
  uint8_t *data = nullptr;
  EXPECT_NE(ist_idx_read_u8(p.c_str(), 3, dims, &data), IST_OK);
  EXPECT_EQ(data, nullptr);
}

TEST(Idx, MissingFileIsAnIoError) {
  int64_t dims[1];
  uint8_t *data;
  EXPECT_EQ(ist_idx_read_u8("/nonexistent/labels.gz", 1, dims, &data), IST_ERR_IO);
  EXPECT_NE(std::string(ist_last_error()).find("/nonexistent/labels.gz"), std::string::npos);
}

TEST(Safetensors, RoundTripsTensorsAndMetadata) {
  std::vector<float> a = {1.5f, -2, 3, 4, 5, 6};
  std::vector<uint8_t> b = {7, 8, 9};
  ist_st_tensor t[2] = {};
  snprintf(t[0].name, sizeof t[0].name, "layer.weight");
  t[0].dtype = IST_F32, t[0].ndim = 2, t[0].shape[0] = 2, t[0].shape[1] = 3, t[0].data = a.data(), t[0].nbytes = 24;
  snprintf(t[1].name, sizeof t[1].name, "codes");
  t[1].dtype = IST_U8, t[1].ndim = 1, t[1].shape[0] = 3, t[1].data = b.data(), t[1].nbytes = 3;
  ist_st_meta meta = {"arch", "cnn3"};
  std::string p = tmp_path("rt.safetensors");
  ASSERT_EQ(ist_st_write(p.c_str(), t, 2, &meta, 1), IST_OK) << ist_last_error();
  ist_safetensors f;
  ASSERT_EQ(ist_st_read(p.c_str(), &f), IST_OK) << ist_last_error();
  const ist_st_tensor *w = ist_st_find(&f, "layer.weight");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->shape[1], 3);
  EXPECT_EQ(0, memcmp(w->data, a.data(), 24));
  EXPECT_EQ(0, memcmp(ist_st_find(&f, "codes")->data, b.data(), 3));
  EXPECT_STREQ(ist_st_meta_get(&f, "arch"), "cnn3");
  ist_st_free(&f);
  // The header is padded to 8 bytes as the format asks.
  std::ifstream in(p, std::ios::binary);
  uint64_t hlen;
  in.read((char *)&hlen, 8);
  EXPECT_EQ(hlen % 8, 0u);
}

TEST(Safetensors, TruncatedAndGarbageFilesAreErrors) {
  std::vector<float> a(100, 1.0f);
  ist_st_tensor t = {};
  snprintf(t.name, sizeof t.name, "x");
  t.dtype = IST_F32, t.ndim = 1, t.shape[0] = 100, t.data = a.data(), t.nbytes = 400;
  std::string p = tmp_path("tr.safetensors");
  ASSERT_EQ(ist_st_write(p.c_str(), &t, 1, nullptr, 0), IST_OK);
  std::ifstream in(p, std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(all.data(), (std::streamsize)all.size() - 10);
  ist_safetensors f;
  EXPECT_EQ(ist_st_read(p.c_str(), &f), IST_ERR_FORMAT);
  EXPECT_NE(std::string(ist_last_error()).find("truncated"), std::string::npos) << ist_last_error();
  std::ofstream(p, std::ios::binary | std::ios::trunc) << "this is not a checkpoint at all";
  EXPECT_EQ(ist_st_read(p.c_str(), &f), IST_ERR_FORMAT);
}

TEST(Safetensors, FailedWriteLeavesThePreviousFileIntact) {
  std::vector<float> a = {1, 2};
  ist_st_tensor t = {};
  snprintf(t.name, sizeof t.name, "x");
  t.dtype = IST_F32, t.ndim = 1, t.shape[0] = 2, t.data = a.data(), t.nbytes = 8;
  std::string p = tmp_path("keep.safetensors");
  ASSERT_EQ(ist_st_write(p.c_str(), &t, 1, nullptr, 0), IST_OK);
  ist_st_meta bad = {"k", "needs \"escaping\""};
  EXPECT_NE(ist_st_write(p.c_str(), &t, 1, &bad, 1), IST_OK);
  ist_safetensors f;
  ASSERT_EQ(ist_st_read(p.c_str(), &f), IST_OK);
  EXPECT_EQ(f.ntensors, 1);
  ist_st_free(&f);
  EXPECT_EQ(ist_st_write("/nonexistent-dir/x.safetensors", &t, 1, nullptr, 0), IST_ERR_IO);
}

TEST(Cli, ParsesValuesAndRejectsBadFlags) {
  int epochs = 3, flag = 0, help;
  float lr = 0.1f;
  const char *name = "a";
  ist_option opts[] = {{"epochs", IST_OPT_INT, &epochs, "", 0, 0}, {"lr", IST_OPT_FLOAT, &lr, "", 0, 0},
                       {"name", IST_OPT_STRING, &name, "", 0, 0}, {"quiet", IST_OPT_FLAG, &flag, "", 0, 0}};
  const char *ok[] = {"prog", "--epochs", "7", "--lr=0.5", "--name", "x", "--quiet"};
  ASSERT_EQ(ist_cli_parse(7, (char **)ok, 1, opts, 4, &help), IST_OK) << ist_last_error();
  EXPECT_EQ(epochs, 7);
  EXPECT_FLOAT_EQ(lr, 0.5f);
  EXPECT_STREQ(name, "x");
  EXPECT_EQ(flag, 1);
  const char *bad_num[] = {"prog", "--epochs", "7x"};
  EXPECT_EQ(ist_cli_parse(3, (char **)bad_num, 1, opts, 4, &help), IST_ERR_ARG);
  EXPECT_NE(std::string(ist_last_error()).find("--epochs"), std::string::npos);
  const char *unknown[] = {"prog", "--epoch", "7"};
  EXPECT_EQ(ist_cli_parse(3, (char **)unknown, 1, opts, 4, &help), IST_ERR_ARG);
  EXPECT_NE(std::string(ist_last_error()).find("--epoch"), std::string::npos);
  const char *missing[] = {"prog", "--lr"};
  EXPECT_EQ(ist_cli_parse(2, (char **)missing, 1, opts, 4, &help), IST_ERR_ARG);
}

TEST(Setting, ParsesAndRejects) {
  ist_conv_setting s;
  ASSERT_EQ(ist_setting_parse("2-16-4-4-4", &s), IST_OK);
  EXPECT_EQ(s.generated, 1);
  EXPECT_EQ(s.bc, 16);
  ASSERT_EQ(ist_setting_parse("dense", &s), IST_OK);
  EXPECT_EQ(s.generated, 0);
  for (const char *bad : {"2-16-4-4", "0-16-4-4-4", "2-16-4-4-33", "2-16-4-4-4x", "abc"}) {
    EXPECT_EQ(ist_setting_parse(bad, &s), IST_ERR_ARG) << bad;
    EXPECT_NE(std::string(ist_last_error()).find(bad), std::string::npos);
  }
}

TEST(Arena, MeasuringThenAllocatingGivesTheSameLayout) {
  ist_arena a;
  ist_arena_measure(&a);
  void *p;
  ist_arena_alloc(&a, 10, &p);
  ist_arena_alloc(&a, 100, &p);
  size_t need = a.used;
  ASSERT_EQ(ist_arena_create(&a, need, ist_backend_cpu()), IST_OK);
  void *q1, *q2, *q3;
  EXPECT_EQ(ist_arena_alloc(&a, 10, &q1), IST_OK);
  EXPECT_EQ(ist_arena_alloc(&a, 100, &q2), IST_OK);
  EXPECT_EQ((uintptr_t)q1 % 64, 0u);
  EXPECT_EQ(ist_arena_alloc(&a, 1, &q3), IST_ERR_MEMORY) << "the arena is exactly full";
  ist_arena_destroy(&a);
}

TEST(Tensor, ContiguousStridesAndArenaAllocation) {
  ist_arena a;
  ASSERT_EQ(ist_arena_create(&a, 4096, ist_backend_cpu()), IST_OK);
  ist_tensor t;
  const int64_t dims[3] = {2, 3, 4};
  ASSERT_EQ(ist_tensor_alloc(&a, IST_F32, 3, dims, &t), IST_OK);
  EXPECT_EQ(ist_numel(&t), 24);
  EXPECT_EQ(t.stride[0], 12);
  EXPECT_EQ(t.stride[1], 4);
  EXPECT_EQ(t.stride[2], 1);
  EXPECT_EQ(t.device, IST_CPU);
  const int64_t bad[2] = {3, 0};
  EXPECT_EQ(ist_tensor_alloc(&a, IST_F32, 2, bad, &t), IST_ERR_ARG);
  ist_arena_destroy(&a);
}

TEST(Rng, SameSeedSameSequenceAndUnbiasedShuffle) {
  ist_rng a, b;
  ist_rng_seed(&a, 42, 1);
  ist_rng_seed(&b, 42, 1);
  for (int i = 0; i < 100; i++) EXPECT_EQ(ist_rng_u32(&a), ist_rng_u32(&b));
  double s = 0, ss = 0;
  for (int i = 0; i < 20000; i++) {
    float z = ist_rng_normal(&a);
    s += z;
    ss += z * z;
  }
  EXPECT_NEAR(s / 20000, 0.0, 0.03);
  EXPECT_NEAR(ss / 20000, 1.0, 0.04);
  std::vector<int32_t> v(10);
  for (int i = 0; i < 10; i++) v[i] = i;
  ist_rng_shuffle(&a, v.data(), 10);
  std::vector<int32_t> sorted = v;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 10; i++) EXPECT_EQ(sorted[i], i) << "a permutation";
}

}  // namespace
