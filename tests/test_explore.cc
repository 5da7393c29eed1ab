// Design-space exploration: the per-layer search against brute force, the Pareto front, and the
// program end to end on a small teacher (CSV, plots, the search's comparison).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

extern "C" {
#include "train/explore.h"
}

#include "tests/program_util.h"

namespace {

// Three layers, four options each: bits and errors chosen so that mixing beats any uniform choice.
std::vector<ist_explore_point> toy() {
  const double bits[4][3] = {{100, 400, 400}, {200, 800, 800}, {300, 1600, 1600}, {400, 3200, 3200}};
  const double err[4][3] = {{5, 40, 30}, {1, 20, 25}, {0.5, 10, 20}, {0.4, 5, 18}};
  std::vector<ist_explore_point> pts(4);
  for (int p = 0; p < 4; p++) {
    pts[p].nlayers = 3;
    for (int l = 0; l < 3; l++) pts[p].bits[l] = bits[p][l], pts[p].err[l] = err[p][l], pts[p].total_err += err[p][l];
    pts[p].accuracy = -1;
  }
  return pts;
}

TEST(Explore, PerLayerSearchFindsTheBruteForceOptimum) {
  auto pts = toy();
  const double fixed = 50, dense = 20000;
  for (double target : {0.05, 0.1, 0.15, 0.2, 0.3, 0.4}) {
    double best = INFINITY;
    for (int a = 0; a < 4; a++)
      for (int b = 0; b < 4; b++)
        for (int c = 0; c < 4; c++)
          if (fixed + pts[a].bits[0] + pts[b].bits[1] + pts[c].bits[2] <= target * dense)
            best = std::min(best, pts[a].err[0] + pts[b].err[1] + pts[c].err[2]);
    int choice[3];
    ist_status st = ist_explore_search(pts.data(), 4, fixed, dense, target, 4000, choice);
    if (!std::isfinite(best)) {
      EXPECT_NE(st, IST_OK) << target;
      continue;
    }
    ASSERT_EQ(st, IST_OK) << ist_last_error();
    double bits = fixed, err = 0;
    for (int l = 0; l < 3; l++) bits += pts[choice[l]].bits[l], err += pts[choice[l]].err[l];
    EXPECT_LE(bits, target * dense) << target;
    EXPECT_DOUBLE_EQ(err, best) << target;
  }
  int choice[3];
  EXPECT_NE(ist_explore_search(pts.data(), 4, 30000, 20000, 0.5, 100, choice), IST_OK) << "fixed bits alone exceed it";
}

TEST(Explore, ParetoFrontKeepsOnlyUndominatedPoints) {
  std::vector<ist_explore_point> pts(4);
  const double ratio[4] = {0.01, 0.02, 0.03, 0.025}, acc[4] = {0.80, 0.85, 0.90, 0.84};
  for (int p = 0; p < 4; p++) pts[p].memory_ratio = ratio[p], pts[p].accuracy = acc[p];
  int front[4];
  ist_explore_pareto(pts.data(), 4, front);
  EXPECT_EQ(std::vector<int>(front, front + 4), (std::vector<int>{1, 1, 1, 0})) << "0.025 / 84% is beaten by 0.02 / 85%";
}

TEST(Explore, ProgramWritesTheGridTheSearchAndThePlots) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  if (!have_gnuplot()) GTEST_SKIP() << "gnuplot is not installed (the explore plots need it)";
  const std::string d = fresh_dir("explore");
  struct stat sb;
  const std::string small = " --train-limit 640 --test-limit 200 --log-every 0 --bn-recalib 2 --out " + d;
  ASSERT_EQ(run("teacher --teacher-epochs 1" + small).code, 0);
  Result r = run("explore --grid-bi 1,2 --grid-bc 8,16 --grid-q 4-4-4,8-8-8 --l2-iters 20 --target-ratio 0.03" + small);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("[explore]   8/8 2-16-8-8-8"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("per-layer search within memory ratio: conv1="), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("best global setting within that ratio: "), std::string::npos) << r.out;
  std::ifstream csv(d + "/explore.csv");
  std::string line;
  int rows = 0;
  while (std::getline(csv, line)) rows++;
  EXPECT_EQ(rows, 1 + 8 + 1) << "header, 8 grid points, the per-layer choice";
  for (const char *png : {"/explore_heat_4-4-4.png", "/explore_heat_8-8-8.png", "/explore_pareto.png"})
    EXPECT_EQ(stat((d + png).c_str(), &sb), 0) << png;
  expect_one_line_error(run("explore --grid-bi 1,x" + small), "--grid-bi");
  expect_one_line_error(run("explore --grid-q 4-4" + small), "--grid-q");
  expect_one_line_error(run("explore --target-ratio 0.0001 --grid-bi 1 --grid-bc 8 --grid-q 4-4-4 --l2-iters 5" + small),
                        "--target-ratio");
}

}  // namespace
