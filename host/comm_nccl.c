/* The NCCL communicator (GPU ranks): one GPU per process, chosen by the node-local rank; NCCL's
 * unique id is made on rank 0 and broadcast over MPI, then every collective runs on one CUDA
 * stream. Device buffers are reduced in place (allreduce_device_f32: on the program's compute
 * stream, no host wait); host buffers (the CPU backend's) go through a device staging buffer. */
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>
#include <stdlib.h>

#include "host/comm.h"

typedef struct {
  ncclComm_t comm;
  cudaStream_t stream;
  void *stage; /* device staging buffer for host memory */
  size_t stage_bytes;
} nccl_impl;

static ist_status nccl_check(ncclResult_t r, const char *what) {
  return r == ncclSuccess ? IST_OK : ist_fail(IST_ERR_STATE, "NCCL %s failed: %s", what, ncclGetErrorString(r));
}
static ist_status cuda_check(cudaError_t e, const char *what) {
  return e == cudaSuccess ? IST_OK : ist_fail(IST_ERR_STATE, "CUDA %s failed: %s", what, cudaGetErrorString(e));
}

static int is_device_pointer(const void *p) {
  struct cudaPointerAttributes a;
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    cudaGetLastError(); /* plain host memory on older runtimes: clear the error */
    return 0;
  }
  return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
}

/* Runs op on buf (bytes long): in place on device memory, else staged through the device. */
static ist_status on_device(ist_comm *c, void *buf, size_t bytes, int copy_in,
                            ist_status (*op)(nccl_impl *n, void *dev, void *arg), void *arg) {
  nccl_impl *n = c->impl;
  if (is_device_pointer(buf)) {
    IST_TRY(op(n, buf, arg));
    return cuda_check(cudaStreamSynchronize(n->stream), "stream synchronize");
  }
  if (bytes > n->stage_bytes) {
    cudaFree(n->stage);
    n->stage = NULL;
    n->stage_bytes = 0;
    IST_TRY(cuda_check(cudaMalloc(&n->stage, bytes), "staging allocation"));
    n->stage_bytes = bytes;
  }
  if (copy_in) IST_TRY(cuda_check(cudaMemcpyAsync(n->stage, buf, bytes, cudaMemcpyHostToDevice, n->stream), "copy in"));
  IST_TRY(op(n, n->stage, arg));
  IST_TRY(cuda_check(cudaMemcpyAsync(buf, n->stage, bytes, cudaMemcpyDeviceToHost, n->stream), "copy out"));
  return cuda_check(cudaStreamSynchronize(n->stream), "stream synchronize");
}

typedef struct {
  size_t count;
  ncclDataType_t type;
  int root;
} coll_arg;

static ist_status op_allreduce(nccl_impl *n, void *dev, void *arg) {
  const coll_arg *a = arg;
  return nccl_check(ncclAllReduce(dev, dev, a->count, a->type, ncclSum, n->comm, n->stream), "all-reduce");
}
static ist_status op_broadcast(nccl_impl *n, void *dev, void *arg) {
  const coll_arg *a = arg;
  return nccl_check(ncclBroadcast(dev, dev, a->count, ncclUint8, a->root, n->comm, n->stream), "broadcast");
}

static ist_status nccl_allreduce_f32(ist_comm *c, float *buf, int64_t n) {
  coll_arg a = {(size_t)n, ncclFloat32, 0};
  IST_TRY(on_device(c, buf, (size_t)n * 4, 1, op_allreduce, &a));
  c->bytes_reduced += n * 4;
  return IST_OK;
}
static ist_status nccl_allreduce_f64(ist_comm *c, double *buf, int64_t n) {
  coll_arg a = {(size_t)n, ncclFloat64, 0};
  IST_TRY(on_device(c, buf, (size_t)n * 8, 1, op_allreduce, &a));
  c->bytes_reduced += n * 8;
  return IST_OK;
}
/* Device memory in place, on the program's compute stream: ordered after the ops that produced
 * buf and before those that read it, with no host wait. */
static ist_status allreduce_device(ist_comm *c, void *buf, int64_t n, ncclDataType_t type, int bytes_per) {
  nccl_impl *ni = c->impl;
  cudaStream_t s = c->stream ? (cudaStream_t)c->stream : ni->stream;
  IST_TRY(nccl_check(ncclAllReduce(buf, buf, (size_t)n, type, ncclSum, ni->comm, s), "all-reduce"));
  c->bytes_reduced += n * bytes_per;
  return c->stream ? IST_OK : cuda_check(cudaStreamSynchronize(s), "stream synchronize");
}
static ist_status nccl_allreduce_device_f32(ist_comm *c, float *buf, int64_t n) {
  return allreduce_device(c, buf, n, ncclFloat32, 4);
}
static ist_status nccl_allreduce_device_f64(ist_comm *c, double *buf, int64_t n) {
  return allreduce_device(c, buf, n, ncclFloat64, 8);
}
static ist_status nccl_broadcast(ist_comm *c, void *buf, int64_t bytes, int root) {
  coll_arg a = {(size_t)bytes, ncclUint8, root};
  return on_device(c, buf, (size_t)bytes, c->rank == root, op_broadcast, &a);
}
static ist_status nccl_barrier(ist_comm *c) {
  float one = 1;
  return nccl_allreduce_f32(c, &one, 1);
}

static void nccl_abort(ist_comm *c, int code) {
  nccl_impl *n = c->impl;
  if (n && n->comm) ncclCommAbort(n->comm);
  MPI_Abort(MPI_COMM_WORLD, code);
}

static void nccl_destroy(ist_comm *c) {
  nccl_impl *n = c->impl;
  if (n) {
    if (n->comm) ncclCommDestroy(n->comm);
    if (n->stream) cudaStreamDestroy(n->stream);
    cudaFree(n->stage);
    free(n);
  }
  free(c);
  int fin = 0;
  MPI_Finalized(&fin);
  if (!fin) MPI_Finalize();
}

ist_status ist_comm_nccl_create(ist_comm **out) {
  ist_comm *c = calloc(1, sizeof *c);
  nccl_impl *n = calloc(1, sizeof *n);
  if (!c || !n) {
    free(c);
    free(n);
    return ist_fail(IST_ERR_MEMORY, "out of memory");
  }
  *c = (ist_comm){.kind = "nccl", .allreduce_f32 = nccl_allreduce_f32, .allreduce_f64 = nccl_allreduce_f64,
                  .allreduce_device_f32 = nccl_allreduce_device_f32, .allreduce_device_f64 = nccl_allreduce_device_f64,
                  .broadcast = nccl_broadcast, .barrier = nccl_barrier, .destroy = nccl_destroy, .abort = nccl_abort, .impl = n};
  ist_status st = ist_mpi_init(&c->rank, &c->size);
  /* The node-local rank picks the GPU (one per rank; the program's CUDA backend then starts on
   * the same one, ist_backend_cuda_init(local_rank)). */
  int devices = 0;
  if (st == IST_OK) c->local_rank = ist_mpi_local_rank();
  if (st == IST_OK) st = cuda_check(cudaGetDeviceCount(&devices), "device count");
  if (st == IST_OK && devices < 1) st = ist_fail(IST_ERR_STATE, "--comm nccl: no CUDA device on rank %d", c->rank);
  if (st == IST_OK && c->local_rank >= devices)
    st = ist_fail(IST_ERR_STATE, "--comm nccl: rank %d is node-local rank %d, but its node has %d GPUs (one per rank)",
                  c->rank, c->local_rank, devices);
  if (st == IST_OK) st = cuda_check(cudaSetDevice(c->local_rank), "set device");
  if (st == IST_OK) st = cuda_check(cudaStreamCreateWithFlags(&n->stream, cudaStreamNonBlocking), "stream create");
  ncclUniqueId id;
  if (st == IST_OK && c->rank == 0) st = nccl_check(ncclGetUniqueId(&id), "unique id");
  /* Every rank reaches this broadcast even if something failed above (no rank is left waiting). */
  if (MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD) != MPI_SUCCESS && st == IST_OK)
    st = ist_fail(IST_ERR_STATE, "MPI broadcast of the NCCL id failed");
  /* NCCL's init blocks until every rank joins: agree first that every rank can. */
  int ok = st == IST_OK, all_ok = 0;
  if (MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD) != MPI_SUCCESS) all_ok = 0;
  if (st == IST_OK && !all_ok) st = ist_fail(IST_ERR_STATE, "--comm nccl: another rank could not set up its GPU");
  if (st == IST_OK) st = nccl_check(ncclCommInitRank(&n->comm, c->size, id, c->rank), "communicator init");
  if (st != IST_OK) {
    nccl_destroy(c);
    return st;
  }
  *out = c;
  return IST_OK;
}
