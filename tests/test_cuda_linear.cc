// The CUDA fully-connected layer (kernels/cuda/linear.cu, cuBLAS) against the CPU backend: forward
// with and without bias, backward with dx overwritten (or NULL) and dw, db accumulating.
#include "cuda_conv_test_util.h"
#include "cuda_test_util.h"

#include "kernels/cuda/cuda_ops.h"

namespace {

struct Case {
  int n, in, out;
  bool bias, dx;
};

void PrintTo(const Case &c, std::ostream *os) {
  *os << c.n << "x" << c.in << " -> " << c.out << (c.bias ? " bias" : "") << (c.dx ? "" : " no-dx");
}

class CudaLinear : public ::testing::TestWithParam<Case> {};

TEST_P(CudaLinear, ForwardAndBackwardMatchCpu) {
  IST_REQUIRE_CUDA();
  const Case c = GetParam();
  const size_t xn = (size_t)c.n * c.in, wn = (size_t)c.out * c.in, yn = (size_t)c.n * c.out;
  const auto x = randn(xn, 21), w = randn(wn, 22, 0.3f), b = randn(c.out, 23), dy = randn(yn, 24);
  const auto dw0 = randn(wn, 25), db0 = randn(c.out, 26);
  const ist_backend *cpu = ist_backend_cpu();
  std::vector<float> y(yn), dx(xn), dw = dw0, db = db0;
  cpu->linear_forward(c.n, c.in, c.out, x.data(), w.data(), c.bias ? b.data() : nullptr, y.data());
  cpu->linear_backward(c.n, c.in, c.out, dy.data(), x.data(), w.data(), c.dx ? dx.data() : nullptr, dw.data(),
                       c.bias ? db.data() : nullptr);

  DevVec gx(x), gw(w), gb(b), gdy(dy), gy = DevVec::poisoned(yn), gdx = DevVec::poisoned(xn), gdw(dw0), gdb(db0);
  ist_cuda_linear_forward(c.n, c.in, c.out, gx.p, gw.p, c.bias ? gb.p : nullptr, gy.p);
  ist_cuda_linear_backward(c.n, c.in, c.out, gdy.p, gx.p, gw.p, c.dx ? gdx.p : nullptr, gdw.p,
                           c.bias ? gdb.p : nullptr);
  expect_no_cuda_failure("linear");
  expect_close(gy.get(), y, "y");
  if (c.dx) expect_close(gdx.get(), dx, "dx");
  expect_close(gdw.get(), dw, "dw accumulated");
  expect_close(gdb.get(), c.bias ? db : db0, "db");
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaLinear,
                         ::testing::Values(Case{3, 7, 5, true, true}, Case{17, 33, 10, true, true},
                                           Case{1, 64, 65, false, true}, Case{8, 5, 1, true, false},
                                           Case{33, 1, 9, true, true}));

} // namespace
