/* libFuzzer: the JPEG folder loader. The input is the one image of an ImageFolder tree, in train/
 * and val/: loading the validation split checks its header (size, frame, pixel limit), then a
 * batch decodes it without and with augmentation (random-resized crop, flip, jitter). A small
 * pixel limit keeps each input's memory small. */
#include <turbojpeg.h>

#include "host/dataset.h"
#include "tests/fuzz/fuzz_util.h"

#define FUZZ_SIZE 16
#define FUZZ_MAX_PIXELS (1 << 20)

static char root[1024], train_img[1200], val_img[1200];

static void seed_jpeg(const char *name, int w, int h, int pf, int samp, int flags) {
  const int ch = tjPixelSize[pf];
  unsigned char *raw = malloc((size_t)w * h * ch);
  for (int i = 0; i < w * h * ch; i++) raw[i] = (unsigned char)(i * 37 + i / 7);
  tjhandle tj = tjInitCompress();
  unsigned char *out = NULL;
  unsigned long size = 0;
  if (!tj || tjCompress2(tj, raw, w, 0, h, pf, &out, &size, samp, 90, flags) != 0) abort();
  fuzz_seed(name, out, size);
  tjFree(out);
  tjDestroy(tj);
  free(raw);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  char p[1100];
  fuzz_path(root, sizeof root, "folder");
  fuzz_mkdir(root);
  const char *sub[] = {"train", "train/a", "val", "val/a"};
  for (int i = 0; i < 4; i++) {
    snprintf(p, sizeof p, "%s/%s", root, sub[i]);
    fuzz_mkdir(p);
  }
  snprintf(train_img, sizeof train_img, "%s/train/a/x.jpg", root);
  snprintf(val_img, sizeof val_img, "%s/val/a/x.jpg", root);
  if (fuzz_seed_dir()) {
    seed_jpeg("rgb_444_24x20", 24, 20, TJPF_RGB, TJSAMP_444, 0);
    seed_jpeg("rgb_420_33x17", 33, 17, TJPF_RGB, TJSAMP_420, 0);
    seed_jpeg("grey_16x16", 16, 16, TJPF_GRAY, TJSAMP_GRAY, 0);
    seed_jpeg("cmyk_16x16", 16, 16, TJPF_CMYK, TJSAMP_444, 0);
    seed_jpeg("progressive_40x24", 40, 24, TJPF_RGB, TJSAMP_422, TJFLAG_PROGRESSIVE);
    exit(0);
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_write(train_img, data, size);
  fuzz_write(val_img, data, size);
  const ist_jpeg_options o = {.size = FUZZ_SIZE, .eval_resize = 1.14f, .threads = 1, .max_pixels = FUZZ_MAX_PIXELS};
  float x[3 * FUZZ_SIZE * FUZZ_SIZE];
  int32_t y[1];
  ist_dataset d;
  if (ist_image_folder_load(root, "val", &o, 0, &d) == IST_OK) {
    ist_dataset_batch(&d, NULL, 0, 1, x, y, NULL, 0);
    ist_dataset_free(&d);
  }
  if (ist_image_folder_load(root, "train", &o, 0, &d) == IST_OK) {
    const ist_augment aug = {.flip = 1, .crop_pad = 2, .rrc_min_scale = 0.08f, .jitter = 0.4f};
    ist_dataset_batch(&d, NULL, 0, 1, x, y, &aug, size);
    ist_dataset_free(&d);
  }
  return 0;
}
