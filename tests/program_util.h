// What the tests share around files and the program: fresh scratch folders, whether Debian's
// FashionMNIST is installed, and running the insitu program as a user does.
#pragma once
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>

// An empty folder "insitu_<name>" under the test temp directory (emptied if it exists).
inline std::string fresh_dir(const std::string &name) {
  const std::string d = std::string(::testing::TempDir()) + "insitu_" + name;
  EXPECT_EQ(system(("rm -rf '" + d + "' && mkdir -p '" + d + "'").c_str()), 0);
  return d;
}

// Where the program finds FashionMNIST by default: $INSITU_FASHION_MNIST, else Debian's folder.
inline bool have_fashion_mnist() {
  struct stat st;
  const char *env = getenv("INSITU_FASHION_MNIST");
  const std::string dir = env && *env ? env : "/usr/share/datasets/fashion-mnist";
  return stat((dir + "/t10k-labels-idx1-ubyte.gz").c_str(), &st) == 0;
}

// Whether gnuplot (the plots of explore, analyze and hw) is on the PATH.
inline bool have_gnuplot() { return system("command -v gnuplot >/dev/null 2>&1") == 0; }

struct Result {
  int code;
  std::string out;
};

// Runs a shell command line, stdout and stderr together.
inline Result run_shell(const std::string &line) {
  std::string cmd = line + " 2>&1";
  FILE *p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  while (p && fgets(buf.data(), buf.size(), p)) out += buf.data();
  int status = p ? pclose(p) : -1;
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// Runs `insitu args`.
inline Result run(const std::string &args) { return run_shell(std::string(INSITU_BINARY) + " " + args); }

// A failing run that printed exactly one line, "insitu: error: …", mentioning `mentions`.
inline void expect_one_line_error(const Result &r, const std::string &mentions) {
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_EQ(r.out.rfind("insitu: error: ", 0), 0u) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_NE(r.out.find(mentions), std::string::npos) << r.out;
}
