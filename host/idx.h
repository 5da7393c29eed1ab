/* IDX files (the MNIST family's format), plain or gzip-compressed. */
#ifndef IST_IDX_H
#define IST_IDX_H
#include <stdint.h>

#include "host/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reads an unsigned-byte IDX file with ndim dimensions; dims gets the sizes and *data a malloc'd
 * buffer the caller frees. Fails, naming the file, on a missing or truncated file, a wrong magic
 * number, an unexpected number of dimensions, or trailing bytes. */
ist_status ist_idx_read_u8(const char *path, int ndim, int64_t *dims, uint8_t **data);

#ifdef __cplusplus
}
#endif
#endif
