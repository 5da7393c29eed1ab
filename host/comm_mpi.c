/* The MPI communicator (CPU ranks): MPI_Allreduce / MPI_Bcast on host memory, in chunks that fit
 * MPI's int counts. MPI is initialized here and finalized by destroy. */
#include <mpi.h>
#include <stdlib.h>

#include "host/comm.h"

#define CHUNK ((int64_t)1 << 28) /* elements per call: well inside int */

static ist_status mpi_error(int rc, const char *what) {
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  return ist_fail(IST_ERR_STATE, "MPI %s failed: %s", what, msg);
}

static ist_status allreduce(ist_comm *c, void *buf, int64_t n, MPI_Datatype type, int elem) {
  for (int64_t off = 0; off < n; off += CHUNK) {
    const int count = (int)(n - off < CHUNK ? n - off : CHUNK);
    const int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)buf + off * elem, count, type, MPI_SUM, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_error(rc, "all-reduce");
  }
  c->bytes_reduced += n * elem;
  return IST_OK;
}

static ist_status mpi_allreduce_f32(ist_comm *c, float *buf, int64_t n) { return allreduce(c, buf, n, MPI_FLOAT, 4); }
static ist_status mpi_allreduce_f64(ist_comm *c, double *buf, int64_t n) { return allreduce(c, buf, n, MPI_DOUBLE, 8); }

static ist_status mpi_broadcast(ist_comm *c, void *buf, int64_t bytes, int root) {
  (void)c;
  for (int64_t off = 0; off < bytes; off += CHUNK) {
    const int count = (int)(bytes - off < CHUNK ? bytes - off : CHUNK);
    const int rc = MPI_Bcast((char *)buf + off, count, MPI_BYTE, root, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_error(rc, "broadcast");
  }
  return IST_OK;
}

static ist_status mpi_barrier(ist_comm *c) {
  (void)c;
  const int rc = MPI_Barrier(MPI_COMM_WORLD);
  return rc == MPI_SUCCESS ? IST_OK : mpi_error(rc, "barrier");
}

static void mpi_abort(ist_comm *c, int code) {
  (void)c;
  MPI_Abort(MPI_COMM_WORLD, code);
}

static void mpi_destroy(ist_comm *c) {
  free(c);
  int fin = 0;
  MPI_Finalized(&fin);
  if (!fin) MPI_Finalize();
}

/* Initializes MPI once (errors come back as codes, not aborts) and fills rank and size. */
ist_status ist_mpi_init(int *rank, int *size) {
  int inited = 0;
  MPI_Initialized(&inited);
  if (!inited && MPI_Init(NULL, NULL) != MPI_SUCCESS) return ist_fail(IST_ERR_STATE, "MPI_Init failed");
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, rank);
  MPI_Comm_size(MPI_COMM_WORLD, size);
  return IST_OK;
}

int ist_mpi_local_rank(void) {
  int rank = 0, local = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm node;
  if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
    MPI_Comm_rank(node, &local);
    MPI_Comm_free(&node);
  }
  return local;
}

ist_status ist_comm_mpi_create(ist_comm **out) {
  ist_comm *c = calloc(1, sizeof *c);
  if (!c) return ist_fail(IST_ERR_MEMORY, "out of memory");
  *c = (ist_comm){.kind = "mpi", .allreduce_f32 = mpi_allreduce_f32, .allreduce_f64 = mpi_allreduce_f64,
                  .broadcast = mpi_broadcast, .barrier = mpi_barrier, .destroy = mpi_destroy, .abort = mpi_abort};
  ist_status st = ist_mpi_init(&c->rank, &c->size);
  if (st != IST_OK) {
    free(c);
    return st;
  }
  c->local_rank = ist_mpi_local_rank();
  *out = c;
  return IST_OK;
}
