/* The single-process communicator, the choice of implementation, and the configuration check. */
#include "host/comm.h"

#include <stdlib.h>
#include <string.h>

#include "host/rng.h"

static ist_status none_allreduce_f32(ist_comm *c, float *buf, int64_t n) {
  (void)c, (void)buf, (void)n;
  return IST_OK;
}
static ist_status none_allreduce_f64(ist_comm *c, double *buf, int64_t n) {
  (void)c, (void)buf, (void)n;
  return IST_OK;
}
static ist_status none_broadcast(ist_comm *c, void *buf, int64_t bytes, int root) {
  (void)c, (void)buf, (void)bytes, (void)root;
  return IST_OK;
}
static ist_status none_barrier(ist_comm *c) {
  (void)c;
  return IST_OK;
}
static void none_destroy(ist_comm *c) { free(c); }
static void none_abort(ist_comm *c, int code) {
  (void)c;
  exit(code);
}

int ist_comm_available(const char *kind) {
#ifdef INSITU_HAVE_MPI
  if (!strcmp(kind, "mpi")) return 1;
#endif
#ifdef INSITU_HAVE_NCCL
  if (!strcmp(kind, "nccl")) return 1;
#endif
  return !strcmp(kind, "none");
}

static int launched_by_mpi(void) {
  return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

ist_status ist_comm_create(const char *kind, ist_comm **out) {
  *out = NULL;
  if (!strcmp(kind, "auto")) kind = launched_by_mpi() ? "mpi" : "none";
  if (strcmp(kind, "none") && strcmp(kind, "mpi") && strcmp(kind, "nccl"))
    return ist_fail(IST_ERR_ARG, "--comm: '%s' is not auto, none, mpi or nccl", kind);
  if (!ist_comm_available(kind))
    return ist_fail(IST_ERR_ARG, "--comm: %s is not built in (install %s and rebuild)", kind,
                    !strcmp(kind, "mpi") ? "libopenmpi-dev" : "NCCL, CUDA and libopenmpi-dev");
#ifdef INSITU_HAVE_MPI
  if (!strcmp(kind, "mpi")) return ist_comm_mpi_create(out);
#endif
#ifdef INSITU_HAVE_NCCL
  if (!strcmp(kind, "nccl")) return ist_comm_nccl_create(out);
#endif
  ist_comm *c = calloc(1, sizeof *c);
  if (!c) return ist_fail(IST_ERR_MEMORY, "out of memory");
  *c = (ist_comm){.kind = "none", .rank = 0, .size = 1, .allreduce_f32 = none_allreduce_f32,
                  .allreduce_f64 = none_allreduce_f64, .broadcast = none_broadcast, .barrier = none_barrier,
                  .destroy = none_destroy, .abort = none_abort};
  *out = c;
  return IST_OK;
}

void ist_comm_destroy(ist_comm *c) {
  if (c) c->destroy(c);
}

/* FNV-1a over the text, mixed: equal texts, equal numbers. */
static uint64_t text_hash(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ULL;
  return ist_mix64(h);
}

ist_status ist_comm_check_same(ist_comm *c, const char *what, const char *text) {
  if (c->size == 1) return IST_OK;
  /* Rank 0's hash to everyone; each rank flags a difference in its own slot of a summed vector. */
  uint64_t mine = text_hash(text), root = mine;
  IST_TRY(c->broadcast(c, &root, sizeof root, 0));
  double *slots = calloc((size_t)c->size, sizeof(double));
  if (!slots) return ist_fail(IST_ERR_MEMORY, "out of memory");
  slots[c->rank] = root != mine;
  ist_status st = c->allreduce_f64(c, slots, c->size);
  int first = -1;
  for (int r = 0; st == IST_OK && r < c->size && first < 0; r++)
    if (slots[r] != 0) first = r;
  free(slots);
  IST_TRY(st);
  if (first >= 0) c->agreed_error = 1;
  if (first >= 0)
    return ist_fail(IST_ERR_ARG, "%s differ between rank 0 and rank %d (every rank must run the same command)", what,
                    first);
  return IST_OK;
}
