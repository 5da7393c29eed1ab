// A whole network on the CPU backend with a fixed random batch, for the network tests: its loss
// (and gradients) on that batch, and its convs by name.
#pragma once
#include <cstring>

#include "test_util.h"

extern "C" {
#include "models/model.h"
}

struct Net {
  ist_model m{};
  Net(const char *arch, const char *setting, int batch, int size, int classes = 0) {
    ist_model_config cfg{};
    EXPECT_EQ(ist_setting_parse(setting, &cfg.global), IST_OK);
    cfg.in_h = cfg.in_w = size;
    cfg.classes = classes;
    EXPECT_EQ(ist_model_create(arch, ist_backend_cpu(), batch, &cfg, &m), IST_OK) << ist_last_error();
    EXPECT_EQ(ist_model_init_params(&m, 11), IST_OK) << ist_last_error();
    auto x = randn((size_t)batch * 3 * size * size, 12);
    std::vector<int32_t> y(batch);
    for (int i = 0; i < batch; i++) y[i] = i % m.classes;
    ist_model_set_batch(&m, batch, x.data(), y.data());
  }
  ~Net() { ist_model_destroy(&m); }
  Net(const Net &) = delete;
  Net &operator=(const Net &) = delete;
  double loss(int backward) {
    ist_model_zero_grad(&m);
    m.forward(&m, m.batch, 1);
    double l = model_cross_entropy(&m, m.batch, m.dlogits);
    if (backward) m.backward(&m, m.batch);
    return l;
  }
  const ist_conv_layer *conv(const char *name) const {
    for (int i = 0; i < m.nconvs; i++)
      if (!strcmp(m.convs[i]->name, name)) return m.convs[i];
    return nullptr;
  }
};
