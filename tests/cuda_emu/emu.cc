/* The CPU execution check's engine: runs a launch's blocks one after another (or over OS threads,
 * IST_EMU_THREADS), the threads of a block as cooperative fibers, and checks what a GPU
 * would not report plainly: divergent barriers, threads exiting while others wait, warp collectives
 * whose lanes do not meet, out-of-bounds and misaligned shared accesses, shared-memory races, reads
 * of shared memory a cp.async is still filling. The first fault stops the launch (docs/EMULATION.md). */
#include <dlfcn.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <atomic>
#include <cstdarg>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/cuda_emu/cuda_emu.h"
#include "tests/cuda_emu/emu_internal.h"

/* Fibers switch with a few instructions on x86-64 (swapcontext makes a system call per switch, which
 * dominated the run time); elsewhere, or with IST_EMU_UCONTEXT, with ucontext. */
#if defined(__x86_64__) && !defined(IST_EMU_UCONTEXT)
#define IST_EMU_ASM_SWITCH 1
/* Saves the callee-saved registers and the FP control words on the current stack, stores its
 * pointer in *save, and continues on the stack `next` (saved the same way, or built by
 * init_stack). */
extern "C" void ist_emu_swap(void **save, void *next);
__asm__(
    ".text\n"
    ".globl ist_emu_swap\n"
    ".type ist_emu_swap,@function\n"
    "ist_emu_swap:\n"
    "  pushq %rbp\n"
    "  pushq %rbx\n"
    "  pushq %r12\n"
    "  pushq %r13\n"
    "  pushq %r14\n"
    "  pushq %r15\n"
    "  subq $8, %rsp\n"
    "  stmxcsr (%rsp)\n"
    "  fnstcw 4(%rsp)\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  ldmxcsr (%rsp)\n"
    "  fldcw 4(%rsp)\n"
    "  addq $8, %rsp\n"
    "  popq %r15\n"
    "  popq %r14\n"
    "  popq %r13\n"
    "  popq %r12\n"
    "  popq %rbx\n"
    "  popq %rbp\n"
    "  ret\n"
    ".size ist_emu_swap,.-ist_emu_swap\n");
#else
#define IST_EMU_ASM_SWITCH 0
#endif

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define IST_EMU_ASAN 1
#else
#define IST_EMU_ASAN 0
#endif

namespace ist_emu {
__thread const Lane *tls_lane;

namespace {
/* Each fiber's stack (kernels keep small frames; sanitizers make them larger). */
constexpr size_t kStackBytes = IST_EMU_ASAN ? 512 * 1024 : 64 * 1024;
constexpr size_t kGuardBytes = 4096;
constexpr unsigned kMaxThreadsPerBlock = 1024;
constexpr size_t kStaticSmemLimit = 48 * 1024;   /* static shared memory per block */
constexpr size_t kDynSmemDefault = 48 * 1024;    /* dynamic, without cudaFuncSetAttribute */
constexpr size_t kSmemOptin = 232448;            /* H100: 227 KiB per block after opting in */
constexpr unsigned kFullMask = 0xffffffffu;

enum State { RUN, BAR, WARP, DONE };

struct Copy {
  uint32_t dst, size, src_bytes;
  const void *src;
  const char *name;
  int64_t rel;
  const char *file;
  int line;
};

struct Thr {
  Lane lane;
  int tid = 0;
  State st = DONE;
#if IST_EMU_ASM_SWITCH
  void *sp = nullptr;
#else
  bool ctx_init = false;
  ucontext_t ctx;
#endif
  char *stack = nullptr;
  WarpOp *wop = nullptr;
  std::vector<Copy> cp;        /* issued, not yet performed, in issue order */
  std::vector<size_t> groups;  /* where each committed group ends in cp */
  void *fake = nullptr;        /* ASan's fake stack of this fiber */
};

struct Warp {
  uint32_t arrived, done, sync; /* lanes waiting in a collective, lanes returned, collectives so far */
  WarpOp *ops[32];
};

/* Shadow of 2 bytes of shared memory: the last writer, up to two readers and atomic updaters of the
 * current barrier interval (epoch), each with its warp's collective count at the time, and the
 * cp.async copies still pending into it. */
struct Word {
  uint32_t w_ep, r_ep, a_ep, w_ws, r_ws, r2_ws;
  int16_t writer, reader, reader2, athr;
  uint16_t pend;
  int16_t pend_thr;
  const void *w_pc, *r_pc; /* the code of the last write and of the first read, for reports */
};

struct Alloc {
  const void *key;
  uint32_t off, bytes;
};

struct Exec {
  const LaunchInfo *L = nullptr;
  unsigned n = 0;
  std::vector<Thr> thr;
  char *stacks = nullptr;
  size_t nstacks = 0;
  std::vector<Warp> warps;
  unsigned char *arena = nullptr;
  size_t arena_cap = 0;
  std::vector<Word> shadow;
  std::vector<Alloc> allocs;
  uint32_t dyn_bytes = 0, static_base = 0, static_top = 0;
  uint32_t ep = 0, ep_ctr = 0;
  unsigned bar_count = 0;
  const char *bar_file = nullptr;
  int bar_line = 0, bar_first = -1, bar_pred = 0, bar_result = 0;
  const char *last_bar_file = nullptr;
  int last_bar_line = 0;
  unsigned ndone = 0;
  int first_done = -1;
  uint3 bid{0, 0, 0};
#if IST_EMU_ASM_SWITCH
  void *sched_sp = nullptr;
#else
  ucontext_t sched;
#endif
  void *sched_fake = nullptr;
  const void *sched_bottom = nullptr;
  size_t sched_size = 0;
  bool failed = false;
  std::string msg;
  const void *acc_pc = nullptr; /* the kernel code of the shared access being checked, when known */
  ~Exec() {
    if (stacks) munmap(stacks, nstacks * (kStackBytes + kGuardBytes));
    free(arena);
  }
};

__thread Exec *tls_exec;
__thread Thr *tls_thr;

std::mutex g_launch_mu;
std::vector<std::unique_ptr<Exec>> g_execs;
std::mutex g_attr_mu;
std::map<const void *, int> g_max_dyn; /* cudaFuncAttributeMaxDynamicSharedMemorySize per kernel */

std::mutex g_err_mu;
std::string g_report;
cudaError_t g_report_code = cudaSuccess, g_sticky = cudaSuccess, g_last = cudaSuccess;

std::string vformat(const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(nullptr, 0, fmt, ap2);
  va_end(ap2);
  std::string s(n > 0 ? (size_t)n : 0, '\0');
  if (n > 0) vsnprintf(&s[0], (size_t)n + 1, fmt, ap);
  return s;
}

std::string tname(const Exec *ex, int tid) {
  unsigned bx = ex->L->block.x, by = ex->L->block.y;
  return format("(%u,%u,%u)", (unsigned)tid % bx, (unsigned)tid / bx % by, (unsigned)tid / (bx * by));
}
std::string where(const Exec *ex) {
  return format("kernel %s, block (%u,%u,%u)", ex->L->name, ex->bid.x, ex->bid.y, ex->bid.z);
}
std::string site(const char *f, int l) { return f ? format("%s:%d", f, l) : std::string("?"); }
std::string last_barrier(const Exec *ex) {
  return ex->last_bar_file ? "the barrier at " + site(ex->last_bar_file, ex->last_bar_line) : "the block's start";
}
const char *opname(int kind) {
  switch (kind) {
  case OP_SYNCWARP: return "__syncwarp";
  case OP_SHFL_IDX: return "__shfl_sync";
  case OP_SHFL_UP: return "__shfl_up_sync";
  case OP_SHFL_DOWN: return "__shfl_down_sync";
  case OP_SHFL_XOR: return "__shfl_xor_sync";
  case OP_BALLOT: return "__ballot_sync";
  case OP_ALL: return "__all_sync";
  case OP_ANY: return "__any_sync";
  case OP_MMA_TF32: return "ist_mma_tf32_16x8x8";
  case OP_MMA_BF16: return "ist_mma_bf16_16x8x16";
  case OP_LDMATRIX: return "ist_ldmatrix";
  default: return "warp collective";
  }
}
bool same_site(const char *f1, int l1, const char *f2, int l2) {
  return l1 == l2 && (f1 == f2 || (f1 && f2 && strcmp(f1, f2) == 0));
}

/* ---- Fiber switching (annotated for AddressSanitizer, which must know whose stack is live). */
void enter_fiber(Exec *ex, Thr *t) {
  tls_thr = t;
  tls_lane = &t->lane;
#if IST_EMU_ASAN
  __sanitizer_start_switch_fiber(&ex->sched_fake, t->stack, kStackBytes);
#endif
#if IST_EMU_ASM_SWITCH
  ist_emu_swap(&ex->sched_sp, t->sp);
#else
  swapcontext(&ex->sched, &t->ctx);
#endif
#if IST_EMU_ASAN
  __sanitizer_finish_switch_fiber(ex->sched_fake, nullptr, nullptr);
#endif
  tls_thr = nullptr;
  tls_lane = nullptr;
}
/* Back to the scheduler; `final` when the fiber will never run again (exited or faulted). */
void leave_fiber(Exec *ex, Thr *t, bool final) {
#if IST_EMU_ASAN
  __sanitizer_start_switch_fiber(final ? nullptr : &t->fake, ex->sched_bottom, ex->sched_size);
#else
  (void)final;
#endif
#if IST_EMU_ASM_SWITCH
  ist_emu_swap(&t->sp, ex->sched_sp);
#else
  swapcontext(&t->ctx, &ex->sched);
#endif
#if IST_EMU_ASAN
  __sanitizer_finish_switch_fiber(t->fake, &ex->sched_bottom, &ex->sched_size);
#endif
}

/* A fault: recorded on the executor; inside a fiber the fiber is then abandoned (never resumed). The
 * message is built and stored in a statement of its own, so no temporary string is left alive on
 * the abandoned stack (LeakSanitizer would report it). */
void sched_fail(Exec *ex, const std::string &msg) {
  if (!ex->failed) {
    ex->failed = true;
    ex->msg = msg;
  }
}
[[noreturn]] void abandon(Exec *ex, Thr *t) {
  leave_fiber(ex, t, true);
  abort(); /* unreachable: a failed block's fibers are never resumed */
}
#define fiber_fail(ex, t, msg) \
  do {                         \
    sched_fail((ex), (msg));   \
    abandon((ex), (t));        \
  } while (0)

[[noreturn]] void outside_kernel(const char *what) {
  fprintf(stderr, "insitu CUDA emulation: %s called outside a kernel\n", what);
  abort();
}

void thread_exit(Exec *ex, Thr *t);

void fiber_entry() {
  Exec *ex = tls_exec;
  Thr *t = tls_thr;
#if IST_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &ex->sched_bottom, &ex->sched_size);
#endif
  ex->L->body(ex->L->arg);
  thread_exit(ex, t);
  leave_fiber(ex, t, true);
  abort();
}

/* ---- Shared-memory checks. */
bool warp_separated(const Exec *ex, int u, uint32_t u_ws, int t) {
  return (u >> 5) == (t >> 5) && ex->warps[(size_t)(t >> 5)].sync != u_ws;
}

/* Where the kernel code of a shared access is, for addr2line (shared accesses carry no source line). */
std::string code_at(const void *pc, const void *earlier = nullptr) {
  Dl_info di, de;
  if (!pc || !dladdr(pc, &di) || !di.dli_fname) return "";
  unsigned long off = (unsigned long)((uintptr_t)pc - (uintptr_t)di.dli_fbase) - 1; /* the call, not the return */
  if (earlier && dladdr(earlier, &de) && de.dli_fbase == di.dli_fbase) {
    unsigned long e = (unsigned long)((uintptr_t)earlier - (uintptr_t)de.dli_fbase) - 1;
    return format("; the two accesses: `addr2line -Cfpie %s %#lx %#lx`", di.dli_fname, e, off);
  }
  return format("; the access: `addr2line -Cfpie %s %#lx`", di.dli_fname, off);
}
[[noreturn]] void race(Exec *ex, Thr *t, int u, const char *u_did, const char *t_did, const char *name,
                       int64_t rel, const void *u_pc) {
  fiber_fail(ex, t,
             format("shared-memory race in %s: thread %s %s `%s` byte %lld and thread %s %s it with no "
                    "__syncthreads between (both after %s)%s",
                    where(ex).c_str(), tname(ex, u).c_str(), u_did, name ? name : "?", (long long)rel,
                    tname(ex, t->tid).c_str(), t_did, last_barrier(ex).c_str(), code_at(ex->acc_pc, u_pc).c_str()));
}

const Copy *find_copy(const Exec *ex, int thr, uint32_t ab) {
  if (thr < 0 || (unsigned)thr >= ex->n) return nullptr;
  for (const Copy &c : ex->thr[(size_t)thr].cp)
    if (ab >= c.dst && ab < c.dst + c.size) return &c;
  return nullptr;
}

/* Records an access of thread t (which may be a lane other than the running fiber, for ldmatrix)
 * to arena bytes [ab, ab+size); `rel` is the byte offset within the named array. */
void check_units(Exec *ex, Thr *running, int t, uint32_t ab, unsigned size, int kind, const char *name,
                 int64_t rel) {
  const uint32_t ep = ex->ep, ws = ex->warps[(size_t)(t >> 5)].sync;
  const char *did = kind == WRITE ? "wrote" : kind == READ ? "read" : "atomically updated";
  for (uint32_t u = ab >> 1; u <= (ab + size - 1) >> 1; u++) {
    Word &W = ex->shadow[u];
    if (W.pend) {
      const Copy *c = find_copy(ex, W.pend_thr, u << 1);
      fiber_fail(ex, running,
                 format("read before wait in %s: thread %s %s `%s` byte %lld while a cp.async of thread %s%s%s "
                        "is still filling it (wait for the copy with ist_cp_async_wait_group/_all first, and "
                        "__syncthreads() before other threads read it)%s",
                        where(ex).c_str(), tname(ex, t).c_str(), did, name ? name : "?", (long long)rel,
                        tname(ex, W.pend_thr).c_str(), c ? " issued at " : "",
                        c ? site(c->file, c->line).c_str() : "", code_at(ex->acc_pc).c_str()));
    }
    if (W.w_ep == ep && W.writer != t && !warp_separated(ex, W.writer, W.w_ws, t))
      race(ex, running, W.writer, "wrote", did, name, rel, W.w_pc);
    if (W.a_ep == ep && W.athr != t && kind != ATOMIC) race(ex, running, W.athr < 0 ? t : W.athr,
                                                            "atomically updated", did, name, rel, nullptr);
    if (kind != READ && W.r_ep == ep) {
      if (W.reader != t && !warp_separated(ex, W.reader, W.r_ws, t)) race(ex, running, W.reader, "read", did, name, rel, W.r_pc);
      if (W.reader2 >= 0 && W.reader2 != t && !warp_separated(ex, W.reader2, W.r2_ws, t))
        race(ex, running, W.reader2, "read", did, name, rel, nullptr);
    }
    if (kind == WRITE) {
      W.w_ep = ep;
      W.writer = (int16_t)t;
      W.w_ws = ws;
      W.w_pc = ex->acc_pc;
    } else if (kind == READ) {
      if (W.r_ep != ep) {
        W.r_ep = ep;
        W.reader = (int16_t)t;
        W.r_ws = ws;
        W.reader2 = -1;
        W.r_pc = ex->acc_pc;
      } else if (W.reader != t && W.reader2 != t &&
                 (W.reader2 < 0 || ((W.reader2 >> 5) == (W.reader >> 5) && (t >> 5) != (W.reader >> 5)))) {
        W.reader2 = (int16_t)t; /* prefer a second reader from another warp */
        W.r2_ws = ws;
      }
    } else {
      W.athr = (W.a_ep == ep && W.athr != t) ? (int16_t)-2 : (int16_t)t;
      W.a_ep = ep;
    }
  }
}

void add_pending(Exec *ex, uint32_t ab, unsigned size, int delta, int thr) {
  for (uint32_t u = ab >> 1; u <= (ab + size - 1) >> 1; u++) {
    Word &W = ex->shadow[u];
    W.pend = (uint16_t)(W.pend + delta);
    if (delta > 0) W.pend_thr = (int16_t)thr;
  }
}

/* ---- Barriers and warps. */
void thread_exit(Exec *ex, Thr *t) {
  if (ex->bar_count > 0)
    fiber_fail(ex, t,
               format("thread exited while others wait at a barrier in %s: thread %s returned while thread %s "
                      "(and %u in all) waits at __syncthreads %s",
                      where(ex).c_str(), tname(ex, t->tid).c_str(), tname(ex, ex->bar_first).c_str(),
                      ex->bar_count, site(ex->bar_file, ex->bar_line).c_str()));
  Warp &w = ex->warps[(size_t)(t->tid >> 5)];
  int lane = t->tid & 31;
  for (int j = 0; j < 32; j++)
    if ((w.arrived >> j & 1) && (w.ops[j]->mask >> lane & 1))
      fiber_fail(ex, t,
                 format("warp divergence in %s: lane %d (thread %s) returned while lane %d waits at %s %s with "
                        "mask %#010x, which names it",
                        where(ex).c_str(), lane, tname(ex, t->tid).c_str(), j, opname(w.ops[j]->kind),
                        site(w.ops[j]->file, w.ops[j]->line).c_str(), w.ops[j]->mask));
  t->st = DONE;
  w.done |= 1u << lane;
  ex->ndone++;
  if (ex->first_done < 0) ex->first_done = t->tid;
}

void deadlock(Exec *ex) {
  for (unsigned i = 0; i < ex->n; i++) {
    Thr &t = ex->thr[i];
    if (t.st != WARP) continue;
    int wbase = (int)(i & ~31u);
    Warp &w = ex->warps[i >> 5];
    unsigned missing = t.wop->mask & ~w.arrived;
    if (!missing) continue;
    int j = __builtin_ctz(missing);
    Thr &u = ex->thr[(size_t)(wbase + j)];
    if (u.st == BAR)
      return sched_fail(ex, format("warp divergence in %s: lane %d (thread %s) waits at __syncthreads %s while "
                                   "lane %u (thread %s) waits at %s %s with mask %#010x, which names it",
                                   where(ex).c_str(), j, tname(ex, u.tid).c_str(),
                                   site(ex->bar_file, ex->bar_line).c_str(), i & 31, tname(ex, t.tid).c_str(),
                                   opname(t.wop->kind), site(t.wop->file, t.wop->line).c_str(), t.wop->mask));
    if (u.st == WARP)
      return sched_fail(ex, format("warp divergence in %s: lane %u waits at %s %s with mask %#010x, lane %d at "
                                   "%s %s with mask %#010x",
                                   where(ex).c_str(), i & 31, opname(t.wop->kind),
                                   site(t.wop->file, t.wop->line).c_str(), t.wop->mask, j, opname(u.wop->kind),
                                   site(u.wop->file, u.wop->line).c_str(), u.wop->mask));
  }
  sched_fail(ex, format("deadlock in %s: no thread can proceed", where(ex).c_str()));
}

float tf32_value(uint32_t bits) { return __uint_as_float(bits & 0xffffe000u); }
float bf16_value(uint32_t half) { return __uint_as_float((half & 0xffffu) << 16); }

void resolve(Exec *ex, Warp &w, unsigned mask, int wbase, Thr *running) {
  int kind = w.ops[__builtin_ctz(mask)]->kind;
  switch (kind) {
  case OP_SYNCWARP: break;
  case OP_SHFL_IDX:
  case OP_SHFL_UP:
  case OP_SHFL_DOWN:
  case OP_SHFL_XOR:
    for (int l = 0; l < 32; l++) {
      if (!(mask >> l & 1)) continue;
      WarpOp *o = w.ops[l];
      int width = o->width;
      if (width < 1 || width > 32 || (width & (width - 1)))
        fiber_fail(ex, running, format("bad shuffle width %d at %s in %s", width, site(o->file, o->line).c_str(),
                                       where(ex).c_str()));
      int seg = l & ~(width - 1), src = l;
      if (kind == OP_SHFL_IDX) src = seg + (o->arg & (width - 1));
      else if (kind == OP_SHFL_UP) src = (l - seg) >= o->arg ? l - o->arg : l;
      else if (kind == OP_SHFL_DOWN) src = (l - seg) + o->arg < width ? l + o->arg : l;
      else {
        src = l ^ o->arg;
        if (src < 0 || src > 31 || src >= seg + width) src = l;
      }
      /* A source lane outside the mask gives an undefined value on a GPU; here the lane's own. */
      o->out = (mask >> src & 1) ? w.ops[src]->val : o->val;
    }
    break;
  case OP_BALLOT:
  case OP_ALL:
  case OP_ANY: {
    unsigned bits = 0;
    for (int l = 0; l < 32; l++)
      if ((mask >> l & 1) && w.ops[l]->val) bits |= 1u << l;
    uint64_t r = kind == OP_BALLOT ? bits : kind == OP_ALL ? (bits == mask) : (bits != 0);
    for (int l = 0; l < 32; l++)
      if (mask >> l & 1) w.ops[l]->out = r;
    break;
  }
  case OP_MMA_TF32: {
    float A[16][8], B[8][8], C[16][8];
    for (int l = 0; l < 32; l++) {
      const WarpOp *o = w.ops[l];
      int g = l >> 2, t = l & 3;
      A[g][t] = tf32_value(o->a[0]);
      A[g + 8][t] = tf32_value(o->a[1]);
      A[g][t + 4] = tf32_value(o->a[2]);
      A[g + 8][t + 4] = tf32_value(o->a[3]);
      B[t][g] = tf32_value(o->b[0]);
      B[t + 4][g] = tf32_value(o->b[1]);
      C[g][2 * t] = o->c[0];
      C[g][2 * t + 1] = o->c[1];
      C[g + 8][2 * t] = o->c[2];
      C[g + 8][2 * t + 1] = o->c[3];
    }
    for (int i = 0; i < 16; i++)
      for (int j = 0; j < 8; j++) {
        float acc = C[i][j];
        for (int k = 0; k < 8; k++) acc += A[i][k] * B[k][j];
        C[i][j] = acc;
      }
    for (int l = 0; l < 32; l++) {
      int g = l >> 2, t = l & 3;
      float *d = w.ops[l]->d;
      d[0] = C[g][2 * t];
      d[1] = C[g][2 * t + 1];
      d[2] = C[g + 8][2 * t];
      d[3] = C[g + 8][2 * t + 1];
    }
    break;
  }
  case OP_MMA_BF16: {
    float A[16][16], B[16][8], C[16][8];
    for (int l = 0; l < 32; l++) {
      const WarpOp *o = w.ops[l];
      int g = l >> 2, t = l & 3;
      for (int h = 0; h < 2; h++) {
        A[g][2 * t + h] = bf16_value(o->a[0] >> (16 * h));
        A[g + 8][2 * t + h] = bf16_value(o->a[1] >> (16 * h));
        A[g][2 * t + 8 + h] = bf16_value(o->a[2] >> (16 * h));
        A[g + 8][2 * t + 8 + h] = bf16_value(o->a[3] >> (16 * h));
        B[2 * t + h][g] = bf16_value(o->b[0] >> (16 * h));
        B[2 * t + 8 + h][g] = bf16_value(o->b[1] >> (16 * h));
      }
      C[g][2 * t] = o->c[0];
      C[g][2 * t + 1] = o->c[1];
      C[g + 8][2 * t] = o->c[2];
      C[g + 8][2 * t + 1] = o->c[3];
    }
    for (int i = 0; i < 16; i++)
      for (int j = 0; j < 8; j++) {
        float acc = C[i][j];
        for (int k = 0; k < 16; k++) acc += A[i][k] * B[k][j];
        C[i][j] = acc;
      }
    for (int l = 0; l < 32; l++) {
      int g = l >> 2, t = l & 3;
      float *d = w.ops[l]->d;
      d[0] = C[g][2 * t];
      d[1] = C[g][2 * t + 1];
      d[2] = C[g + 8][2 * t];
      d[3] = C[g + 8][2 * t + 1];
    }
    break;
  }
  case OP_LDMATRIX: {
    int count = w.ops[0]->arg, trans = w.ops[0]->width;
    for (int l = 1; l < 32; l++)
      if (w.ops[l]->arg != count || w.ops[l]->width != trans)
        fiber_fail(ex, running, format("warp divergence in %s: lanes 0 and %d call different ldmatrix forms (%s, %s)",
                                       where(ex).c_str(), l, site(w.ops[0]->file, w.ops[0]->line).c_str(),
                                       site(w.ops[l]->file, w.ops[l]->line).c_str()));
    uint16_t rows[4][8][8];
    for (int m = 0; m < count; m++)
      for (int r = 0; r < 8; r++) {
        int p = 8 * m + r;
        const SH &h = w.ops[p]->h;
        if (!h.base || h.off < 0 || h.off + 16 > (int64_t)h.bytes)
          fiber_fail(ex, running,
                     format("out-of-bounds shared-memory read in %s: ldmatrix at %s, lane %d (thread %s) gives row "
                            "%d of matrix %d at `%s` bytes %lld..%lld, outside its %u bytes",
                            where(ex).c_str(), site(w.ops[p]->file, w.ops[p]->line).c_str(), p,
                            tname(ex, wbase + p).c_str(), r, m, h.name ? h.name : "?", (long long)h.off,
                            (long long)h.off + 15, h.bytes));
        uint32_t ab = (uint32_t)(h.base - ex->arena + h.off);
        if (ab % 16)
          fiber_fail(ex, running, format("misaligned ldmatrix row in %s: lane %d gives `%s` byte %lld, not 16-byte "
                                         "aligned (%s)",
                                         where(ex).c_str(), p, h.name ? h.name : "?", (long long)h.off,
                                         site(w.ops[p]->file, w.ops[p]->line).c_str()));
        check_units(ex, running, wbase + p, ab, 16, READ, h.name, h.off);
        memcpy(rows[m][r], ex->arena + ab, 16);
      }
    for (int l = 0; l < 32; l++) {
      int g = l >> 2, c = 2 * (l & 3);
      for (int m = 0; m < count; m++) {
        uint32_t lo = trans ? rows[m][c][g] : rows[m][g][c], hi = trans ? rows[m][c + 1][g] : rows[m][g][c + 1];
        w.ops[l]->r[m] = lo | hi << 16;
      }
    }
    break;
  }
  default: fiber_fail(ex, running, format("unknown warp collective %d in %s", kind, where(ex).c_str()));
  }
}

uint32_t live_lanes(const Exec *ex, int wbase) {
  uint32_t exist = ex->n - (unsigned)wbase >= 32 ? kFullMask : (1u << (ex->n - (unsigned)wbase)) - 1;
  return exist & ~ex->warps[(size_t)(wbase >> 5)].done;
}

/* ---- Blocks and launches. */
void prepare(Exec *ex, const LaunchInfo &L) {
  ex->L = &L;
  unsigned n = L.block.x * L.block.y * L.block.z;
  ex->n = n;
  if (ex->thr.size() < n) {
    ex->thr.resize(n);
#if !IST_EMU_ASM_SWITCH
    for (auto &t : ex->thr) t.ctx_init = false;
#endif
  }
  if (ex->nstacks < n) {
    if (ex->stacks) munmap(ex->stacks, ex->nstacks * (kStackBytes + kGuardBytes));
    size_t bytes = n * (kStackBytes + kGuardBytes);
    void *p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
      fprintf(stderr, "insitu CUDA emulation: cannot map %zu bytes of fiber stacks\n", bytes);
      abort();
    }
    ex->stacks = static_cast<char *>(p);
    ex->nstacks = n;
    for (size_t i = 0; i < n; i++) mprotect(ex->stacks + i * (kStackBytes + kGuardBytes), kGuardBytes, PROT_NONE);
  }
  for (unsigned i = 0; i < n; i++) {
    Thr &t = ex->thr[i];
    t.tid = (int)i;
    t.stack = ex->stacks + i * (kStackBytes + kGuardBytes) + kGuardBytes;
    t.lane.tid = uint3{i % L.block.x, i / L.block.x % L.block.y, i / (L.block.x * L.block.y)};
    t.lane.bdim = L.block;
    t.lane.gdim = L.grid;
#if !IST_EMU_ASM_SWITCH
    if (!t.ctx_init) {
      getcontext(&t.ctx);
      t.ctx_init = true;
    }
#endif
  }
  ex->warps.resize((n + 31) / 32);
  ex->dyn_bytes = (uint32_t)L.smem;
  ex->static_base = (uint32_t)((L.smem + 15) & ~(size_t)15);
  size_t cap = (ex->static_base + kStaticSmemLimit + 127) & ~(size_t)127; /* aligned_alloc: a multiple of 128 */
  if (ex->arena_cap < cap) {
    free(ex->arena);
    ex->arena = static_cast<unsigned char *>(aligned_alloc(128, cap));
    ex->arena_cap = cap;
    ex->shadow.assign(cap / 2 + 1, Word{});
  }
  ex->failed = false;
  ex->msg.clear();
}

/* A fresh fiber that starts in fiber_entry. */
void init_stack(Thr &t) {
#if IST_EMU_ASM_SWITCH
  /* As ist_emu_swap leaves a stack: FP control words, r15..rbp, then the address `ret` jumps to;
   * above it a null return address for fiber_entry, which never returns. */
  uint64_t *top = reinterpret_cast<uint64_t *>(t.stack + kStackBytes);
  top[-1] = 0;
  top[-2] = reinterpret_cast<uint64_t>(&fiber_entry);
  for (int i = 3; i <= 8; i++) top[-i] = 0;
  uint32_t cw[2];
  __asm__ volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(cw[0]), "=m"(cw[1]));
  memcpy(&top[-9], cw, 8);
  t.sp = &top[-9];
#else
  t.ctx.uc_stack.ss_sp = t.stack;
  t.ctx.uc_stack.ss_size = kStackBytes;
  t.ctx.uc_link = nullptr;
  makecontext(&t.ctx, fiber_entry, 0);
#endif
}

void run_block(Exec *ex, uint64_t b) {
  const LaunchInfo &L = *ex->L;
  ex->bid = uint3{(unsigned)(b % L.grid.x), (unsigned)(b / L.grid.x % L.grid.y),
                  (unsigned)(b / ((uint64_t)L.grid.x * L.grid.y))};
  memset(ex->arena, 0xff, ex->dyn_bytes); /* NaN in every float type: a read before a write shows */
  ex->allocs.clear();
  ex->static_top = ex->static_base;
  ex->ep = ++ex->ep_ctr;
  ex->bar_count = 0;
  ex->bar_first = -1;
  ex->last_bar_file = nullptr;
  ex->ndone = 0;
  ex->first_done = -1;
  for (auto &w : ex->warps) {
    w.arrived = 0;
    w.done = 0;
    w.sync = 0;
  }
  for (unsigned i = 0; i < ex->n; i++) {
    Thr &t = ex->thr[i];
    t.lane.bid = ex->bid;
    t.st = RUN;
    t.wop = nullptr;
    t.cp.clear();
    t.groups.clear();
    t.fake = nullptr;
#if IST_EMU_ASAN
    __asan_unpoison_memory_region(t.stack, kStackBytes); /* frames a faulted fiber left behind */
#endif
    init_stack(t);
  }
  while (!ex->failed && ex->ndone < ex->n) {
    bool ran = false;
    for (unsigned i = 0; i < ex->n && !ex->failed; i++)
      if (ex->thr[i].st == RUN) {
        enter_fiber(ex, &ex->thr[i]);
        ran = true;
      }
    if (!ran && !ex->failed) deadlock(ex);
  }
  for (unsigned i = 0; i < ex->n; i++) /* copies never waited for */
    for (const Copy &c : ex->thr[i].cp) add_pending(ex, c.dst, c.size, -1, (int)i);
}

unsigned env_threads() {
  const char *s = getenv("IST_EMU_THREADS");
  long v = s ? strtol(s, nullptr, 10) : 1;
  return v < 1 ? 1u : v > 256 ? 256u : (unsigned)v;
}
}  // namespace

std::string format(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::string s = vformat(fmt, ap);
  va_end(ap);
  return s;
}

void report_fault(cudaError_t code, const std::string &msg) {
  std::lock_guard<std::mutex> lk(g_err_mu);
  if (g_sticky == cudaSuccess) g_sticky = code;
  g_report = msg;
  g_report_code = code;
  fprintf(stderr, "insitu CUDA emulation: %s\n", msg.c_str());
}
void report_error(cudaError_t code, const std::string &msg) {
  std::lock_guard<std::mutex> lk(g_err_mu);
  g_last = code;
  g_report = msg;
  g_report_code = code;
  fprintf(stderr, "insitu CUDA emulation: %s\n", msg.c_str());
}
void report_note(const std::string &msg) {
  std::lock_guard<std::mutex> lk(g_err_mu);
  g_report = msg;
  fprintf(stderr, "insitu CUDA emulation: %s\n", msg.c_str());
}
cudaError_t sticky() {
  std::lock_guard<std::mutex> lk(g_err_mu);
  return g_sticky;
}

void *sacc(const SH &h, int64_t byte, unsigned size, unsigned align, int kind) {
  Exec *ex = tls_exec;
  Thr *t = tls_thr;
  if (!ex || !t) outside_kernel("a shared-memory access");
  ex->acc_pc = __builtin_return_address(0);
  const char *did = kind == WRITE ? "write" : kind == READ ? "read" : "atomic update";
  if (!h.base)
    fiber_fail(ex, t, format("shared-memory %s through a null ist_sptr in %s by thread %s", did, where(ex).c_str(),
                             tname(ex, t->tid).c_str()));
  if (byte < 0 || byte + size > h.bytes)
    fiber_fail(ex, t,
               format("out-of-bounds shared-memory %s in %s: thread %s accessed `%s`[%lld] (bytes %lld..%lld), "
                      "outside its %u bytes%s",
                      did, where(ex).c_str(), tname(ex, t->tid).c_str(), h.name ? h.name : "?",
                      (long long)(byte >= 0 ? byte / size : -((-byte + size - 1) / size)), (long long)byte,
                      (long long)byte + size - 1, h.bytes, code_at(ex->acc_pc).c_str()));
  uint32_t ab = (uint32_t)(h.base - ex->arena + byte);
  if (align > 16) align = 16;
  if (align > 1 && ab % align)
    fiber_fail(ex, t, format("misaligned shared-memory %s in %s: thread %s accessed %u bytes at `%s` byte %lld%s",
                             did, where(ex).c_str(), tname(ex, t->tid).c_str(), size, h.name ? h.name : "?",
                             (long long)byte, code_at(ex->acc_pc).c_str()));
  check_units(ex, t, t->tid, ab, size, kind, h.name, byte);
  return ex->arena + ab;
}

SH shared_static(const void *key, size_t bytes, const char *name) {
  Exec *ex = tls_exec;
  Thr *t = tls_thr;
  if (!ex || !t) outside_kernel("IST_SHARED");
  for (const Alloc &a : ex->allocs)
    if (a.key == key) return SH{ex->arena + a.off, 0, a.bytes, name};
  uint32_t off = (ex->static_top + 15) & ~15u;
  if (off - ex->static_base + bytes > kStaticSmemLimit)
    fiber_fail(ex, t, format("%s declares more than %zu bytes of static shared memory (IST_SHARED `%s` of %zu bytes "
                             "brings it to %zu)",
                             where(ex).c_str(), kStaticSmemLimit, name, bytes, off - ex->static_base + bytes));
  if (off + bytes > kSmemOptin)
    fiber_fail(ex, t, format("%s uses %zu bytes of shared memory (static + dynamic), more than the %zu a block may",
                             where(ex).c_str(), off + bytes, kSmemOptin));
  memset(ex->arena + off, 0xff, bytes);
  ex->allocs.push_back(Alloc{key, off, (uint32_t)bytes});
  ex->static_top = off + (uint32_t)bytes;
  return SH{ex->arena + off, 0, (uint32_t)bytes, name};
}

SH shared_dynamic(const char *name) {
  Exec *ex = tls_exec;
  if (!ex || !tls_thr) outside_kernel("IST_DYNAMIC_SHARED");
  return SH{ex->arena, 0, ex->dyn_bytes, name};
}

int syncthreads(const char *file, int line, int pred, int want) {
  Exec *ex = tls_exec;
  Thr *t = tls_thr;
  if (!ex || !t) outside_kernel("__syncthreads");
  if (ex->ndone > 0)
    fiber_fail(ex, t, format("barrier after a thread exited in %s: thread %s reached __syncthreads %s after thread "
                             "%s returned (every thread of a block must reach every barrier)",
                             where(ex).c_str(), tname(ex, t->tid).c_str(), site(file, line).c_str(),
                             tname(ex, ex->first_done).c_str()));
  if (ex->bar_count > 0 && !same_site(ex->bar_file, ex->bar_line, file, line))
    fiber_fail(ex, t, format("divergent __syncthreads in %s: thread %s waits at %s while thread %s reached %s",
                             where(ex).c_str(), tname(ex, ex->bar_first).c_str(),
                             site(ex->bar_file, ex->bar_line).c_str(), tname(ex, t->tid).c_str(),
                             site(file, line).c_str()));
  if (ex->bar_count == 0) {
    ex->bar_file = file;
    ex->bar_line = line;
    ex->bar_first = t->tid;
    ex->bar_pred = 0;
  }
  ex->bar_count++;
  ex->bar_pred += pred;
  if (ex->bar_count == ex->n) {
    for (unsigned i = 0; i < ex->n; i++)
      if (ex->thr[i].st == BAR) ex->thr[i].st = RUN;
    ex->bar_count = 0;
    ex->bar_result = ex->bar_pred;
    ex->ep = ++ex->ep_ctr;
    ex->last_bar_file = file;
    ex->last_bar_line = line;
  } else {
    t->st = BAR;
    leave_fiber(ex, t, false);
  }
  int c = ex->bar_result;
  return want == 0 ? c : want == 1 ? (c == (int)ex->n) : (c > 0);
}

void warp_op(WarpOp &op) {
  Exec *ex = tls_exec;
  Thr *t = tls_thr;
  if (!ex || !t) outside_kernel(opname(op.kind));
  ex->acc_pc = nullptr; /* collectives name their source line */
  int lane = t->tid & 31, wbase = t->tid & ~31;
  Warp &w = ex->warps[(size_t)(t->tid >> 5)];
  uint32_t exist = ex->n - (unsigned)wbase >= 32 ? kFullMask : (1u << (ex->n - (unsigned)wbase)) - 1;
  if (!(op.mask >> lane & 1))
    fiber_fail(ex, t, format("bad warp mask in %s: lane %d (thread %s) calls %s %s with mask %#010x, which does not "
                             "name it",
                             where(ex).c_str(), lane, tname(ex, t->tid).c_str(), opname(op.kind),
                             site(op.file, op.line).c_str(), op.mask));
  if (op.mask & ~exist)
    fiber_fail(ex, t, format("bad warp mask in %s: %s %s with mask %#010x names lanes that do not exist (the block's "
                             "last warp has %u threads)",
                             where(ex).c_str(), opname(op.kind), site(op.file, op.line).c_str(), op.mask,
                             ex->n - (unsigned)wbase));
  if (op.mask & w.done) {
    int j = __builtin_ctz(op.mask & w.done);
    fiber_fail(ex, t, format("warp divergence in %s: lane %d (thread %s) calls %s %s with mask %#010x, but lane %d "
                             "named in it has returned",
                             where(ex).c_str(), lane, tname(ex, t->tid).c_str(), opname(op.kind),
                             site(op.file, op.line).c_str(), op.mask, j));
  }
  /* The lanes waiting in this mask agree with each other (each was checked on arrival), so the first
   * stands for all; lanes waiting outside it must not name this lane. */
  uint32_t others = w.arrived & ~op.mask, same = w.arrived & op.mask;
  for (uint32_t bits = (same ? same & (0u - same) : 0u) | others; bits; bits &= bits - 1) {
    int j = __builtin_ctz(bits);
    const WarpOp *o = w.ops[j];
    if (((op.mask >> j & 1) || (o->mask >> lane & 1)) && (o->kind != op.kind || o->mask != op.mask))
      fiber_fail(ex, t, format("warp divergence in %s: lane %d waits at %s %s with mask %#010x while lane %d reached "
                               "%s %s with mask %#010x",
                               where(ex).c_str(), j, opname(o->kind), site(o->file, o->line).c_str(), o->mask, lane,
                               opname(op.kind), site(op.file, op.line).c_str(), op.mask));
  }
  w.ops[lane] = &op;
  w.arrived |= 1u << lane;
  if ((w.arrived & op.mask) == op.mask) {
    resolve(ex, w, op.mask, wbase, t);
    w.arrived &= ~op.mask;
    w.sync++;
    for (uint32_t bits = op.mask & ~(1u << lane); bits; bits &= bits - 1)
      ex->thr[(size_t)(wbase + __builtin_ctz(bits))].st = RUN;
  } else {
    t->st = WARP;
    t->wop = &op;
    leave_fiber(ex, t, false);
    t->wop = nullptr;
  }
}

unsigned active_mask() {
  Exec *ex = tls_exec;
  Thr *t = tls_thr;
  if (!ex || !t) outside_kernel("__activemask");
  return live_lanes(ex, t->tid & ~31);
}

void cp_async(const SH &dst, unsigned size, const void *src, unsigned src_bytes, const char *file, int line) {
  Exec *ex = tls_exec;
  Thr *t = tls_thr;
  if (!ex || !t) outside_kernel("ist_cp_async");
  if (!dst.base || dst.off < 0 || dst.off + size > dst.bytes)
    fiber_fail(ex, t, format("out-of-bounds shared-memory write in %s: thread %s's cp.async at %s writes `%s` bytes "
                             "%lld..%lld, outside its %u bytes",
                             where(ex).c_str(), tname(ex, t->tid).c_str(), site(file, line).c_str(),
                             dst.name ? dst.name : "?", (long long)dst.off, (long long)dst.off + size - 1, dst.bytes));
  uint32_t ab = (uint32_t)(dst.base - ex->arena + dst.off);
  if (ab % size || (src_bytes && (uintptr_t)src % size))
    fiber_fail(ex, t, format("misaligned cp.async in %s: thread %s at %s copies %u bytes to `%s` byte %lld from %p "
                             "(both must be %u-byte aligned)",
                             where(ex).c_str(), tname(ex, t->tid).c_str(), site(file, line).c_str(), size,
                             dst.name ? dst.name : "?", (long long)dst.off, src, size));
  if (src_bytes && !ist_emu_is_device_range(src, src_bytes))
    fiber_fail(ex, t, format("cp.async from outside device memory in %s: thread %s at %s reads %u bytes at %p, which "
                             "are not inside one cudaMalloc allocation",
                             where(ex).c_str(), tname(ex, t->tid).c_str(), site(file, line).c_str(), src_bytes, src));
  add_pending(ex, ab, size, +1, t->tid);
  t->cp.push_back(Copy{ab, size, src_bytes, src, dst.name, dst.off, file, line});
}

void cp_async_commit() {
  Thr *t = tls_thr;
  if (!t) outside_kernel("ist_cp_async_commit");
  t->groups.push_back(t->cp.size());
}

void cp_async_wait(int n) {
  Exec *ex = tls_exec;
  Thr *t = tls_thr;
  if (!ex || !t) outside_kernel("ist_cp_async_wait_group");
  long k = (long)t->groups.size() - n;
  if (k <= 0) return;
  ex->acc_pc = nullptr;
  size_t end = t->groups[(size_t)k - 1];
  for (size_t i = 0; i < end; i++) { /* retire first: the copy's own write must not see itself pending */
    const Copy &c = t->cp[i];
    add_pending(ex, c.dst, c.size, -1, t->tid);
  }
  for (size_t i = 0; i < end; i++) {
    Copy c = t->cp[i];
    check_units(ex, t, t->tid, c.dst, c.size, WRITE, c.name, c.rel);
    if (c.src_bytes) memcpy(ex->arena + c.dst, c.src, c.src_bytes);
    if (c.src_bytes < c.size) memset(ex->arena + c.dst + c.src_bytes, 0, c.size - c.src_bytes);
  }
  t->cp.erase(t->cp.begin(), t->cp.begin() + (long)end);
  t->groups.erase(t->groups.begin(), t->groups.begin() + k);
  for (auto &g : t->groups) g -= end;
}

void cp_async_wait_all() {
  cp_async_commit();
  cp_async_wait(0);
}

void run(const LaunchInfo &L) {
  std::lock_guard<std::mutex> lk(g_launch_mu);
  unsigned long long threads = (unsigned long long)L.block.x * L.block.y * L.block.z;
  if (!threads || threads > kMaxThreadsPerBlock || L.block.z > 64) {
    report_error(cudaErrorInvalidConfiguration,
                 format("launch of kernel %s with block (%u,%u,%u): a block has 1 to %u threads (z at most 64)",
                        L.name, L.block.x, L.block.y, L.block.z, kMaxThreadsPerBlock));
    return;
  }
  if (!L.grid.x || !L.grid.y || !L.grid.z || L.grid.x > 0x7fffffffu || L.grid.y > 65535 || L.grid.z > 65535) {
    report_error(cudaErrorInvalidConfiguration,
                 format("launch of kernel %s with grid (%u,%u,%u): each dimension is at least 1 (y, z at most 65535)",
                        L.name, L.grid.x, L.grid.y, L.grid.z));
    return;
  }
  size_t limit = kDynSmemDefault;
  {
    std::lock_guard<std::mutex> a(g_attr_mu);
    auto it = g_max_dyn.find(L.func);
    if (it != g_max_dyn.end()) limit = (size_t)it->second;
  }
  if (L.smem > limit) {
    report_error(cudaErrorInvalidValue,
                 format("launch of kernel %s asks for %zu bytes of dynamic shared memory, above its limit of %zu "
                        "(raise it with cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, "
                        "bytes), at most %zu)",
                        L.name, L.smem, limit, kSmemOptin));
    return;
  }
  if (sticky() != cudaSuccess) return; /* as on a GPU after a fault: nothing runs until reset */
  uint64_t nblocks = (uint64_t)L.grid.x * L.grid.y * L.grid.z;
  unsigned workers = env_threads();
  if (workers > nblocks) workers = (unsigned)nblocks;
  while (g_execs.size() < workers) g_execs.emplace_back(new Exec);
  std::atomic<uint64_t> next{0};
  std::atomic<bool> stop{false};
  auto work = [&](Exec *ex) {
    tls_exec = ex;
    prepare(ex, L);
    while (!stop.load()) {
      uint64_t b = next.fetch_add(1);
      if (b >= nblocks) break;
      run_block(ex, b);
      if (ex->failed) stop.store(true);
    }
    tls_exec = nullptr;
  };
  if (workers == 1) {
    work(g_execs[0].get());
  } else {
    std::vector<std::thread> pool;
    for (unsigned i = 1; i < workers; i++) pool.emplace_back(work, g_execs[i].get());
    work(g_execs[0].get());
    for (auto &th : pool) th.join();
  }
  for (unsigned i = 0; i < workers; i++)
    if (g_execs[i]->failed) {
      report_fault(cudaErrorLaunchFailure, g_execs[i]->msg);
      break;
    }
}
}  // namespace ist_emu

using namespace ist_emu;

extern "C" {
const char *ist_emu_last_report(void) {
  std::lock_guard<std::mutex> lk(g_err_mu);
  return g_report.c_str();
}
void ist_emu_reset(void) {
  std::lock_guard<std::mutex> lk(g_err_mu);
  g_report.clear();
  g_report_code = g_sticky = g_last = cudaSuccess;
}
cudaError_t ist_emu_cudaGetLastError(void) {
  std::lock_guard<std::mutex> lk(g_err_mu);
  if (g_sticky != cudaSuccess) return g_sticky;
  cudaError_t e = g_last;
  g_last = cudaSuccess;
  return e;
}
cudaError_t ist_emu_cudaPeekAtLastError(void) {
  std::lock_guard<std::mutex> lk(g_err_mu);
  return g_sticky != cudaSuccess ? g_sticky : g_last;
}
const char *ist_emu_cudaGetErrorName(cudaError_t e) {
  switch (e) {
  case cudaSuccess: return "cudaSuccess";
  case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
  case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
  case cudaErrorInitializationError: return "cudaErrorInitializationError";
  case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
  case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
  case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
  case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
  case cudaErrorNoDevice: return "cudaErrorNoDevice";
  case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
  case cudaErrorNotReady: return "cudaErrorNotReady";
  case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
  default: return "cudaErrorUnknown";
  }
}
const char *ist_emu_cudaGetErrorString(cudaError_t e) {
  {
    std::lock_guard<std::mutex> lk(g_err_mu);
    if (e != cudaSuccess && e == g_report_code && !g_report.empty()) return g_report.c_str();
  }
  switch (e) {
  case cudaSuccess: return "no error";
  case cudaErrorInvalidValue: return "invalid argument";
  case cudaErrorMemoryAllocation: return "out of memory";
  case cudaErrorInitializationError: return "initialization error";
  case cudaErrorLaunchFailure: return "unspecified launch failure";
  case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
  case cudaErrorInvalidConfiguration: return "invalid configuration argument";
  case cudaErrorInvalidDevice: return "invalid device ordinal";
  case cudaErrorNoDevice: return "no CUDA-capable device is detected";
  case cudaErrorInvalidResourceHandle: return "invalid resource handle";
  case cudaErrorNotReady: return "device not ready";
  case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
  default: return "unknown error";
  }
}
cudaError_t ist_emu_cudaFuncSetAttribute(const void *func, enum cudaFuncAttribute attr, int value) {
  if (!func) return cudaErrorInvalidValue;
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
    if (value < 0 || (size_t)value > kSmemOptin) {
      report_error(cudaErrorInvalidValue,
                   format("cudaFuncSetAttribute(MaxDynamicSharedMemorySize, %d): at most %zu bytes", value, kSmemOptin));
      return cudaErrorInvalidValue;
    }
    std::lock_guard<std::mutex> lk(g_attr_mu);
    g_max_dyn[func] = value;
  }
  return cudaSuccess;
}
}
