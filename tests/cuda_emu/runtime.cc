/* The CUDA runtime API of the CPU execution check: device memory is host memory (filled with NaN
 * when allocated, so a read before a write shows), streams run their work at call time, events
 * take host timestamps, and the device describes itself as an H100-like GPU. */
#include <cuda_runtime.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "tests/cuda_emu/emu_internal.h"

struct ist_emu_stream {
  unsigned flags;
};
struct ist_emu_event {
  double ms;
  int recorded;
};

namespace {
constexpr size_t kDeviceAlign = 256;                         /* cudaMalloc's alignment */
constexpr size_t kTotalGlobalMem = 80ull * 1024 * 1024 * 1024; /* what the device reports */
constexpr int kSmCount = 132;

std::mutex g_mem_mu;
std::map<const char *, size_t> g_allocs; /* start → bytes */
size_t g_allocated = 0;

double now_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}
cudaError_t fail(cudaError_t e, const std::string &msg) {
  ist_emu::report_error(e, msg);
  return e;
}
}  // namespace

extern "C" {
int ist_emu_is_device_range(const void *p, size_t bytes) {
  const char *c = static_cast<const char *>(p);
  std::lock_guard<std::mutex> lk(g_mem_mu);
  auto it = g_allocs.upper_bound(c);
  if (it == g_allocs.begin()) return 0;
  --it;
  return c >= it->first && c + bytes <= it->first + it->second;
}

cudaError_t ist_emu_cudaMalloc(void **p, size_t bytes) {
  if (!p) return fail(cudaErrorInvalidValue, "cudaMalloc: null result pointer");
  size_t rounded = (bytes + kDeviceAlign - 1) / kDeviceAlign * kDeviceAlign;
  void *m = aligned_alloc(kDeviceAlign, rounded ? rounded : kDeviceAlign);
  if (!m) return fail(cudaErrorMemoryAllocation, ist_emu::format("cudaMalloc of %zu bytes: out of memory", bytes));
  memset(m, 0xff, rounded ? rounded : kDeviceAlign); /* NaN in every float type */
  std::lock_guard<std::mutex> lk(g_mem_mu);
  g_allocs[static_cast<const char *>(m)] = bytes;
  g_allocated += bytes;
  *p = m;
  return cudaSuccess;
}
cudaError_t ist_emu_cudaFree(void *p) {
  if (!p) return cudaSuccess;
  {
    std::lock_guard<std::mutex> lk(g_mem_mu);
    auto it = g_allocs.find(static_cast<const char *>(p));
    if (it == g_allocs.end()) goto bad;
    g_allocated -= it->second;
    g_allocs.erase(it);
  }
  free(p);
  return cudaSuccess;
bad:
  return fail(cudaErrorInvalidValue, ist_emu::format("cudaFree(%p): not a pointer cudaMalloc returned", p));
}
cudaError_t ist_emu_cudaMallocHost(void **p, size_t bytes) {
  if (!p) return cudaErrorInvalidValue;
  *p = malloc(bytes ? bytes : 1);
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t ist_emu_cudaHostAlloc(void **p, size_t bytes, unsigned flags) {
  (void)flags;
  return ist_emu_cudaMallocHost(p, bytes);
}
cudaError_t ist_emu_cudaFreeHost(void *p) {
  free(p);
  return cudaSuccess;
}

cudaError_t ist_emu_cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
  cudaError_t s = ist_emu::sticky();
  if (s != cudaSuccess) return s;
  if ((unsigned)kind > cudaMemcpyDefault) return fail(cudaErrorInvalidValue, "cudaMemcpy: bad cudaMemcpyKind");
  if (!bytes) return cudaSuccess;
  if (!dst || !src) return fail(cudaErrorInvalidValue, "cudaMemcpy: null pointer");
  bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (dst_dev && !ist_emu_is_device_range(dst, bytes))
    return fail(cudaErrorInvalidValue,
                ist_emu::format("cudaMemcpy of %zu bytes: the destination %p is not inside one cudaMalloc allocation",
                                bytes, dst));
  if (src_dev && !ist_emu_is_device_range(src, bytes))
    return fail(cudaErrorInvalidValue,
                ist_emu::format("cudaMemcpy of %zu bytes: the source %p is not inside one cudaMalloc allocation",
                                bytes, src));
  memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t ist_emu_cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s) {
  (void)s;
  return ist_emu_cudaMemcpy(dst, src, bytes, kind);
}
cudaError_t ist_emu_cudaMemcpy2D(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
                                 size_t height, cudaMemcpyKind kind) {
  if (width > dpitch || width > spitch) return fail(cudaErrorInvalidValue, "cudaMemcpy2D: width above a pitch");
  for (size_t r = 0; r < height; r++) {
    cudaError_t e = ist_emu_cudaMemcpy(static_cast<char *>(dst) + r * dpitch,
                                       static_cast<const char *>(src) + r * spitch, width, kind);
    if (e != cudaSuccess) return e;
  }
  return cudaSuccess;
}
cudaError_t ist_emu_cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
                                      size_t height, cudaMemcpyKind kind, cudaStream_t s) {
  (void)s;
  return ist_emu_cudaMemcpy2D(dst, dpitch, src, spitch, width, height, kind);
}
cudaError_t ist_emu_cudaMallocAsync(void **p, size_t bytes, cudaStream_t s) {
  (void)s;
  return ist_emu_cudaMalloc(p, bytes);
}
cudaError_t ist_emu_cudaFreeAsync(void *p, cudaStream_t s) {
  (void)s;
  return ist_emu_cudaFree(p);
}
cudaError_t ist_emu_cudaOccupancyMaxActiveBlocksPerMultiprocessor(int *blocks, const void *func, int block_size,
                                                                  size_t dynamic_smem) {
  (void)func;
  if (!blocks || block_size <= 0 || block_size > 1024) return cudaErrorInvalidValue;
  int by_threads = 2048 / block_size, by_smem = dynamic_smem ? (int)(233472 / (dynamic_smem + 1024)) : 32;
  int b = by_threads < by_smem ? by_threads : by_smem;
  *blocks = b < 32 ? b : 32;
  return cudaSuccess;
}
cudaError_t ist_emu_cudaMemset(void *p, int value, size_t bytes) {
  cudaError_t s = ist_emu::sticky();
  if (s != cudaSuccess) return s;
  if (!bytes) return cudaSuccess;
  if (!ist_emu_is_device_range(p, bytes))
    return fail(cudaErrorInvalidValue,
                ist_emu::format("cudaMemset of %zu bytes at %p: not inside one cudaMalloc allocation", bytes, p));
  memset(p, value, bytes);
  return cudaSuccess;
}
cudaError_t ist_emu_cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t s) {
  (void)s;
  return ist_emu_cudaMemset(p, value, bytes);
}
cudaError_t ist_emu_cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
  std::lock_guard<std::mutex> lk(g_mem_mu);
  if (free_bytes) *free_bytes = kTotalGlobalMem > g_allocated ? kTotalGlobalMem - g_allocated : 0;
  if (total_bytes) *total_bytes = kTotalGlobalMem;
  return cudaSuccess;
}

cudaError_t ist_emu_cudaStreamCreate(cudaStream_t *s) { return ist_emu_cudaStreamCreateWithFlags(s, 0); }
cudaError_t ist_emu_cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags) {
  if (!s) return cudaErrorInvalidValue;
  *s = new ist_emu_stream{flags};
  return cudaSuccess;
}
cudaError_t ist_emu_cudaStreamDestroy(cudaStream_t s) {
  delete s;
  return cudaSuccess;
}
cudaError_t ist_emu_cudaStreamSynchronize(cudaStream_t s) {
  (void)s;
  return ist_emu::sticky();
}
cudaError_t ist_emu_cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags) {
  (void)s;
  (void)flags;
  return e ? ist_emu::sticky() : cudaErrorInvalidResourceHandle;
}
cudaError_t ist_emu_cudaStreamQuery(cudaStream_t s) {
  (void)s;
  return ist_emu::sticky();
}
cudaError_t ist_emu_cudaEventCreate(cudaEvent_t *e) { return ist_emu_cudaEventCreateWithFlags(e, 0); }
cudaError_t ist_emu_cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags) {
  (void)flags;
  if (!e) return cudaErrorInvalidValue;
  *e = new ist_emu_event{0, 0};
  return cudaSuccess;
}
cudaError_t ist_emu_cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  (void)s;
  if (!e) return cudaErrorInvalidResourceHandle;
  e->ms = now_ms();
  e->recorded = 1;
  return cudaSuccess;
}
cudaError_t ist_emu_cudaEventSynchronize(cudaEvent_t e) {
  if (!e) return cudaErrorInvalidResourceHandle;
  return ist_emu::sticky();
}
cudaError_t ist_emu_cudaEventQuery(cudaEvent_t e) {
  if (!e) return cudaErrorInvalidResourceHandle;
  return ist_emu::sticky();
}
cudaError_t ist_emu_cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end) {
  if (!ms || !start || !end) return cudaErrorInvalidValue;
  if (!start->recorded || !end->recorded) return cudaErrorInvalidResourceHandle;
  *ms = (float)(end->ms - start->ms);
  return cudaSuccess;
}
cudaError_t ist_emu_cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
cudaError_t ist_emu_cudaDeviceSynchronize(void) { return ist_emu::sticky(); }
cudaError_t ist_emu_cudaDeviceReset(void) {
  ist_emu_reset();
  return cudaSuccess;
}

cudaError_t ist_emu_cudaGetDeviceCount(int *count) {
  if (!count) return cudaErrorInvalidValue;
  *count = 1;
  return cudaSuccess;
}
cudaError_t ist_emu_cudaSetDevice(int device) { return device == 0 ? cudaSuccess : cudaErrorInvalidDevice; }
cudaError_t ist_emu_cudaGetDevice(int *device) {
  if (!device) return cudaErrorInvalidValue;
  *device = 0;
  return cudaSuccess;
}
cudaError_t ist_emu_cudaGetDeviceProperties(struct cudaDeviceProp *p, int device) {
  if (!p) return cudaErrorInvalidValue;
  if (device != 0) return cudaErrorInvalidDevice;
  memset(p, 0, sizeof *p);
  strcpy(p->name, "insitu CPU emulation");
  p->totalGlobalMem = kTotalGlobalMem;
  p->sharedMemPerBlock = 48 * 1024;
  p->sharedMemPerBlockOptin = 232448;
  p->sharedMemPerMultiprocessor = 233472;
  p->totalConstMem = 64 * 1024;
  p->regsPerBlock = 65536;
  p->warpSize = 32;
  p->maxThreadsPerBlock = 1024;
  p->maxThreadsDim[0] = 1024;
  p->maxThreadsDim[1] = 1024;
  p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 0x7fffffff;
  p->maxGridSize[1] = 65535;
  p->maxGridSize[2] = 65535;
  p->maxThreadsPerMultiProcessor = 2048;
  p->multiProcessorCount = kSmCount;
  p->l2CacheSize = 50 * 1024 * 1024;
  p->major = 9;
  p->minor = 0;
  p->clockRate = 1980000;
  p->memoryClockRate = 2619000;
  p->memoryBusWidth = 5120;
  p->concurrentKernels = 1;
  return cudaSuccess;
}
cudaError_t ist_emu_cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr, int device) {
  if (!value) return cudaErrorInvalidValue;
  if (device != 0) return cudaErrorInvalidDevice;
  cudaDeviceProp p;
  ist_emu_cudaGetDeviceProperties(&p, 0);
  switch (attr) {
  case cudaDevAttrMaxThreadsPerBlock: *value = p.maxThreadsPerBlock; break;
  case cudaDevAttrMaxBlockDimX: *value = p.maxThreadsDim[0]; break;
  case cudaDevAttrMaxGridDimX: *value = p.maxGridSize[0]; break;
  case cudaDevAttrMaxSharedMemoryPerBlock: *value = (int)p.sharedMemPerBlock; break;
  case cudaDevAttrWarpSize: *value = p.warpSize; break;
  case cudaDevAttrMultiProcessorCount: *value = p.multiProcessorCount; break;
  case cudaDevAttrL2CacheSize: *value = p.l2CacheSize; break;
  case cudaDevAttrMaxThreadsPerMultiProcessor: *value = p.maxThreadsPerMultiProcessor; break;
  case cudaDevAttrComputeCapabilityMajor: *value = p.major; break;
  case cudaDevAttrComputeCapabilityMinor: *value = p.minor; break;
  case cudaDevAttrMaxSharedMemoryPerMultiprocessor: *value = (int)p.sharedMemPerMultiprocessor; break;
  case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = (int)p.sharedMemPerBlockOptin; break;
  default: return cudaErrorInvalidValue;
  }
  return cudaSuccess;
}
}
