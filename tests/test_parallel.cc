// Data-parallel training over MPI ranks (2 ranks × batch B = 1 rank × batch 2B; NCCL ranks where a
// GPU is present), runs killed with SIGKILL that resume to the same parameters, and checkpoints
// that are not what they claim.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

extern "C" {
#include "host/safetensors.h"
}

#include "tests/program_util.h"
#ifdef INSITU_HAVE_CUDA
#include "tests/cuda_test_util.h"
#endif

namespace {

std::string tmp_dir(const std::string &name) { return fresh_dir("par_" + name); }

// Largest |a − b| of any tensor, relative to that tensor's largest |b|; -1 if the files do not
// hold the same tensors.
[[maybe_unused]] double max_rel_diff(const std::string &a, const std::string &b) {  // (MPI builds only)
  ist_safetensors fa, fb;
  if (ist_st_read(a.c_str(), &fa) != IST_OK) return -1;
  if (ist_st_read(b.c_str(), &fb) != IST_OK) return ist_st_free(&fa), -1;
  double worst = fa.ntensors == fb.ntensors ? 0 : -1;
  for (int i = 0; worst >= 0 && i < fa.ntensors; i++) {
    const ist_st_tensor *ta = &fa.tensors[i], *tb = ist_st_find(&fb, ta->name);
    if (!tb || tb->nbytes != ta->nbytes) {
      worst = -1;
      break;
    }
    const float *x = (const float *)ta->data, *y = (const float *)tb->data;
    double d = 0, m = 1e-12;
    for (size_t k = 0; k < ta->nbytes / 4; k++) d = std::max(d, (double)std::fabs(x[k] - y[k])), m = std::max(m, (double)std::fabs(y[k]));
    worst = std::max(worst, d / m);
  }
  ist_st_free(&fa);
  ist_st_free(&fb);
  return worst;
}

bool same_bytes(const std::string &a, const std::string &b) {
  std::ifstream fa(a, std::ios::binary), fb(b, std::ios::binary);
  std::string sa((std::istreambuf_iterator<char>(fa)), {}), sb((std::istreambuf_iterator<char>(fb)), {});
  return !sa.empty() && sa == sb;
}

const std::string SMALL =
    " --train-limit 640 --test-limit 200 --threads 1 --log-every 0 --bn-recalib 2 --l2-iters 20 --teacher-epochs 2"
    " --epochs 2";

// Starts insitu in the background, SIGKILLs it as soon as `file` exists, and waits for it.
void kill_when_written(const std::string &args, const std::string &file) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    freopen("/dev/null", "w", stdout);
    execl("/bin/sh", "sh", "-c", ("exec " + std::string(INSITU_BINARY) + " " + args).c_str(), (char *)nullptr);
    _exit(127);
  }
  struct stat sb;
  for (int i = 0; i < 60000 && stat(file.c_str(), &sb) != 0; i++) usleep(1000);
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run finished before it was killed: make it longer";
}

TEST(Resume, KilledTeacherAndStudentRunsEndWithTheUninterruptedParameters) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const std::string ref = tmp_dir("ref"), cut = tmp_dir("cut"), flags = SMALL + " --batch 16 --checkpoint-every 3";
  for (const std::string &d : {ref, cut}) ASSERT_EQ(run("teacher --out " + d + flags).code, 0);
  ASSERT_EQ(remove((cut + "/teacher.safetensors").c_str()), 0);
  ASSERT_EQ(remove((cut + "/teacher.state.safetensors").c_str()), 0);
  kill_when_written("teacher --out " + cut + flags, cut + "/teacher.state.safetensors");
  Result r = run("teacher --resume --out " + cut + flags);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("[teacher] resuming from " + cut + "/teacher.state.safetensors at epoch 1, step 3"), std::string::npos)
      << r.out;
  EXPECT_TRUE(same_bytes(ref + "/teacher.safetensors", cut + "/teacher.safetensors"));

  for (const std::string &d : {ref, cut}) ASSERT_EQ(run("init --out " + d + flags).code, 0);
  ASSERT_EQ(run("distill --out " + ref + flags).code, 0);
  kill_when_written("distill --out " + cut + flags, cut + "/distill.state.safetensors");
  r = run("distill --resume --out " + cut + flags);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(same_bytes(ref + "/student.safetensors", cut + "/student.safetensors"));
  // A finished stage resumes to its end at once; a state from another setting is refused.
  r = run("distill --resume --out " + cut + flags);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out.find("step 1/"), std::string::npos) << "nothing left to train: " << r.out;
  r = run("distill --resume --out " + cut + flags + " --lr 0.001");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("distill.state.safetensors: saved by a run with other flags"), std::string::npos) << r.out;
}

#ifdef INSITU_HAVE_CUDA
// The same on the GPU: a run killed mid-epoch resumes (parameters, moments, device-side progress
// sums) to the uninterrupted run's parameters, bit for bit.
TEST(Resume, KilledGpuTeacherRunEndsWithTheUninterruptedParameters) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  if (!ist_test_cuda_mode()) GTEST_SKIP() << "no GPU here";
  const std::string ref = tmp_dir("gpu_ref"), cut = tmp_dir("gpu_cut"),
                    flags = SMALL + " --device cuda --batch 16 --checkpoint-every 3";
  ASSERT_EQ(run("teacher --out " + ref + flags).code, 0);
  kill_when_written("teacher --out " + cut + flags, cut + "/teacher.state.safetensors");
  Result r = run("teacher --resume --out " + cut + flags);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("[teacher] resuming from"), std::string::npos) << r.out;
  EXPECT_TRUE(same_bytes(ref + "/teacher.safetensors", cut + "/teacher.safetensors"));
}
#endif

TEST(Checkpoints, TruncatedForeignAndMistypedFilesAreNamedErrors) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const std::string d = tmp_dir("bad");
  ASSERT_EQ(run("teacher --out " + d + SMALL + " --teacher-epochs 1 --batch 32").code, 0);
  std::ifstream in(d + "/teacher.safetensors", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  std::ofstream(d + "/cut.safetensors", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  expect_one_line_error(run("eval --checkpoint " + d + "/cut.safetensors"), "cut.safetensors");
  // A cnn3 checkpoint is not a ResNet-18 teacher, nor a training state.
  expect_one_line_error(run("init --out " + d + SMALL + " --model resnet18-cifar --teacher " + d + "/teacher.safetensors"),
                        "checkpoint of a cnn3, the model is a resnet18-cifar");
  std::ofstream(d + "/distill.state.safetensors", std::ios::binary) << bytes;
  expect_one_line_error(run("distill --resume --out " + d + SMALL + " --from " + d + "/teacher.safetensors"),
                        "not an insitu training state");
  // conv1.weight stored as I32.
  std::vector<int32_t> ints(32 * 25, 1);
  ist_st_tensor t{};
  snprintf(t.name, sizeof t.name, "conv1.weight");
  t.dtype = IST_I32, t.ndim = 4, t.shape[0] = 32, t.shape[1] = 1, t.shape[2] = 5, t.shape[3] = 5;
  t.data = ints.data(), t.nbytes = ints.size() * 4;
  ist_st_meta meta[2] = {{"arch", "cnn3"}, {"layers", "*=dense"}};
  ASSERT_EQ(ist_st_write((d + "/ints.safetensors").c_str(), &t, 1, meta, 2), IST_OK);
  expect_one_line_error(run("eval --checkpoint " + d + "/ints.safetensors"), "conv1.weight has another dtype");
}

#ifdef INSITU_HAVE_MPI
// mpirun as the CI runs it: as root, in a container, 2 ranks on 2 cores. Under the sanitizers,
// OpenMPI's own allocations (MPI_Init's, never freed) would fail LeakSanitizer: leak checks stay on
// for every single-process run, off for the ranks.
std::string mpirun(int ranks) {
  return "ASAN_OPTIONS=detect_leaks=0 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 300 mpirun -np " +
         std::to_string(ranks) +
         " --oversubscribe --mca btl_vader_single_copy_mechanism none ";
}

Result run_mpi(int ranks, const std::string &args) {
  return run_shell(mpirun(ranks) + INSITU_BINARY + " " + args);
}

// 2 ranks × batch 16 with synchronized BatchNorm take the same steps as 1 rank × batch 32: the
// teacher (cross-entropy), and from one teacher and ℓ2 initialization the 4-bit student (KD,
// orthogonality, generated convs), end with the same parameters up to float rounding. (The ℓ2
// projection itself is not compared: its factors are defined up to rotations, so it magnifies
// float-rounding differences of the teacher.)
TEST(DataParallel, TwoRanksOfBatchBEqualOneRankOfBatch2B) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const std::string one = tmp_dir("one"), two = tmp_dir("two"), flags = SMALL + " --sync-bn";
  Result r1 = run("teacher --out " + one + flags + " --batch 32 --comm none");
  ASSERT_EQ(r1.code, 0) << r1.out;
  Result r2 = run_mpi(2, "teacher --out " + two + flags + " --batch 16 --comm mpi");
  ASSERT_EQ(r2.code, 0) << r2.out;
  EXPECT_NE(r2.out.find("data-parallel over 2 ranks (mpi, synchronized BatchNorm)"), std::string::npos) << r2.out;
  EXPECT_EQ(r2.out.find("teacher: test accuracy"), r2.out.rfind("teacher: test accuracy")) << "only rank 0 prints";
  const double teacher = max_rel_diff(one + "/teacher.safetensors", two + "/teacher.safetensors");
  EXPECT_GE(teacher, 0);
  EXPECT_LT(teacher, 2e-3) << "largest parameter difference relative to its tensor's largest value";

  ASSERT_EQ(run("init --out " + one + flags).code, 0);
  const std::string from = " --teacher " + one + "/teacher.safetensors --from " + one + "/student_init.safetensors";
  r1 = run("distill --out " + one + flags + from + " --batch 32");
  ASSERT_EQ(r1.code, 0) << r1.out;
  r2 = run_mpi(2, "distill --out " + two + flags + from + " --batch 16");
  ASSERT_EQ(r2.code, 0) << r2.out;
  const double student = max_rel_diff(one + "/student.safetensors", two + "/student.safetensors");
  EXPECT_GE(student, 0);
  EXPECT_LT(student, 2e-3);
}

// Ranks started with different flags fail on every rank with one clear line each, and exit.
TEST(DataParallel, RanksThatDisagreeFailOnEveryRankWithoutHanging) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const std::string d = tmp_dir("disagree");
  Result r = run_shell(mpirun(2) + "sh -c 'exec " + INSITU_BINARY + " teacher --out " + d + SMALL +
                       " --seed $((1 + OMPI_COMM_WORLD_RANK))'");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.code, 124) << "timed out: a rank hung";
  for (const char *rank : {"rank 0 of 2", "rank 1 of 2"})
    EXPECT_NE(r.out.find(std::string("insitu: error (") + rank + "): the command lines differ between rank 0 and rank 1"),
              std::string::npos)
        << r.out;
}
// NCCL ranks (host buffers staged through the GPU) give the MPI ranks' result. Needs a GPU: on a
// machine without one the test says so and skips.
TEST(DataParallel, NcclRanksMatchMpiRanks) {
#ifndef INSITU_HAVE_NCCL
  GTEST_SKIP() << "built without NCCL";
#else
  if (run_shell("nvidia-smi -L").code != 0) GTEST_SKIP() << "no GPU here (nvidia-smi -L failed): the NCCL path is unverified";
  if (!have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const std::string m = tmp_dir("mpi_ranks"), c = tmp_dir("nccl_ranks"), flags = SMALL + " --sync-bn --batch 16";
  Result a = run_mpi(2, "teacher --out " + m + flags + " --comm mpi");
  ASSERT_EQ(a.code, 0) << a.out;
  Result b = run_mpi(2, "teacher --out " + c + flags + " --comm nccl");
  ASSERT_EQ(b.code, 0) << b.out;
  EXPECT_NE(b.out.find("data-parallel over 2 ranks (nccl"), std::string::npos) << b.out;
  const double diff = max_rel_diff(m + "/teacher.safetensors", c + "/teacher.safetensors");
  EXPECT_GE(diff, 0);
  EXPECT_LT(diff, 1e-4) << "the same sums, reduced by NCCL instead of MPI";
#endif
}
#else
TEST(DataParallel, NeedsMpi) { GTEST_SKIP() << "built without MPI (apt-get install libopenmpi-dev openmpi-bin)"; }
#endif

}  // namespace
