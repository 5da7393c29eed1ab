/* The optional data features of a build (INSITU_JPEG, INSITU_SVHN in CMakeLists.txt): which data
 * sets it can read, and, for those whose library was missing at build time, loaders that fail
 * with a one-line error instead of a link error. */
#include <stddef.h>
#include <string.h>

#include "host/dataset.h"

ist_status ist_dataset_supported(const char *dataset) {
#ifndef INSITU_HAVE_JPEG
  if (!strcmp(dataset, "imagefolder") || !strcmp(dataset, "tinyimagenet"))
    return ist_fail(IST_ERR_ARG, "--dataset %s: this build has no JPEG support (libturbojpeg not found at build time)",
                    dataset);
#endif
#ifndef INSITU_HAVE_SVHN
  if (!strcmp(dataset, "svhn"))
    return ist_fail(IST_ERR_ARG, "--dataset svhn: this build has no SVHN support (libmatio not found at build time)");
#endif
  (void)dataset;
  return IST_OK;
}

#ifndef INSITU_HAVE_SVHN
ist_status ist_svhn_load(const char *dir, const char *split, int64_t limit, ist_dataset *out) {
  (void)dir, (void)split, (void)limit;
  memset(out, 0, sizeof *out);
  return ist_dataset_supported("svhn");
}
#endif

#ifndef INSITU_HAVE_JPEG
ist_status ist_image_folder_load(const char *dir, const char *split, const ist_jpeg_options *o, int64_t limit,
                                 ist_dataset *out) {
  (void)dir, (void)split, (void)o, (void)limit;
  memset(out, 0, sizeof *out);
  return ist_dataset_supported("imagefolder");
}
int ist_image_folder_classes(const char *dir) {
  (void)dir;
  return 0;
}
ist_status ist_tiny_imagenet_load(const char *dir, const char *split, const ist_jpeg_options *o, int64_t limit,
                                  ist_dataset *out) {
  (void)dir, (void)split, (void)o, (void)limit;
  memset(out, 0, sizeof *out);
  return ist_dataset_supported("tinyimagenet");
}
/* No loader above makes file data sets, so a dataset never holds files here. */
ist_status ist_image_files_batch(const ist_dataset *d, const int32_t *order, int64_t start, int n, float *x,
                                 int32_t *y, const ist_augment *aug, uint64_t seed) {
  (void)d, (void)order, (void)start, (void)n, (void)x, (void)y, (void)aug, (void)seed;
  return ist_dataset_supported("imagefolder");
}
void ist_image_files_free(ist_image_files *f) { (void)f; }
#endif
