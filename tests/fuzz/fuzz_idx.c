/* libFuzzer: the IDX reader (plain and gzip) with the dimension count the magic number gives, and
 * the input as FashionMNIST's image file next to a valid label file. */
#include <zlib.h>

#include "host/dataset.h"
#include "host/idx.h"
#include "tests/fuzz/fuzz_util.h"

/* An IDX file of unsigned bytes: dims, then their product of bytes i·7. */
static size_t idx_bytes(uint8_t *out, int ndim, const int *dims) {
  size_t n = 0, total = 1;
  out[n++] = 0, out[n++] = 0, out[n++] = 8, out[n++] = (uint8_t)ndim;
  for (int d = 0; d < ndim; d++) {
    for (int s = 24; s >= 0; s -= 8) out[n++] = (uint8_t)(dims[d] >> s);
    total *= (size_t)dims[d];
  }
  for (size_t i = 0; i < total; i++) out[n++] = (uint8_t)(i * 7 % 10);
  return n;
}

static void write_gz(const char *path, const void *data, size_t size) {
  gzFile f = gzopen(path, "wb");
  if (!f || gzwrite(f, data, (unsigned)size) != (int)size || gzclose(f) != Z_OK) abort();
}

static char dir[1024], images[1100], labels[1100];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  fuzz_path(dir, sizeof dir, "fmnist");
  fuzz_mkdir(dir);
  snprintf(images, sizeof images, "%s/t10k-images-idx3-ubyte.gz", dir);
  snprintf(labels, sizeof labels, "%s/t10k-labels-idx1-ubyte.gz", dir);
  uint8_t buf[4096];
  const int two[1] = {2};
  write_gz(labels, buf, idx_bytes(buf, 1, two));
  if (fuzz_seed_dir()) {
    const int img[3] = {2, 28, 28}, small[3] = {2, 3, 4}, lab[1] = {5};
    uint8_t *big = malloc(2 * 28 * 28 + 64);
    fuzz_seed("images_2x28x28", big, idx_bytes(big, 3, img));
    fuzz_seed("images_2x3x4", buf, idx_bytes(buf, 3, small));
    fuzz_seed("labels_5", buf, idx_bytes(buf, 1, lab));
    char gz[1100];
    snprintf(gz, sizeof gz, "%s/seed.gz", dir);
    write_gz(gz, buf, idx_bytes(buf, 3, small));
    fuzz_seed_file("images_2x3x4_gz", gz);
    free(big);
    exit(0);
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_write(images, data, size);
  const int ndim = size >= 4 && data[3] >= 1 && data[3] <= 4 ? data[3] : 3;
  int64_t dims[4];
  uint8_t *out;
  if (ist_idx_read_u8(images, ndim, dims, &out) == IST_OK) {
    int64_t total = 1;
    for (int d = 0; d < ndim; d++) total *= dims[d];
    unsigned sum = 0;
    for (int64_t i = 0; i < total; i++) sum += out[i];
    free(out);
    (void)sum;
  }
  ist_dataset d;
  if (ist_fashion_mnist_load(dir, "t10k", 0, &d) == IST_OK) ist_dataset_free(&d);
  return 0;
}
