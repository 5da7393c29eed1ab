/* libFuzzer: the safetensors reader (header JSON, offsets, shapes, metadata) on any bytes. */
#include "host/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

static void write_seeds(void) {
  const float v[6] = {1, 2, 3, 4, 5, 6};
  const int32_t l[2] = {7, 8};
  ist_st_tensor t[2] = {{.name = "w", .dtype = IST_F32, .ndim = 2, .shape = {2, 3}, .data = v, .nbytes = sizeof v},
                        {.name = "labels", .dtype = IST_I32, .ndim = 1, .shape = {2}, .data = l, .nbytes = sizeof l}};
  ist_st_meta m[2] = {{"arch", "cnn3"}, {"layers", "*=2-16-4-4-4"}};
  char path[1024];
  fuzz_path(path, sizeof path, "seed.safetensors");
  if (ist_st_write(path, t, 2, m, 2) != IST_OK) abort();
  fuzz_seed_file("two_tensors_meta", path);
  if (ist_st_write(path, t, 1, NULL, 0) != IST_OK) abort();
  fuzz_seed_file("one_tensor", path);
  if (ist_st_write(path, t, 0, m, 1) != IST_OK) abort();
  fuzz_seed_file("meta_only", path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  if (fuzz_seed_dir()) {
    write_seeds();
    exit(0);
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char path[1024];
  if (!path[0]) fuzz_path(path, sizeof path, "input.safetensors");
  fuzz_write(path, data, size);
  ist_safetensors f;
  if (ist_st_read(path, &f) != IST_OK) return 0;
  /* Every tensor's bytes lie in the file: touch them all. */
  unsigned sum = 0;
  for (int i = 0; i < f.ntensors; i++) {
    const uint8_t *b = f.tensors[i].data;
    for (size_t k = 0; k < f.tensors[i].nbytes; k++) sum += b[k];
    if (ist_st_find(&f, f.tensors[i].name) == NULL) abort();
  }
  for (int i = 0; i < f.nmeta; i++)
    if (ist_st_meta_get(&f, f.meta[i].key) == NULL) abort();
  ist_st_free(&f);
  return (int)(sum & 0);
}
