// SPEC §7's cost model and the roofline against values computed by hand.
#include <gtest/gtest.h>

#include <cmath>

extern "C" {
#include "train/hw.h"
}

#include "tests/program_util.h"

namespace {

ist_conv_layer layer(const char *setting, int co, int ci, int k, int hw) {
  ist_conv_setting set;
  EXPECT_EQ(ist_setting_parse(setting, &set), IST_OK);
  ist_conv_layer l;
  EXPECT_EQ(ist_conv_layer_init(&l, "conv", 1, ci, hw, hw, co, k, 1, k / 2, 1, &set, IST_EXEC_MATERIALIZE), IST_OK)
      << ist_last_error();
  return l;
}

// The paper's example: a 16-bit 128×128×3×3 kernel at 2-40-4-4-4.
TEST(Hw, PaperExampleByHand) {
  ist_hw_params p = ist_hw_defaults();
  ist_conv_layer l = layer("2-40-4-4-4", 128, 128, 3, 8);
  ist_hw_layer h = ist_hw_layer_cost(&l, &p);
  // 400 + 2·(50 + 10) + 4·42·20 µm / (c / 2.25) = 520 + 25.217 ps (the paper rounds the last to 25.2).
  EXPECT_NEAR(h.t_gen_ps, 520 + 4 * 42 * 20e-6 * 2.25 / 299792458.0 * 1e12, 1e-9);
  EXPECT_NEAR(h.t_gen_ps, 545.2, 0.05);
  EXPECT_DOUBLE_EQ(h.dense_bytes, 128.0 * 128 * 9 * 2);  // 294,912 bytes at 16 bits
  // |Wb| = 40·2·9 = 720, |U| = 40·128·2 = 10,240, |V| = 128·40 = 5,120; all at 4 bits.
  EXPECT_DOUBLE_EQ(h.bytes, (720 + 10240 + 5120) * 4 / 8.0);
  EXPECT_NEAR(h.memory_ratio, 64320.0 / (16 * 147456.0), 1e-12);
  const double bw = 34 * 1073741824.0 / 1e12;  // bytes per ps
  EXPECT_NEAR(h.load_dense_ps, 294912 / bw, 1e-6);
  EXPECT_NEAR(h.saved_ps, (294912 - 8040) / bw, 1e-6);  // ≈ 7.858 µs
  EXPECT_NEAR(h.saved_ps, 7.858e6, 1e3);
  EXPECT_NEAR(h.net_saved_ps, h.saved_ps - h.t_gen_ps, 1e-6);
  EXPECT_NEAR(h.fraction_saved, h.net_saved_ps / h.load_dense_ps, 1e-12);
  EXPECT_EQ(h.dacs_b, 18);  // the Bi·k² ring bank of Wb
  EXPECT_EQ(h.dacs_u, 2);
  EXPECT_EQ(h.dacs_v, 40);
  EXPECT_EQ(h.bits_b + h.bits_u + h.bits_v, 12);
}

TEST(Hw, LevelsThatAreOffAddNoRingsAndDenseLayersNoGenerator) {
  ist_hw_params p = ist_hw_defaults();
  ist_conv_layer pw = layer("2-40-4-4-4", 128, 128, 1, 8);  // 1×1: level 1 off
  ist_hw_layer h = ist_hw_layer_cost(&pw, &p);
  EXPECT_NEAR(h.t_gen_ps, 520 + 4 * 40 * 20e-6 * 2.25 / 299792458.0 * 1e12, 1e-9);
  EXPECT_DOUBLE_EQ(h.bytes, (40 * 128 + 128 * 40) * 4 / 8.0);  // free Wc (40 × 128) and V
  ist_conv_layer d = layer("dense", 128, 128, 3, 8);
  h = ist_hw_layer_cost(&d, &p);
  EXPECT_EQ(h.t_gen_ps, 0);
  EXPECT_EQ(h.memory_ratio, 1);
  EXPECT_EQ(h.saved_ps, 0);
}

// A dense 1×1 conv, 4 → 4 channels on a 2×2 map, batch 1: 2·16·4 = 128 FLOPs; 16 weights at 16 bits
// (32 bytes) + 16 input and 16 output activations at 16 bits (64 bytes) = 96 bytes.
TEST(Hw, RooflinePlacesLayersByHand) {
  ist_hw_params p = ist_hw_defaults();
  ist_accelerator a = {"toy", 1.0, 100.0};  // 1 TFLOP/s, 100 GB/s: ridge at 10 FLOP/byte
  ist_conv_layer l = layer("dense", 4, 4, 1, 2);
  ist_roof_point r = ist_roofline(&l, 0, 1, 16, &p, &a);
  EXPECT_DOUBLE_EQ(r.flops, 128);
  EXPECT_DOUBLE_EQ(r.bytes, 96);
  EXPECT_TRUE(r.memory_bound);
  EXPECT_NEAR(r.attainable_tflops, 128.0 / 96 * 100e9 / 1e12, 1e-12);
  EXPECT_NEAR(r.us, 128 / (r.attainable_tflops * 1e12) * 1e6, 1e-15);
  // 3×3, 64 → 64 on 32×32, batch 8: 2·36,864·1,024·8 FLOPs against 73,728 + 2·65,536·8·2 bytes.
  ist_conv_layer big = layer("2-16-4-4-4", 64, 64, 3, 32);
  ist_roof_point dense = ist_roofline(&big, 0, 8, 16, &p, &a), gen = ist_roofline(&big, 1, 8, 16, &p, &a);
  EXPECT_DOUBLE_EQ(dense.flops, 2.0 * 36864 * 1024 * 8);
  EXPECT_DOUBLE_EQ(dense.bytes, 73728 + 2.0 * 65536 * 8 * 2);
  EXPECT_FALSE(dense.memory_bound);
  EXPECT_DOUBLE_EQ(gen.flops, dense.flops + 2.0 * 16 * 64 * 2 * 9 + 2.0 * 64 * 16 * 64 * 9);
  EXPECT_LT(gen.bytes, dense.bytes);
}

TEST(Hw, ProgramPrintsBothTablesAndRejectsUnknownAccelerators) {
  Result r = run("hw --model cnn3 --setting 2-16-4-4-4 --accelerator a100");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("Roofline on a100 (312 TFLOP/s, 2039 GB/s)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\nconv2 "), std::string::npos) << r.out;
  expect_one_line_error(run("hw --accelerator tpu9"), "--accelerator");
  expect_one_line_error(run("hw --qw 0"), "--qw, --sram-gibs, --roofline-act-bits must be > 0");
  Result q = run("hw --model cnn3 --setting 2-16-4-4-4 --qw 8 --sram-gibs 17");
  ASSERT_EQ(q.code, 0) << q.out;
  EXPECT_NE(q.out.find("(qw = 8 bits, SRAM 17 GiB/s;"), std::string::npos) << q.out;
}

}  // namespace
