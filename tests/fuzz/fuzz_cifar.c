/* libFuzzer: the CIFAR binary reader; the input is CIFAR-10's test_batch.bin and CIFAR-100's test.bin. */
#include "host/dataset.h"
#include "tests/fuzz/fuzz_util.h"

static char dir[1024], c10[1100], c100[1100];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  fuzz_path(dir, sizeof dir, "cifar");
  fuzz_mkdir(dir);
  snprintf(c10, sizeof c10, "%s/test_batch.bin", dir);
  snprintf(c100, sizeof c100, "%s/test.bin", dir);
  if (fuzz_seed_dir()) {
    uint8_t rec[2 * 3074];
    for (size_t i = 0; i < sizeof rec; i++) rec[i] = (uint8_t)(i * 13);
    rec[0] = 3, rec[3073] = 9; /* CIFAR-10: label bytes of records 0 and 1 */
    fuzz_seed("cifar10_two_records", rec, 2 * 3073);
    rec[0] = 1, rec[1] = 42, rec[3074] = 2, rec[3075] = 99; /* CIFAR-100: coarse, fine */
    fuzz_seed("cifar100_two_records", rec, 2 * 3074);
    exit(0);
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_write(c10, data, size);
  fuzz_write(c100, data, size);
  ist_dataset d;
  if (ist_cifar_load(dir, 10, "test", 0, &d) == IST_OK) ist_dataset_free(&d);
  if (ist_cifar_load(dir, 100, "test", 1, &d) == IST_OK) ist_dataset_free(&d);
  return 0;
}
