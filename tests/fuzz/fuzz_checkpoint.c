/* libFuzzer: a checkpoint file becoming a model, as `insitu eval` does it: its metadata into a
 * configuration (arch, layers, classes, input), the model built, then its tensors loaded, both as
 * a plain file and as a .compressed one. Models other than cnn3 stop after the configuration (a
 * large model per input would be too slow, and the same loading code runs for every model). */
#include <math.h>

#include "host/safetensors.h"
#include "kernels/backend.h"
#include "models/model.h"
#include "tests/fuzz/fuzz_util.h"

static void save_seeds(const char *setting, const char *name) {
  ist_model_config cfg;
  memset(&cfg, 0, sizeof cfg);
  if (ist_setting_parse(setting, &cfg.global) != IST_OK) abort();
  ist_model m;
  if (ist_model_create("cnn3", ist_backend_cpu(), 1, &cfg, &m) != IST_OK) abort();
  ist_model_init_params(&m, 1);
  char path[1024], seed[256];
  fuzz_path(path, sizeof path, "seed.safetensors");
  if (ist_model_save(&m, path, "init") != IST_OK) abort();
  snprintf(seed, sizeof seed, "%s_plain", name);
  fuzz_seed_file(seed, path);
  fuzz_path(path, sizeof path, "seed.compressed.safetensors");
  if (ist_model_save_compressed(&m, path) != IST_OK) abort();
  snprintf(seed, sizeof seed, "%s_compressed", name);
  fuzz_seed_file(seed, path);
  ist_model_destroy(&m);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  if (fuzz_seed_dir()) {
    save_seeds("2-16-4-4-4", "cnn3_2-16-4-4-4");
    save_seeds("1-2-1-2-3", "cnn3_1-2-1-2-3");
    exit(0);
  }
  return 0;
}

static void load(const char *path) {
  ist_model_config base, cfg;
  memset(&base, 0, sizeof base);
  char arch[32];
  if (ist_checkpoint_config(path, &base, "cnn3", &cfg, arch, sizeof arch) != IST_OK) return;
  if (strcmp(arch, "cnn3")) return;
  ist_model m;
  if (ist_model_create(arch, ist_backend_cpu(), 1, &cfg, &m) != IST_OK) return;
  if (ist_model_load_any(&m, path) == IST_OK) {
    /* A loaded model holds finite values only. */
    for (int i = 0; i < m.nparams; i++)
      for (int64_t k = 0; k < m.params[i].numel; k++)
        if (!isfinite(m.params[i].data[k])) abort();
  }
  ist_model_destroy(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char plain[1024], packed[1024];
  if (!plain[0]) {
    fuzz_path(plain, sizeof plain, "input.safetensors");
    fuzz_path(packed, sizeof packed, "input.compressed.safetensors");
  }
  fuzz_write(plain, data, size);
  fuzz_write(packed, data, size);
  load(plain);
  load(packed);
  return 0;
}
