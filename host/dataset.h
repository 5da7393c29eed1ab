/* Image classification data sets (in memory, or JPEG files decoded on worker threads) and the
 * batches drawn from them. */
#ifndef IST_DATASET_H
#define IST_DATASET_H
#include <stdint.h>

#include "host/rng.h"
#include "host/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ist_image_files ist_image_files; /* host/jpeg.c */

typedef struct {
  int64_t n;
  int c, h, w, classes;
  float *images; /* n × c × h × w, normalized; NULL when files is set */
  ist_image_files *files; /* JPEG files decoded (and augmented) batch by batch, or NULL */
  int32_t *labels;
  float mean[4], std[4]; /* per channel: images hold (pixel in [0, 1] − mean) / std */
} ist_dataset;

/* Training-time augmentation (SPEC §4). */
typedef struct {
  int flip;            /* mirror left-right with probability ½ */
  int crop_pad;        /* > 0: pad by this many black pixels on each side, then crop back at a random offset */
  float rrc_min_scale; /* > 0: random-resized crop instead (area ∈ [this, 1] of the image, aspect ratio
                        * ∈ [3/4, 4/3] log-uniform, bilinear back to the image size) */
  float jitter;        /* > 0: brightness, contrast, saturation each scaled by a factor ∈ [1 − j, 1 + j] */
} ist_augment;

/* How JPEG data sets become model inputs. */
typedef struct {
  int size;          /* output height = width */
  float eval_resize; /* without augmentation: shorter side resized to size × this, then the centre
                      * size × size (ImageNet's 256/224); in training (no random-resized crop) the
                      * shorter side becomes size and the centre is cropped */
  int threads;       /* decoding threads (≥ 1) */
  int64_t max_pixels; /* a file whose header declares more pixels fails before decoding (0: IST_JPEG_MAX_PIXELS) */
} ist_jpeg_options;

/* The default bound on a JPEG's width × height (PIL's): what one image may make the loader allocate. */
#define IST_JPEG_MAX_PIXELS 89478485
/* The largest number --max-image-pixels accepts (65535², the format's own limit). */
#define IST_JPEG_MAX_PIXELS_LIMIT ((int64_t)65535 * 65535)

#define IST_FMNIST_DIR "/usr/share/datasets/fashion-mnist"
#define IST_FMNIST_DIR_ENV "INSITU_FASHION_MNIST" /* overrides IST_FMNIST_DIR (a private prefix's copy) */

/* FashionMNIST's default directory: $INSITU_FASHION_MNIST if set, else IST_FMNIST_DIR (Debian's
 * dataset-fashion-mnist). */
const char *ist_fashion_mnist_dir(void);

/* Loads the FashionMNIST split ("train" or "t10k") from dir; limit > 0 keeps the first limit images. */
ist_status ist_fashion_mnist_load(const char *dir, const char *split, int64_t limit, ist_dataset *out);
/* CIFAR-10 (classes 10: data_batch_1..5.bin, test_batch.bin) or CIFAR-100 (classes 100: train.bin,
 * test.bin), binary version, from dir; split "train" or "test"; limit > 0 keeps the first limit. */
ist_status ist_cifar_load(const char *dir, int classes, const char *split, int64_t limit, ist_dataset *out);
/* SVHN (cropped digits): dir/<split>_32x32.mat (split "train", "test" or "extra"), MATLAB files
 * with X (32 × 32 × 3 × n, uint8) and y (n labels 1..10, 10 meaning the digit 0). */
ist_status ist_svhn_load(const char *dir, const char *split, int64_t limit, ist_dataset *out);

/* JPEG images, one folder per class: dir/<split>/<class>/NAME.jpg|jpeg (any case), classes numbered
 * in the sorted order of dir/train's folders (torchvision's ImageFolder); split "train" or "val". */
ist_status ist_image_folder_load(const char *dir, const char *split, const ist_jpeg_options *o, int64_t limit,
                                 ist_dataset *out);
/* The number of class folders in dir/train (0 if none or unreadable). */
int ist_image_folder_classes(const char *dir);
/* TinyImageNet-200's layout: dir/train/<wnid>/images/NAME.JPEG, dir/val/images/NAME.JPEG labelled by
 * dir/val/val_annotations.txt (file, wnid, box); classes are the sorted wnids of dir/train. */
ist_status ist_tiny_imagenet_load(const char *dir, const char *split, const ist_jpeg_options *o, int64_t limit,
                                  ist_dataset *out);
void ist_dataset_free(ist_dataset *d);
/* IST_OK if this build reads the named data set (--dataset's names); otherwise a one-line error
 * naming the library that was missing at build time (the optional features JPEG and SVHN). */
ist_status ist_dataset_supported(const char *dataset);

/* Copies batch [start, start+n) of the order into x and y (order NULL: identity; otherwise a
 * permutation of 0..n−1), augmented by aug (NULL: not). The image at order position p draws its
 * augmentation from ist_rng_for(seed, p): the same image at the same position gets the same
 * crop wherever and in whichever batch it is loaded. Fails only for file data sets (a file that
 * cannot be read or decoded, named in the message). */
ist_status ist_dataset_batch(const ist_dataset *d, const int32_t *order, int64_t start, int n, float *x, int32_t *y,
                             const ist_augment *aug, uint64_t seed);

/* Pieces shared by the in-memory and the file data sets. */
/* The box of a random-resized crop of an h × w image (torchvision's sampling: area ∈ [min_scale, 1]
 * of the image, aspect ratio ∈ [3/4, 4/3] log-uniform, 10 tries, then the whole image). */
void ist_rrc_box(int h, int w, float min_scale, ist_rng *rng, int *by, int *bx, int *bh, int *bw);
/* One image of d's shape from src into dst (not the same buffer): random-resized crop (bilinear)
 * or padded crop, the flip, then colour jitter, as aug says (NULL: a copy). */
void ist_augment_image(const ist_dataset *d, const float *src, float *dst, const ist_augment *aug, ist_rng *rng);
ist_status ist_image_files_batch(const ist_dataset *d, const int32_t *order, int64_t start, int n, float *x,
                                 int32_t *y, const ist_augment *aug, uint64_t seed);
void ist_image_files_free(ist_image_files *f);

#ifdef __cplusplus
}
#endif
#endif
