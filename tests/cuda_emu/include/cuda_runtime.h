/* The CUDA runtime API subset insitu uses, for the CPU execution check (IST_CUDA_EMU): device
 * memory is host memory, streams run their work at call time, events take host timestamps.
 * Usable from C11 and C++. Every function is a macro onto an ist_emu_ symbol so nothing can
 * collide with a real libcudart. See docs/EMULATION.md. */
#ifndef IST_EMU_CUDA_RUNTIME_H
#define IST_EMU_CUDA_RUNTIME_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Codes as the real runtime numbers them. */
typedef enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorLaunchFailure = 4,
  cudaErrorLaunchOutOfResources = 7,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotReady = 600,
  cudaErrorIllegalAddress = 700,
  cudaErrorNoDevice = 100,
  cudaErrorUnknown = 999
} cudaError_t;

typedef enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4
} cudaMemcpyKind;

typedef struct ist_emu_stream *cudaStream_t;
typedef struct ist_emu_event *cudaEvent_t;
#define cudaStreamDefault 0x0
#define cudaStreamNonBlocking 0x1
#define cudaEventDefault 0x0
#define cudaEventBlockingSync 0x1
#define cudaEventDisableTiming 0x2
#define cudaHostAllocDefault 0x0
#define cudaHostAllocPortable 0x1
#define cudaHostAllocMapped 0x2

/* Built-in vector types (C layout; C++ gets constructors for dim3). */
typedef struct __attribute__((aligned(8))) float2 { float x, y; } float2;
typedef struct float3 { float x, y, z; } float3;
typedef struct __attribute__((aligned(16))) float4 { float x, y, z, w; } float4;
typedef struct __attribute__((aligned(8))) int2 { int x, y; } int2;
typedef struct int3 { int x, y, z; } int3;
typedef struct __attribute__((aligned(16))) int4 { int x, y, z, w; } int4;
typedef struct __attribute__((aligned(8))) uint2 { unsigned x, y; } uint2;
typedef struct uint3 { unsigned x, y, z; } uint3;
typedef struct __attribute__((aligned(16))) uint4 { unsigned x, y, z, w; } uint4;
typedef struct __attribute__((aligned(16))) double2 { double x, y; } double2;
#ifdef __cplusplus
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};
#else
typedef struct dim3 { unsigned x, y, z; } dim3;
#endif

/* The subset of cudaDeviceProp insitu reads, filled like an H100. */
struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  size_t sharedMemPerBlockOptin;
  size_t sharedMemPerMultiprocessor;
  size_t totalConstMem;
  int regsPerBlock;
  int warpSize;
  int maxThreadsPerBlock;
  int maxThreadsDim[3];
  int maxGridSize[3];
  int maxThreadsPerMultiProcessor;
  int multiProcessorCount;
  int l2CacheSize;
  int major, minor;
  int clockRate;
  int memoryClockRate;
  int memoryBusWidth;
  int concurrentKernels;
};
typedef struct cudaDeviceProp cudaDeviceProp;

enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxBlockDimX = 2,
  cudaDevAttrMaxGridDimX = 5,
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrWarpSize = 10,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrL2CacheSize = 38,
  cudaDevAttrMaxThreadsPerMultiProcessor = 39,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMaxSharedMemoryPerMultiprocessor = 81,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97
};
enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
  cudaFuncAttributePreferredSharedMemoryCarveout = 9
};

#define cudaGetErrorString ist_emu_cudaGetErrorString
#define cudaGetErrorName ist_emu_cudaGetErrorName
#define cudaGetLastError ist_emu_cudaGetLastError
#define cudaPeekAtLastError ist_emu_cudaPeekAtLastError
#define cudaMalloc ist_emu_cudaMalloc
#define cudaFree ist_emu_cudaFree
#define cudaMallocHost ist_emu_cudaMallocHost
#define cudaHostAlloc ist_emu_cudaHostAlloc
#define cudaFreeHost ist_emu_cudaFreeHost
#define cudaMemcpy ist_emu_cudaMemcpy
#define cudaMemcpyAsync ist_emu_cudaMemcpyAsync
#define cudaMemset ist_emu_cudaMemset
#define cudaMemsetAsync ist_emu_cudaMemsetAsync
#define cudaMemGetInfo ist_emu_cudaMemGetInfo
#define cudaMemcpy2D ist_emu_cudaMemcpy2D
#define cudaMemcpy2DAsync ist_emu_cudaMemcpy2DAsync
#define cudaMallocAsync ist_emu_cudaMallocAsync
#define cudaFreeAsync ist_emu_cudaFreeAsync
#define cudaOccupancyMaxActiveBlocksPerMultiprocessor ist_emu_cudaOccupancyMaxActiveBlocksPerMultiprocessor
#define cudaStreamCreate ist_emu_cudaStreamCreate
#define cudaStreamCreateWithFlags ist_emu_cudaStreamCreateWithFlags
#define cudaStreamDestroy ist_emu_cudaStreamDestroy
#define cudaStreamSynchronize ist_emu_cudaStreamSynchronize
#define cudaStreamWaitEvent ist_emu_cudaStreamWaitEvent
#define cudaStreamQuery ist_emu_cudaStreamQuery
#define cudaEventCreate ist_emu_cudaEventCreate
#define cudaEventCreateWithFlags ist_emu_cudaEventCreateWithFlags
#define cudaEventRecord ist_emu_cudaEventRecord
#define cudaEventSynchronize ist_emu_cudaEventSynchronize
#define cudaEventElapsedTime ist_emu_cudaEventElapsedTime
#define cudaEventDestroy ist_emu_cudaEventDestroy
#define cudaEventQuery ist_emu_cudaEventQuery
#define cudaDeviceSynchronize ist_emu_cudaDeviceSynchronize
#define cudaDeviceReset ist_emu_cudaDeviceReset
#define cudaGetDeviceCount ist_emu_cudaGetDeviceCount
#define cudaSetDevice ist_emu_cudaSetDevice
#define cudaGetDevice ist_emu_cudaGetDevice
#define cudaGetDeviceProperties ist_emu_cudaGetDeviceProperties
#define cudaDeviceGetAttribute ist_emu_cudaDeviceGetAttribute
#define cudaFuncSetAttribute ist_emu_cudaFuncSetAttribute

const char *cudaGetErrorString(cudaError_t e);
const char *cudaGetErrorName(cudaError_t e);
cudaError_t cudaGetLastError(void);
cudaError_t cudaPeekAtLastError(void);
cudaError_t cudaMalloc(void **p, size_t bytes);
cudaError_t cudaFree(void *p);
cudaError_t cudaMallocHost(void **p, size_t bytes);
cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned flags);
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s);
cudaError_t cudaMemset(void *p, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t s);
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes);
cudaError_t cudaMemcpy2D(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width, size_t height,
                         cudaMemcpyKind kind);
cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind kind, cudaStream_t s);
cudaError_t cudaMallocAsync(void **p, size_t bytes, cudaStream_t s);
cudaError_t cudaFreeAsync(void *p, cudaStream_t s);
/* A rough answer (no register model): limited by threads (2048 per SM), 32 blocks and shared memory. */
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int *blocks, const void *func, int block_size,
                                                          size_t dynamic_smem);
cudaError_t cudaStreamCreate(cudaStream_t *s);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags);
cudaError_t cudaStreamQuery(cudaStream_t s);
cudaError_t cudaEventCreate(cudaEvent_t *e);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventQuery(cudaEvent_t e);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaDeviceReset(void);
cudaError_t cudaGetDeviceCount(int *count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int *device);
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device);
cudaError_t cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr, int device);
cudaError_t cudaFuncSetAttribute(const void *func, enum cudaFuncAttribute attr, int value);

/* Test-only: the last fault the execution check reported ("" when none), and a reset that clears
 * it and every sticky error (so one planted-bug test does not fail the next). */
const char *ist_emu_last_report(void);
void ist_emu_reset(void);
/* 1 when p..p+bytes lies inside one live cudaMalloc allocation. */
int ist_emu_is_device_range(const void *p, size_t bytes);

#ifdef __cplusplus
}
/* The C++ conveniences of the real header: typed cudaMalloc, cudaFuncSetAttribute on a kernel. */
template <class T>
inline cudaError_t cudaMalloc(T **p, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void **>(p), bytes);
}
template <class T>
inline cudaError_t cudaMallocHost(T **p, size_t bytes) {
  return cudaMallocHost(reinterpret_cast<void **>(p), bytes);
}
template <class T>
inline cudaError_t cudaHostAlloc(T **p, size_t bytes, unsigned flags) {
  return cudaHostAlloc(reinterpret_cast<void **>(p), bytes, flags);
}
template <class T>
inline cudaError_t cudaMallocAsync(T **p, size_t bytes, cudaStream_t s) {
  return cudaMallocAsync(reinterpret_cast<void **>(p), bytes, s);
}
template <class R, class... P>
inline cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int *blocks, R (*func)(P...), int block_size,
                                                                 size_t dynamic_smem) {
  return cudaOccupancyMaxActiveBlocksPerMultiprocessor(blocks, reinterpret_cast<const void *>(func), block_size,
                                                       dynamic_smem);
}
template <class R, class... P>
inline cudaError_t cudaFuncSetAttribute(R (*func)(P...), enum cudaFuncAttribute attr, int value) {
  return cudaFuncSetAttribute(reinterpret_cast<const void *>(func), attr, value);
}
#endif
#endif
