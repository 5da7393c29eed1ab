/* The CPU execution check's kernel language (IST_CUDA_EMU): with this prelude g++ compiles the .cu
 * files of kernels/cuda as C++. Each block's threads run as cooperative fibers, so __syncthreads()
 * is a real barrier; warp collectives (shuffles, ballots, mma.sync, ldmatrix) meet all the lanes of
 * their mask; shared memory is reached through checked handles (bounds, races, reads of pending
 * cp.async data). emu.cc runs it all; docs/EMULATION.md says what is checked. Included by
 * kernels/cuda/ist_cuda.h; kernels never include it themselves. */
#ifndef IST_CUDA_EMU_H
#define IST_CUDA_EMU_H
#ifndef __cplusplus
#error "tests/cuda_emu/cuda_emu.h is the C++ prelude of emulated .cu files"
#endif
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

/* ---- The qualifiers: plain C++ on the CPU. Raw __shared__ stays undefined on purpose (STYLE 12:
 * shared memory only through IST_SHARED / IST_DYNAMIC_SHARED). */
#define __global__
#define __device__
#define __host__
#define __constant__
#define __grid_constant__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))

constexpr int warpSize = 32;

namespace ist_emu {

/* What a fiber sees as its built-in variables; the scheduler points tls_lane at the running one. */
struct Lane {
  uint3 tid, bid;
  dim3 bdim, gdim;
};
extern __thread const Lane *tls_lane;

/* A shared-memory handle: the allocation (start, size, name) and a byte offset into it. */
struct SH {
  unsigned char *base;
  int64_t off;
  uint32_t bytes;
  const char *name;
};
enum Access { READ = 0, WRITE = 1, ATOMIC = 2 };
/* Checks an access of `size` bytes at byte `byte` of h's allocation (bounds, alignment, races,
 * pending cp.async) and returns its address; a fault stops the kernel (never returns). */
void *sacc(const SH &h, int64_t byte, unsigned size, unsigned align, int kind);
SH shared_static(const void *key, size_t bytes, const char *name);
SH shared_dynamic(const char *name);

/* A warp collective: each lane fills its op, warp_op() returns when all lanes of the mask arrived,
 * with the lane's results filled in. */
enum OpKind {
  OP_SYNCWARP = 1,
  OP_SHFL_IDX,
  OP_SHFL_UP,
  OP_SHFL_DOWN,
  OP_SHFL_XOR,
  OP_BALLOT,
  OP_ALL,
  OP_ANY,
  OP_MMA_TF32,
  OP_MMA_BF16,
  OP_LDMATRIX
};
struct WarpOp {
  int kind;
  unsigned mask;
  const char *file;
  int line;
  uint64_t val, out;
  int arg, width;
  /* mma */
  const uint32_t *a, *b;
  const float *c;
  float *d;
  /* ldmatrix: arg = matrices (1, 2, 4), width = transposed */
  uint32_t *r;
  SH h;
};
void warp_op(WarpOp &op);
unsigned active_mask();
int syncthreads(const char *file, int line, int pred, int want);

void cp_async(const SH &dst, unsigned size, const void *src, unsigned src_bytes, const char *file, int line);
void cp_async_commit();
void cp_async_wait(int n);
void cp_async_wait_all();

/* Launches run the body once per thread on fibers; see emu.cc. */
struct LaunchInfo {
  const char *name;
  const void *func;
  dim3 grid, block;
  size_t smem;
  cudaStream_t stream;
  void (*body)(void *);
  void *arg;
};
void run(const LaunchInfo &L);

template <class... P, class... A>
void launch(const char *name, void (*k)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t st, A &&...a) {
  struct Ctx {
    void (*k)(P...);
    std::tuple<std::decay_t<P>...> args;
  };
  Ctx c{k, std::tuple<std::decay_t<P>...>(std::forward<A>(a)...)};
  LaunchInfo L{name, reinterpret_cast<const void *>(k), grid, block, smem, st,
               [](void *p) {
                 Ctx *cx = static_cast<Ctx *>(p);
                 auto args = cx->args; /* each thread gets its own copies of the parameters */
                 std::apply(cx->k, args);
               },
               &c};
  run(L);
}

template <class T>
struct nd_ {
  using type = T;
};
template <class T>
using nd = typename nd_<T>::type; /* keeps T from being deduced from a second argument */
}  // namespace ist_emu

#define threadIdx (::ist_emu::tls_lane->tid)
#define blockIdx (::ist_emu::tls_lane->bid)
#define blockDim (::ist_emu::tls_lane->bdim)
#define gridDim (::ist_emu::tls_lane->gdim)

#define IST_LAUNCH(kernel, grid, block, smem, stream, ...) \
  ::ist_emu::launch(#kernel, kernel, dim3(grid), dim3(block), (size_t)(smem), (stream), ##__VA_ARGS__)

/* ---- Shared memory through checked handles. */
template <class T>
class ist_sptr;

/* An element of shared memory: reads and writes go through the checks. */
template <class T>
class ist_sref {
  using V = std::remove_const_t<T>;
  ::ist_emu::SH h_;
  int64_t byte_;

 public:
  ist_sref(const ::ist_emu::SH &h, int64_t byte) : h_(h), byte_(byte) {}
  ist_sref(const ist_sref &) = default;
  V get() const {
    V v;
    std::memcpy(&v, ::ist_emu::sacc(h_, byte_, sizeof(V), alignof(V), ::ist_emu::READ), sizeof(V));
    return v;
  }
  operator V() const { return get(); }
  ist_sref &operator=(const V &v) {
    std::memcpy(::ist_emu::sacc(h_, byte_, sizeof(V), alignof(V), ::ist_emu::WRITE), &v, sizeof(V));
    return *this;
  }
  ist_sref &operator=(const ist_sref &o) { return *this = o.get(); }
  template <class U>
  ist_sref &operator=(const ist_sref<U> &o) {
    return *this = static_cast<V>(o.get());
  }
  template <class U>
  ist_sref &operator+=(const U &u) {
    V v = get();
    v += u;
    return *this = v;
  }
  template <class U>
  ist_sref &operator-=(const U &u) {
    V v = get();
    v -= u;
    return *this = v;
  }
  template <class U>
  ist_sref &operator*=(const U &u) {
    V v = get();
    v *= u;
    return *this = v;
  }
  template <class U>
  ist_sref &operator/=(const U &u) {
    V v = get();
    v /= u;
    return *this = v;
  }
  template <class U>
  ist_sref &operator|=(const U &u) {
    V v = get();
    v |= u;
    return *this = v;
  }
  template <class U>
  ist_sref &operator&=(const U &u) {
    V v = get();
    v &= u;
    return *this = v;
  }
  ist_sref &operator++() { return *this += 1; }
  ist_sref &operator--() { return *this -= 1; }
  V operator++(int) {
    V v = get();
    *this = v + 1;
    return v;
  }
  V operator--(int) {
    V v = get();
    *this = v - 1;
    return v;
  }
  ist_sptr<T> operator&() const;
};

template <class T>
class ist_sptr {
 public:
  ::ist_emu::SH h;
  ist_sptr() : h{nullptr, 0, 0, nullptr} {}
  ist_sptr(std::nullptr_t) : ist_sptr() {}
  explicit ist_sptr(const ::ist_emu::SH &s) : h(s) {}
  template <class U, class = std::enable_if_t<std::is_same<const U, T>::value && !std::is_same<U, T>::value>>
  ist_sptr(const ist_sptr<U> &o) : h(o.h) {}
  ist_sref<T> operator[](int64_t i) const { return ist_sref<T>(h, h.off + i * (int64_t)sizeof(T)); }
  ist_sref<T> operator*() const { return (*this)[0]; }
  ist_sptr operator+(int64_t i) const {
    ist_sptr p(*this);
    p.h.off += i * (int64_t)sizeof(T);
    return p;
  }
  ist_sptr operator-(int64_t i) const { return *this + (-i); }
  int64_t operator-(const ist_sptr &o) const { return (h.off - o.h.off) / (int64_t)sizeof(T); }
  ist_sptr &operator+=(int64_t i) { return *this = *this + i; }
  ist_sptr &operator-=(int64_t i) { return *this = *this - i; }
  ist_sptr &operator++() { return *this += 1; }
  ist_sptr &operator--() { return *this -= 1; }
  ist_sptr operator++(int) {
    ist_sptr p(*this);
    *this += 1;
    return p;
  }
  ist_sptr operator--(int) {
    ist_sptr p(*this);
    *this -= 1;
    return p;
  }
  const unsigned char *addr_() const { return h.base + h.off; }
  bool operator==(const ist_sptr &o) const { return addr_() == o.addr_(); }
  bool operator!=(const ist_sptr &o) const { return addr_() != o.addr_(); }
  bool operator<(const ist_sptr &o) const { return addr_() < o.addr_(); }
  bool operator<=(const ist_sptr &o) const { return addr_() <= o.addr_(); }
  bool operator>(const ist_sptr &o) const { return addr_() > o.addr_(); }
  bool operator>=(const ist_sptr &o) const { return addr_() >= o.addr_(); }
  explicit operator bool() const { return h.base != nullptr; }
};
template <class T>
inline ist_sptr<T> operator+(int64_t i, const ist_sptr<T> &p) {
  return p + i;
}
template <class T>
inline ist_sptr<T> ist_sref<T>::operator&() const {
  ::ist_emu::SH s = h_;
  s.off = byte_;
  return ist_sptr<T>(s);
}

/* Reinterpret a shared pointer (e.g. float → float4); the bound stays the allocation's. */
template <class U, class T>
inline ist_sptr<U> ist_scast(ist_sptr<T> p) {
  return ist_sptr<U>(p.h);
}

#define IST_SHARED(T, name, count)                  \
  static char name##_ist_key_;                      \
  ist_sptr<T> name(::ist_emu::shared_static(&name##_ist_key_, sizeof(T) * (size_t)(count), #name))
#define IST_DYNAMIC_SHARED(T, name) ist_sptr<T> name(::ist_emu::shared_dynamic(#name))

/* ---- Synchronization and warp collectives (the call site is kept for reports). */
inline void __syncthreads(const char *f = __builtin_FILE(), int l = __builtin_LINE()) {
  ::ist_emu::syncthreads(f, l, 0, 0);
}
inline int __syncthreads_count(int pred, const char *f = __builtin_FILE(), int l = __builtin_LINE()) {
  return ::ist_emu::syncthreads(f, l, pred != 0, 0);
}
inline int __syncthreads_and(int pred, const char *f = __builtin_FILE(), int l = __builtin_LINE()) {
  return ::ist_emu::syncthreads(f, l, pred != 0, 1);
}
inline int __syncthreads_or(int pred, const char *f = __builtin_FILE(), int l = __builtin_LINE()) {
  return ::ist_emu::syncthreads(f, l, pred != 0, 2);
}
inline void __syncwarp(unsigned mask = 0xffffffffu, const char *f = __builtin_FILE(), int l = __builtin_LINE()) {
  ::ist_emu::WarpOp op{};
  op.kind = ::ist_emu::OP_SYNCWARP;
  op.mask = mask;
  op.file = f;
  op.line = l;
  ::ist_emu::warp_op(op);
}
inline unsigned __activemask() { return ::ist_emu::active_mask(); }

namespace ist_emu {
template <class T>
inline T shfl_(int kind, unsigned mask, T v, int arg, int width, const char *f, int l) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle of a value wider than 8 bytes");
  WarpOp op{};
  op.kind = kind;
  op.mask = mask;
  op.file = f;
  op.line = l;
  std::memcpy(&op.val, &v, sizeof(T));
  op.arg = arg;
  op.width = width;
  warp_op(op);
  T r;
  std::memcpy(&r, &op.out, sizeof(T));
  return r;
}
inline unsigned vote_(int kind, unsigned mask, int pred, const char *f, int l) {
  WarpOp op{};
  op.kind = kind;
  op.mask = mask;
  op.file = f;
  op.line = l;
  op.val = pred != 0;
  warp_op(op);
  return (unsigned)op.out;
}
}  // namespace ist_emu

template <class T>
inline T __shfl_sync(unsigned mask, T v, int src, int width = warpSize, const char *f = __builtin_FILE(),
                     int l = __builtin_LINE()) {
  return ::ist_emu::shfl_(::ist_emu::OP_SHFL_IDX, mask, v, src, width, f, l);
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = warpSize, const char *f = __builtin_FILE(),
                        int l = __builtin_LINE()) {
  return ::ist_emu::shfl_(::ist_emu::OP_SHFL_UP, mask, v, (int)delta, width, f, l);
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = warpSize, const char *f = __builtin_FILE(),
                          int l = __builtin_LINE()) {
  return ::ist_emu::shfl_(::ist_emu::OP_SHFL_DOWN, mask, v, (int)delta, width, f, l);
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = warpSize, const char *f = __builtin_FILE(),
                         int l = __builtin_LINE()) {
  return ::ist_emu::shfl_(::ist_emu::OP_SHFL_XOR, mask, v, lane_mask, width, f, l);
}
inline unsigned __ballot_sync(unsigned mask, int pred, const char *f = __builtin_FILE(), int l = __builtin_LINE()) {
  return ::ist_emu::vote_(::ist_emu::OP_BALLOT, mask, pred, f, l);
}
inline int __all_sync(unsigned mask, int pred, const char *f = __builtin_FILE(), int l = __builtin_LINE()) {
  return (int)::ist_emu::vote_(::ist_emu::OP_ALL, mask, pred, f, l);
}
inline int __any_sync(unsigned mask, int pred, const char *f = __builtin_FILE(), int l = __builtin_LINE()) {
  return (int)::ist_emu::vote_(::ist_emu::OP_ANY, mask, pred, f, l);
}

/* ---- Memory fences, clocks, loads. One block runs on one OS thread; blocks on several threads
 * see each other's global writes through these fences and the atomics. */
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline long long clock64() { return (long long)__builtin_ia32_rdtsc(); }
template <class T>
inline T __ldg(const T *p) {
  return *p;
}

/* ---- Math intrinsics (the fast versions are the accurate ones here). */
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline float __powf(float a, float b) { return powf(a, b); }
inline float __fdividef(float a, float b) { return a / b; }
inline float fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __frsqrt_rn(float x) { return 1.0f / sqrtf(x); }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __saturatef(float x) { return x != x ? 0.0f : x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; }
inline int __float_as_int(float x) {
  int i;
  std::memcpy(&i, &x, 4);
  return i;
}
inline float __int_as_float(int i) {
  float x;
  std::memcpy(&x, &i, 4);
  return x;
}
inline unsigned __float_as_uint(float x) {
  unsigned i;
  std::memcpy(&i, &x, 4);
  return i;
}
inline float __uint_as_float(unsigned i) {
  float x;
  std::memcpy(&x, &i, 4);
  return x;
}
inline int __float2int_rn(float x) { return (int)nearbyintf(x); }
inline int __float2int_rz(float x) { return (int)x; }
inline int __float2int_rd(float x) { return (int)floorf(x); }
inline int __float2int_ru(float x) { return (int)ceilf(x); }
inline unsigned __float2uint_rn(float x) { return (unsigned)nearbyintf(x); }
inline float __int2float_rn(int i) { return (float)i; }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
inline int __clzll(long long x) { return x ? __builtin_clzll((unsigned long long)x) : 64; }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned __brev(unsigned x) {
  x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
  x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
  x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
  x = ((x >> 8) & 0x00ff00ffu) | ((x & 0x00ff00ffu) << 8);
  return (x >> 16) | (x << 16);
}
/* CUDA's device min/max overloads. */
#define IST_EMU_MINMAX(A, B, R)                                \
  inline R min(A a, B b) { return (R)b < (R)a ? (R)b : (R)a; } \
  inline R max(A a, B b) { return (R)a < (R)b ? (R)b : (R)a; }
IST_EMU_MINMAX(int, int, int)
IST_EMU_MINMAX(unsigned, unsigned, unsigned)
IST_EMU_MINMAX(int, unsigned, unsigned)
IST_EMU_MINMAX(unsigned, int, unsigned)
IST_EMU_MINMAX(long, long, long)
IST_EMU_MINMAX(int, long, long)
IST_EMU_MINMAX(long, int, long)
IST_EMU_MINMAX(unsigned long, unsigned long, unsigned long)
IST_EMU_MINMAX(long long, long long, long long)
IST_EMU_MINMAX(unsigned long long, unsigned long long, unsigned long long)
IST_EMU_MINMAX(float, float, float)
IST_EMU_MINMAX(double, double, double)
IST_EMU_MINMAX(float, double, double)
IST_EMU_MINMAX(double, float, double)
#undef IST_EMU_MINMAX

inline float2 make_float2(float x, float y) { return float2{x, y}; }
inline float3 make_float3(float x, float y, float z) { return float3{x, y, z}; }
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
inline int2 make_int2(int x, int y) { return int2{x, y}; }
inline int3 make_int3(int x, int y, int z) { return int3{x, y, z}; }
inline int4 make_int4(int x, int y, int z, int w) { return int4{x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return uint2{x, y}; }
inline uint3 make_uint3(unsigned x, unsigned y, unsigned z) { return uint3{x, y, z}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4{x, y, z, w}; }
inline double2 make_double2(double x, double y) { return double2{x, y}; }

/* ---- Atomics on global memory: real atomics (blocks may run on several OS threads). */
namespace ist_emu {
template <class T, class F>
inline T atomic_rmw_(T *p, F f) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8, "atomic on a 4- or 8-byte value");
  using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  U *q = reinterpret_cast<U *>(p);
  U old = __atomic_load_n(q, __ATOMIC_RELAXED), nw;
  T o, n;
  do {
    std::memcpy(&o, &old, sizeof(T));
    n = f(o);
    std::memcpy(&nw, &n, sizeof(T));
  } while (!__atomic_compare_exchange_n(q, &old, nw, true, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
  return o;
}
}  // namespace ist_emu
#define IST_EMU_ATOMIC_INT(T)                                                                                 \
  inline T atomicAdd(T *p, T v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }                     \
  inline T atomicSub(T *p, T v) { return __atomic_fetch_sub(p, v, __ATOMIC_SEQ_CST); }                     \
  inline T atomicAnd(T *p, T v) { return __atomic_fetch_and(p, v, __ATOMIC_SEQ_CST); }                     \
  inline T atomicOr(T *p, T v) { return __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST); }                       \
  inline T atomicXor(T *p, T v) { return __atomic_fetch_xor(p, v, __ATOMIC_SEQ_CST); }                     \
  inline T atomicExch(T *p, T v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }                   \
  inline T atomicMax(T *p, T v) {                                                                           \
    return ::ist_emu::atomic_rmw_(p, [v](T o) { return o < v ? v : o; });                                  \
  }                                                                                                         \
  inline T atomicMin(T *p, T v) {                                                                           \
    return ::ist_emu::atomic_rmw_(p, [v](T o) { return v < o ? v : o; });                                  \
  }                                                                                                         \
  inline T atomicCAS(T *p, T cmp, T v) {                                                                    \
    __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);                    \
    return cmp;                                                                                             \
  }
IST_EMU_ATOMIC_INT(int)
IST_EMU_ATOMIC_INT(unsigned)
IST_EMU_ATOMIC_INT(unsigned long long)
IST_EMU_ATOMIC_INT(long long)
#undef IST_EMU_ATOMIC_INT
inline float atomicAdd(float *p, float v) {
  return ::ist_emu::atomic_rmw_(p, [v](float o) { return o + v; });
}
inline double atomicAdd(double *p, double v) {
  return ::ist_emu::atomic_rmw_(p, [v](double o) { return o + v; });
}
inline float atomicExch(float *p, float v) {
  return ::ist_emu::atomic_rmw_(p, [v](float) { return v; });
}

/* Atomics on shared memory (one block runs on one OS thread: a checked read-modify-write). */
#define IST_EMU_SATOMIC(NAME, EXPR)                                                                     \
  template <class T>                                                                                    \
  inline T NAME(ist_sptr<T> p, ::ist_emu::nd<T> v) {                                                     \
    T *q = static_cast<T *>(::ist_emu::sacc(p.h, p.h.off, sizeof(T), alignof(T), ::ist_emu::ATOMIC));   \
    T o = *q;                                                                                           \
    *q = (EXPR);                                                                                        \
    return o;                                                                                           \
  }
IST_EMU_SATOMIC(atomicAdd, o + v)
IST_EMU_SATOMIC(atomicSub, o - v)
IST_EMU_SATOMIC(atomicMax, o < v ? v : o)
IST_EMU_SATOMIC(atomicMin, v < o ? v : o)
IST_EMU_SATOMIC(atomicExch, v)
IST_EMU_SATOMIC(atomicAnd, o &v)
IST_EMU_SATOMIC(atomicOr, o | v)
IST_EMU_SATOMIC(atomicXor, o ^ v)
#undef IST_EMU_SATOMIC
template <class T>
inline T atomicCAS(ist_sptr<T> p, ::ist_emu::nd<T> cmp, ::ist_emu::nd<T> v) {
  T *q = static_cast<T *>(::ist_emu::sacc(p.h, p.h.off, sizeof(T), alignof(T), ::ist_emu::ATOMIC));
  T o = *q;
  if (o == cmp) *q = v;
  return o;
}

/* ---- Tensor cores, emulated from the PTX ISA's fragment layouts (see ist_cuda.h). */
/* FP32 → TF32 (round to nearest, ties away), as a 32-bit pattern. */
inline uint32_t ist_f32_to_tf32(float x) {
  uint32_t u = __float_as_uint(x);
  if ((u & 0x7f800000u) == 0x7f800000u) return (u & 0x007fffffu) ? (u | 0x00400000u) & 0xffffe000u : u;
  return (u + 0x1000u) & 0xffffe000u;
}
/* Two floats → packed bf16x2 (round to nearest even); lo in the low 16 bits. */
inline uint32_t ist_pack_bf16x2(float lo, float hi) {
  return (uint32_t)ist_emu_bf16_bits_rn(lo) | ((uint32_t)ist_emu_bf16_bits_rn(hi) << 16);
}
inline void ist_mma_tf32_16x8x8(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4],
                                const char *f = __builtin_FILE(), int l = __builtin_LINE()) {
  ::ist_emu::WarpOp op{};
  op.kind = ::ist_emu::OP_MMA_TF32;
  op.mask = 0xffffffffu;
  op.file = f;
  op.line = l;
  op.a = a;
  op.b = b;
  op.c = c;
  op.d = d;
  ::ist_emu::warp_op(op);
}
inline void ist_mma_bf16_16x8x16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4],
                                 const char *f = __builtin_FILE(), int l = __builtin_LINE()) {
  ::ist_emu::WarpOp op{};
  op.kind = ::ist_emu::OP_MMA_BF16;
  op.mask = 0xffffffffu;
  op.file = f;
  op.line = l;
  op.a = a;
  op.b = b;
  op.c = c;
  op.d = d;
  ::ist_emu::warp_op(op);
}
namespace ist_emu {
template <class T>
inline void ldmatrix_(uint32_t *r, const ist_sptr<T> &row, int count, int trans, const char *f, int l) {
  WarpOp op{};
  op.kind = OP_LDMATRIX;
  op.mask = 0xffffffffu;
  op.file = f;
  op.line = l;
  op.arg = count;
  op.width = trans;
  op.r = r;
  op.h = row.h;
  warp_op(op);
}
}  // namespace ist_emu
template <class T>
inline void ist_ldmatrix_x1(uint32_t r[1], ist_sptr<T> row, const char *f = __builtin_FILE(),
                            int l = __builtin_LINE()) {
  ::ist_emu::ldmatrix_(r, row, 1, 0, f, l);
}
template <class T>
inline void ist_ldmatrix_x2(uint32_t r[2], ist_sptr<T> row, const char *f = __builtin_FILE(),
                            int l = __builtin_LINE()) {
  ::ist_emu::ldmatrix_(r, row, 2, 0, f, l);
}
template <class T>
inline void ist_ldmatrix_x4(uint32_t r[4], ist_sptr<T> row, const char *f = __builtin_FILE(),
                            int l = __builtin_LINE()) {
  ::ist_emu::ldmatrix_(r, row, 4, 0, f, l);
}
template <class T>
inline void ist_ldmatrix_x1_trans(uint32_t r[1], ist_sptr<T> row, const char *f = __builtin_FILE(),
                                  int l = __builtin_LINE()) {
  ::ist_emu::ldmatrix_(r, row, 1, 1, f, l);
}
template <class T>
inline void ist_ldmatrix_x2_trans(uint32_t r[2], ist_sptr<T> row, const char *f = __builtin_FILE(),
                                  int l = __builtin_LINE()) {
  ::ist_emu::ldmatrix_(r, row, 2, 1, f, l);
}
template <class T>
inline void ist_ldmatrix_x4_trans(uint32_t r[4], ist_sptr<T> row, const char *f = __builtin_FILE(),
                                  int l = __builtin_LINE()) {
  ::ist_emu::ldmatrix_(r, row, 4, 1, f, l);
}

/* ---- cp.async: queued per thread, performed (as that thread's shared writes) at the wait that
 * retires them; reading the destination before then is reported. */
template <class T>
inline void ist_cp_async_16(ist_sptr<T> dst, const void *src, const char *f = __builtin_FILE(),
                            int l = __builtin_LINE()) {
  ::ist_emu::cp_async(dst.h, 16, src, 16, f, l);
}
template <class T>
inline void ist_cp_async_16_zfill(ist_sptr<T> dst, const void *src, bool valid, const char *f = __builtin_FILE(),
                                  int l = __builtin_LINE()) {
  ::ist_emu::cp_async(dst.h, 16, src, valid ? 16 : 0, f, l);
}
template <class T>
inline void ist_cp_async_4(ist_sptr<T> dst, const void *src, const char *f = __builtin_FILE(),
                           int l = __builtin_LINE()) {
  ::ist_emu::cp_async(dst.h, 4, src, 4, f, l);
}
template <class T>
inline void ist_cp_async_4_zfill(ist_sptr<T> dst, const void *src, bool valid, const char *f = __builtin_FILE(),
                                 int l = __builtin_LINE()) {
  ::ist_emu::cp_async(dst.h, 4, src, valid ? 4 : 0, f, l);
}
inline void ist_cp_async_commit(void) { ::ist_emu::cp_async_commit(); }
template <int N>
inline void ist_cp_async_wait_group(void) {
  ::ist_emu::cp_async_wait(N);
}
inline void ist_cp_async_wait_all(void) { ::ist_emu::cp_async_wait_all(); }
#endif
