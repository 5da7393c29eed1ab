// The insitu program as a user runs it: bad input gives one clear line and a non-zero exit, and a
// tiny end-to-end run on real FashionMNIST images produces both checkpoints and the report.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <zlib.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <set>
#include <vector>

extern "C" {
#include "host/safetensors.h"
}

#include "tests/program_util.h"
#ifdef INSITU_HAVE_CUDA
#include "tests/cuda_test_util.h"
#endif

namespace {

std::string tmp_dir(const std::string &name) { return fresh_dir("prog_" + name); }

TEST(Program, HelpListsEveryFlagWithItsDefault) {
  Result r = run("run --help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("--lr-decay"), std::string::npos);
  EXPECT_NE(r.out.find("(default: 0.002; allowed: 1e-12..1000)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(default: 0.0005; allowed: 0..1)"), std::string::npos) << "weight decay";
  EXPECT_NE(r.out.find("(default: 2-16-4-4-4)"), std::string::npos);
}

TEST(Program, ReportAsCsvHasAHeaderARowPerConvAndTheModelRow) {
  Result r = run("report --setting 2-16-4-4-4 --csv");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out.rfind("layer,shape,setting,L1,L2,params,dense,r,r_m\n", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("\nconv2,32x32x5x5,2-16-4-4-4,on,on,2336,25600,0.0912,0.0115\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\nmodel,,(fc 8-bit),,,8666,55082,0.1573,0.0294\n"), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 5) << "header, 3 convs, model";
}

TEST(Program, BadFlagsAndSettingsAreOneLineErrors) {
  expect_one_line_error(run("run --epochs x"), "--epochs");
  expect_one_line_error(run("run --no-such-flag 1"), "--no-such-flag");
  expect_one_line_error(run("report --setting 2-16-4-4"), "2-16-4-4");
  expect_one_line_error(run("report --setting 2-16-4-4-40"), "bitwidths");
  expect_one_line_error(run("report --layers conv9=2-8-4-4-4"), "conv9");
  expect_one_line_error(run("run --init pca"), "--init");
  expect_one_line_error(run("frobnicate"), "frobnicate");
  expect_one_line_error(run("run --device cuda --out " + tmp_dir("dev")), "--device");
}

TEST(Program, MissingAndCorruptDataFilesAreNamed) {
  std::string d = tmp_dir("data");
  expect_one_line_error(run("teacher --data " + d + " --out " + d), d + "/train-images-idx3-ubyte.gz");
  // A truncated image file.
  gzFile f = gzopen((d + "/train-images-idx3-ubyte.gz").c_str(), "wb");
  unsigned char head[16] = {0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 28, 0, 0, 0, 28};
  gzwrite(f, head, 16);
  gzwrite(f, std::string(500, 'x').data(), 500);
  gzclose(f);
  expect_one_line_error(run("teacher --data " + d + " --out " + d), "truncated");
}

TEST(Program, MissingOrMismatchedCheckpointsAreErrors) {
  std::string d = tmp_dir("ck");
  expect_one_line_error(run("eval --checkpoint " + d + "/nothing.safetensors"), "nothing.safetensors");
  std::ofstream(d + "/junk.safetensors") << "garbage that is not a checkpoint";
  expect_one_line_error(run("eval --checkpoint " + d + "/junk.safetensors"), "junk.safetensors");
  expect_one_line_error(run("init --out " + d), "teacher.safetensors");
}

TEST(Program, TinyEndToEndRunOnFashionMnist) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  std::string d = tmp_dir("e2e");
  Result r = run("run --out " + d + " --train-limit 640 --test-limit 200 --teacher-epochs 1 --epochs 1 --l2-iters 30 --log-every 5");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("RESULT teacher"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("img/s"), std::string::npos) << "progress lines";
  EXPECT_NE(r.out.find("whole model: parameter ratio"), std::string::npos);
  struct stat st;
  for (const char *f : {"teacher.safetensors", "student_init.safetensors", "student.safetensors",
                        "student.compressed.safetensors", "metrics.jsonl"})
    EXPECT_EQ(stat((d + "/" + f).c_str(), &st), 0) << f;
  // The compressed checkpoint evaluates to the same accuracy as the full one.
  Result a = run("eval --test-limit 200 --checkpoint " + d + "/student.safetensors");
  Result b = run("eval --test-limit 200 --checkpoint " + d + "/student.compressed.safetensors");
  ASSERT_EQ(a.code, 0) << a.out;
  ASSERT_EQ(b.code, 0) << b.out;
  auto acc = [](const std::string &s) { return s.substr(s.find("test accuracy"), 22); };
  EXPECT_EQ(acc(a.out), acc(b.out));
  // The Figure 2 analysis of the teacher: a row per conv.
  Result an = run("analyze --checkpoint " + d + "/teacher.safetensors");
  ASSERT_EQ(an.code, 0) << an.out;
  EXPECT_NE(an.out.find("conv3                        32x32x5x5"), std::string::npos) << an.out;
  expect_one_line_error(run("analyze"), "--checkpoint");
  // A teacher checkpoint cannot be loaded as the 2-16-4-4-4 student.
  expect_one_line_error(run("distill --out " + d + " --teacher " + d + "/student.safetensors"), "conv1.weight");

  // Export for PyTorch: factors (dequantized) or one dense weight per conv; eval's logits.
  ASSERT_EQ(run("export --checkpoint " + d + "/student.safetensors --to " + d + "/f.safetensors").code, 0);
  ASSERT_EQ(run("export --materialize --checkpoint " + d + "/student.safetensors --to " + d + "/w.safetensors").code, 0);
  ASSERT_EQ(run("eval --bn-recalib 0 --test-limit 200 --checkpoint " + d + "/student.safetensors --logits " + d +
                "/l.safetensors").code, 0);
  ist_safetensors f, w, l;
  ASSERT_EQ(ist_st_read((d + "/f.safetensors").c_str(), &f), IST_OK);
  ASSERT_EQ(ist_st_read((d + "/w.safetensors").c_str(), &w), IST_OK);
  ASSERT_EQ(ist_st_read((d + "/l.safetensors").c_str(), &l), IST_OK);
  EXPECT_NE(ist_st_find(&f, "conv2.wb"), nullptr);
  EXPECT_EQ(ist_st_find(&f, "conv2.weight"), nullptr);
  const ist_st_tensor *w2 = ist_st_find(&w, "conv2.weight");
  ASSERT_NE(w2, nullptr);
  EXPECT_EQ(w2->shape[0] * 1000 + w2->shape[1] * 100 + w2->shape[2] * 10 + w2->shape[3], 32 * 1000 + 32 * 100 + 55);
  EXPECT_EQ(ist_st_find(&w, "conv2.wb"), nullptr);
  EXPECT_STREQ(ist_st_meta_get(&w, "export"), "dense");
  // 4-bit factors: each tensor holds at most 2^4 − 1 distinct values once dequantized.
  const ist_st_tensor *wb = ist_st_find(&f, "conv2.wb");
  std::set<float> levels((const float *)wb->data, (const float *)wb->data + wb->nbytes / 4);
  EXPECT_LE(levels.size(), 15u);
  const ist_st_tensor *lg = ist_st_find(&l, "logits");
  ASSERT_NE(lg, nullptr);
  EXPECT_EQ(lg->shape[0], 200);
  EXPECT_EQ(lg->shape[1], 10);
  ist_st_free(&f);
  ist_st_free(&w);
  ist_st_free(&l);
  expect_one_line_error(run("export --checkpoint " + d + "/student.safetensors"), "--to");
}

// CIFAR-10 binary files of n random records each, written where the program reads them.
void write_cifar10(const std::string &dir, int n) {
  std::vector<char> rec(3073);
  for (const std::string f : {"data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
                              "test_batch"}) {
    std::ofstream o(dir + "/" + f + ".bin", std::ios::binary);
    for (int i = 0; i < n; i++) {
      rec[0] = (char)(i % 10);
      for (size_t p = 1; p < rec.size(); p++) rec[p] = (char)((p * 31 + i * 7 + f.size()) % 251);
      o.write(rec.data(), (std::streamsize)rec.size());
    }
  }
}

TEST(Program, ResNet18OnCifarRunsTheWholeFlow) {
  std::string d = tmp_dir("cifar"), data = tmp_dir("cifar_data");
  write_cifar10(data, 2);
  Result r = run("run --dataset cifar10 --data " + data + " --model resnet18-cifar --setting 2-44-8-8-8 --out " + d +
                 " --batch 2 --teacher-epochs 1 --epochs 1 --l2-iters 2 --bn-recalib 1 --log-every 0");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("RESULT teacher"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("layer4.0.downsample.0"), std::string::npos) << "the per-layer report";
  Result e = run("eval --dataset cifar10 --data " + data + " --bn-recalib 0 --checkpoint " + d + "/student.compressed.safetensors");
  ASSERT_EQ(e.code, 0) << e.out;
  EXPECT_NE(e.out.find("on 2 images"), std::string::npos) << e.out;
  expect_one_line_error(run("run --dataset cifar10 --model resnet18-cifar --out " + d), "--data");
  expect_one_line_error(run("run --dataset cifar10 --data " + data + " --model cnn3 --batch 2 --out " + d), "do not fit");
}

TEST(Program, SameSeedGivesTheSameCheckpoint) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  std::string a = tmp_dir("seed_a"), b = tmp_dir("seed_b");
  const std::string flags = " --train-limit 256 --test-limit 64 --teacher-epochs 1 --seed 7 --log-every 0";
  ASSERT_EQ(run("teacher --out " + a + flags).code, 0);
  ASSERT_EQ(run("teacher --out " + b + flags).code, 0);
  auto slurp = [](const std::string &p) {
    std::ifstream f(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  };
  std::string ca = slurp(a + "/teacher.safetensors"), cb = slurp(b + "/teacher.safetensors");
  EXPECT_GT(ca.size(), 200000u);
  EXPECT_TRUE(ca == cb) << "two runs with the same seed wrote different parameters";
}

// --device cuda where it cannot run: one line naming the flag, exit 1, before any work.
TEST(Program, DeviceCudaWithoutAGpuIsOneLineError) {
  const std::string d = tmp_dir("nogpu");
#ifdef INSITU_HAVE_CUDA
  if (ist_test_cuda_mode()) GTEST_SKIP() << "a GPU is here: --device cuda runs";
  Result r = run("teacher --device cuda --out " + d);
  expect_one_line_error(r, "--device cuda");
  EXPECT_EQ(r.code, 1);
#else
  Result r = run("teacher --device cuda --out " + d);
  expect_one_line_error(r, "--device: 'cuda' is not available in this build");
  EXPECT_EQ(r.code, 1);
#endif
  expect_one_line_error(run("teacher --device tpu --out " + d), "--device");
}

#ifdef INSITU_HAVE_CUDA
std::string slurp_file(const std::string &p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// The accuracy a run printed last ("... test loss L acc A% ...").
double last_test_acc(const std::string &out) {
  const size_t at = out.rfind("| test loss");
  if (at == std::string::npos) return -1;
  const size_t acc = out.find("acc ", at);
  return acc == std::string::npos ? -1 : atof(out.c_str() + acc + 4);
}

// The whole cnn3 flow on the GPU at a short schedule, against the same flow on the CPU: both
// finish, and the teacher's test accuracy agrees within 3 points (the GPU sums in other orders
// and its convs may round through TF32, so the runs drift apart but learn the same).
TEST(Program, DeviceCudaRunsTheWholeFlowLikeTheCpu) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  if (!ist_test_cuda_mode()) GTEST_SKIP() << "no GPU here";
  const std::string g = tmp_dir("gpu_flow"), c = tmp_dir("cpu_flow");
  const std::string flags =
      " --train-limit 2560 --test-limit 500 --teacher-epochs 1 --epochs 1 --l2-iters 100 --log-every 10 --seed 3";
  Result rg = run("run --device cuda --out " + g + flags), rc = run("run --device cpu --out " + c + flags);
  ASSERT_EQ(rg.code, 0) << rg.out;
  ASSERT_EQ(rc.code, 0) << rc.out;
  EXPECT_NE(rg.out.find("RESULT teacher"), std::string::npos) << rg.out;
  const double ag = last_test_acc(rg.out), ac = last_test_acc(rc.out);
  EXPECT_NEAR(ag, ac, 3.0) << "student test accuracy, GPU vs CPU\n" << rg.out << "\n" << rc.out;
}

// Determinism on one GPU: the same seed writes the same checkpoint, bit for bit.
TEST(Program, DeviceCudaSameSeedGivesTheSameCheckpoint) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  if (!ist_test_cuda_mode()) GTEST_SKIP() << "no GPU here";
  const std::string a = tmp_dir("gpu_seed_a"), b = tmp_dir("gpu_seed_b");
  const std::string flags = " --device cuda --train-limit 1024 --test-limit 64 --teacher-epochs 1 --seed 7 --log-every 0";
  ASSERT_EQ(run("teacher --out " + a + flags).code, 0);
  ASSERT_EQ(run("teacher --out " + b + flags).code, 0);
  const std::string ca = slurp_file(a + "/teacher.safetensors"), cb = slurp_file(b + "/teacher.safetensors");
  EXPECT_GT(ca.size(), 200000u);
  EXPECT_TRUE(ca == cb) << "two GPU runs with the same seed wrote different parameters";
}
#endif

}  // namespace
