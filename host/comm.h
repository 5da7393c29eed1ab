/* Communication between data-parallel ranks: one process per CPU or GPU, started by mpirun or
 * Slurm's srun. "none" is the single process; "mpi" all-reduces host memory with MPI (OpenMPI);
 * "nccl" all-reduces with NCCL on the GPU (the unique id travels over MPI): device buffers in
 * place on the compute stream, host buffers staged through device memory. Every call is collective: all ranks make it, in the same order. */
#ifndef IST_COMM_H
#define IST_COMM_H
#include <stdint.h>

#include "host/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ist_comm ist_comm;
struct ist_comm {
  const char *kind; /* "none", "mpi" or "nccl" */
  int rank, size;
  int64_t bytes_reduced; /* payload all-reduced so far (per rank) */
  int agreed_error;      /* the last failure is known to every rank (all exit cleanly, none waits) */
  int local_rank;        /* the rank among those on this node (picks this rank's GPU) */
  /* buf[0..n) ← its sum over the ranks. */
  ist_status (*allreduce_f32)(ist_comm *c, float *buf, int64_t n);
  /* The same on device memory, in place, without host staging and without waiting: ordered on
   * `stream` (the CUDA backend's compute stream, set by the program). NULL when the communicator
   * only reduces host memory (none, mpi); both or neither are set. */
  ist_status (*allreduce_device_f32)(ist_comm *c, float *dev_buf, int64_t n);
  ist_status (*allreduce_device_f64)(ist_comm *c, double *dev_buf, int64_t n);
  void *stream;
  ist_status (*allreduce_f64)(ist_comm *c, double *buf, int64_t n);
  /* bytes of buf ← rank root's. */
  ist_status (*broadcast)(ist_comm *c, void *buf, int64_t bytes, int root);
  ist_status (*barrier)(ist_comm *c);
  void (*destroy)(ist_comm *c);
  /* Ends every rank now (after a failure only this rank knows of, so no rank is left waiting). */
  void (*abort)(ist_comm *c, int code);
  void *impl;
};

/* kind "auto": MPI when the process was started by mpirun/srun (OMPI_COMM_WORLD_SIZE, PMI_SIZE or
 * PMIX_RANK set), else none. Fails naming --comm when the kind is not built in. */
ist_status ist_comm_create(const char *kind, ist_comm **out);
void ist_comm_destroy(ist_comm *c); /* NULL is fine */
/* Whether this build has kind ("mpi", "nccl"). */
int ist_comm_available(const char *kind);
/* Every rank passes its own text (e.g. its flags); fails on every rank, naming the first rank
 * whose text differs from rank 0's, when they do not all agree. */
ist_status ist_comm_check_same(ist_comm *c, const char *what, const char *text);

/* Implementations (comm_mpi.c, comm_nccl.c), present when built. */
ist_status ist_comm_mpi_create(ist_comm **out);
ist_status ist_comm_nccl_create(ist_comm **out);
/* MPI_Init (once) with errors returned, not aborting; this process's rank and the world size. */
ist_status ist_mpi_init(int *rank, int *size);
/* This process's rank among the ranks on its node (after ist_mpi_init). */
int ist_mpi_local_rank(void);

#ifdef __cplusplus
}
#endif
#endif
