/* PASCAL VOC detection sets: split lists, the annotation XML of each image, the 20 classes. */
#ifndef IST_VOC_H
#define IST_VOC_H
#include <stdint.h>

#include "host/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The 20 object classes in torchvision's (and the devkit's) order; detector class k + 1 is
 * ist_voc_classes[k], class 0 being the background. */
#define IST_VOC_CLASSES 20
extern const char *const ist_voc_classes[IST_VOC_CLASSES];
/* The index of name in ist_voc_classes, or −1. */
int ist_voc_class_index(const char *name);

/* Limits of the strict reader: larger sizes or coordinates are "bad numbers". */
#define IST_VOC_MAX_SIDE 65535

/* One object: its box in the file's pixel coordinates (VOC: 1-based, inclusive; xmin ≤ xmax). */
typedef struct {
  float box[4]; /* xmin, ymin, xmax, ymax */
  int label;    /* index into ist_voc_classes */
  int difficult;
} ist_voc_object;

typedef struct {
  int width, height, depth;
  int n;                   /* objects */
  ist_voc_object *objects; /* n of them, owned */
} ist_voc_annotation;

/* Parses one annotation from text (name: the file's name for messages). Checks: well-formed XML;
 * <annotation> with <size> (<width>, <height>, <depth>: integers in 1..IST_VOC_MAX_SIDE); each
 * <object> (direct child) has <name> (one of the 20 classes), <bndbox> with <xmin> <ymin> <xmax>
 * <ymax> (decimal numbers, no exponent), and optionally <difficult> (0 or 1; missing means 0, as
 * the devkit's PASreadrecord); 0 ≤ xmin ≤ xmax ≤ width and 0 ≤ ymin ≤ ymax ≤ height (a box
 * outside the image or with xmax < xmin is an error). Other elements (pose, truncated, part,
 * actions, …) are skipped. Errors name the file, the object and the field in one line. */
ist_status ist_voc_parse(const char *name, const char *text, ist_voc_annotation *out);
/* Reads and parses a file. */
ist_status ist_voc_read(const char *path, ist_voc_annotation *out);
void ist_voc_annotation_free(ist_voc_annotation *a);

/* A detection set: images listed by ROOT/ImageSets/Main/<split>.txt for one or several roots
 * (VOC2007 + VOC2012 trainval), with their annotations read up front. */
typedef struct {
  int64_t n;
  char **jpeg_paths;                /* ROOT/JPEGImages/<id>.jpg */
  char **ids;                       /* the image ids as listed */
  ist_voc_annotation *annotations; /* n of them */
} ist_voc_set;

/* Loads the images of split (e.g. "trainval", "test") from each of nroots roots, in list order,
 * root after root; limit > 0 keeps the first limit images overall. Fails on a missing or empty
 * list, an id with unexpected characters, or any annotation error (named). */
ist_status ist_voc_load(const char *const *roots, int nroots, const char *split, int64_t limit, ist_voc_set *out);
/* Splits "A+B+…" (the --data syntax for several roots) and loads split from each. */
ist_status ist_voc_load_spec(const char *spec, const char *split, int64_t limit, ist_voc_set *out);
void ist_voc_set_free(ist_voc_set *s);

#ifdef __cplusplus
}
#endif
#endif
