// Running the insitu program as a user does, from the tests.
#pragma once
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <string>

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
