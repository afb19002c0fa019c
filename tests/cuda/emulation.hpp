// Runs CUDA kernels on the CPU, to test their logic where there is no GPU. In a C++ (not CUDA)
// translation unit, include it after every other header and right before a kernel header that
// needs nothing of the CUDA runtime (such as ops/attention_kernels.cuh): it defines threadIdx,
// blockIdx, min and max for that header. Launch with
// emulation::launch(grid, block, [&] { kernel(...); }).
//
// Each thread of a block is a fiber with its own stack; __shared__ variables are statics, which all
// fibers of the block see. Blocks run one at a time, in a shuffled order (see shuffled_blocks). A
// fiber runs until it reaches __syncthreads() or a warp shuffle, then waits there for the others,
// so the kernel's code runs with the synchronisation a GPU gives it and no more; released from a
// barrier, the threads run in thread order one time and in reverse order the next, so that a read
// of shared memory that another thread overwrites after the barrier, without one between, shows in
// one of them. The scheduler also checks what a GPU leaves undefined: a shuffle must be reached by
// all 32 lanes of its warp, all at the same one (call site, kind and size), and __syncthreads by
// every thread still running; otherwise launch() throws, naming the block and warp. So does an
// exception thrown in the kernel's code.
//
// Built with AddressSanitizer and UBSan (scripts/sanitize.sh), a kernel's out-of-bounds access to
// global memory (what its pointer arguments point to) is reported with its file and line, as
// compute-sanitizer's memcheck would on a GPU. In shared memory only a direct subscript past its
// array is (UBSan), not an access through a cast pointer: function-local statics get no redzones.
// Shared memory starts zeroed and keeps the last block's values, where a GPU's is undefined, so a
// read before any write goes unnoticed. What it cannot check: data races between threads and the
// memory model (racecheck does, on a GPU), speed, and PTX (CUB and cuBLASLt are stood in for by
// emulated_backend.hpp's). Floating point is the CPU's (no FMA contraction, libm's exp2f), so
// results agree with a GPU's to rounding, not bit for bit.
#pragma once

#include <cuda_bf16.h>  // first: the CUDA headers define __shared__ and friends as nothing
#include <cuda_fp16.h>
#include <ucontext.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <random>
#include <source_location>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#undef __shared__
#define __shared__ static
#undef __launch_bounds__
#define __launch_bounds__(...)
#define threadIdx (::ctformer::emulation::active().current->thread)
#define blockIdx (::ctformer::emulation::active().block)
#define blockDim (::ctformer::emulation::active().block_dim)
#define gridDim (::ctformer::emulation::active().grid_dim)

namespace ctformer::emulation {

struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
};

// Where a fiber (or the scheduler) stopped, to be resumed there. On x86-64 a switch is the few
// instructions below, which save what the ABI asks a function to keep (swapcontext also saves the
// signal mask, a system call at every switch, which took most of a test's time); elsewhere ucontext
// does it. AddressSanitizer is told of every change of stack (the fiber annotations of
// sanitizer/common_interface_defs.h), as it would otherwise take a fiber's stack for a buffer
// overflow of the scheduler's.
#if defined(__x86_64__) && defined(__ELF__)
#define CTFORMER_EMULATION_SWITCH_STACKS 1
struct Context {
  void* stack_pointer = nullptr;
  const void* stack_bottom = nullptr;  // for AddressSanitizer; the scheduler's is learnt
  std::size_t stack_bytes = 0;
};
extern "C" void ctformer_emulation_switch(void** save_to, void* resume);
// Pushes the callee-saved registers and control words (MXCSR, x87), saves the stack pointer, takes
// the other's and pops its. Weak: every translation unit that includes this header defines it.
asm(R"(
  .pushsection .text
  .weak ctformer_emulation_switch
  .type ctformer_emulation_switch, @function
ctformer_emulation_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size ctformer_emulation_switch, . - ctformer_emulation_switch
  .popsection
)");
inline void switch_context(Context& from, Context& to) {
#if defined(__SANITIZE_ADDRESS__)
  void* fake_stack = nullptr;
  __sanitizer_start_switch_fiber(&fake_stack, to.stack_bottom, to.stack_bytes);
  ctformer_emulation_switch(&from.stack_pointer, to.stack_pointer);
  __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
#else
  ctformer_emulation_switch(&from.stack_pointer, to.stack_pointer);
#endif
}
#else
struct Context {
  ucontext_t context{};
};
inline void switch_context(Context& from, Context& to) {
  swapcontext(&from.context, &to.context);
}
#endif

struct Fiber {
  enum class State { runnable, at_barrier, at_shuffle, finished };
  Context context;
  std::unique_ptr<std::byte[]> stack;  // allocated at its first launch
  bool started = false;                // it waits in run_fiber for its next block
  State state = State::finished;
  Dim3 thread{0, 0, 0};
  int lane = 0;
  std::uint64_t shuffle_value = 0, shuffle_result = 0;
  int shuffle_source = 0;
  // Where the shuffle was called, and its kind and size: every lane of the warp must agree.
  std::source_location shuffle_site;
  const char* shuffle_kind = "";
  std::size_t shuffle_bytes = 0;
};

inline constexpr std::size_t kStackBytes = 128 * 1024;

// This thread's fibers, one for each thread of a block, kept from one block and one launch to the
// next: creating them (and, under AddressSanitizer, their fake stacks) for each block took longer
// than running most kernels.
struct FiberPool {
  std::vector<Fiber> fibers = std::vector<Fiber>(1024);
  Context scheduler;
};
inline FiberPool& fiber_pool() {
  thread_local FiberPool pool;
  return pool;
}

struct Launch {
  Dim3 grid_dim, block_dim, block{0, 0, 0};
  std::span<Fiber> fibers;
  Fiber* current = nullptr;
  Context& scheduler = fiber_pool().scheduler;
  const std::function<void()>* body = nullptr;
  std::exception_ptr error;  // thrown in a fiber, rethrown by launch()
};

inline Launch*& active_launch() {
  thread_local Launch* launch = nullptr;
  return launch;
}
inline Launch& active() {
  return *active_launch();
}

inline void wait(Fiber::State state) {
  Launch& l = active();
  Fiber& f = *l.current;
  f.state = state;
  switch_context(f.context, l.scheduler);
}

// A fiber's life: the kernel, as one thread of a block, then a wait until launch() resumes it for
// the next block. An exception must not unwind past the fiber's first frame: it is kept, and
// launch() rethrows it.
inline void run_fiber() {
#if defined(CTFORMER_EMULATION_SWITCH_STACKS) && defined(__SANITIZE_ADDRESS__)
  __sanitizer_finish_switch_fiber(nullptr, &fiber_pool().scheduler.stack_bottom,
                                  &fiber_pool().scheduler.stack_bytes);
#endif
  for (;;) {
    Launch& l = active();
    try {
      (*l.body)();
    } catch (...) {
      l.error = std::current_exception();
    }
    Fiber& f = *l.current;
    f.state = Fiber::State::finished;
    switch_context(f.context, l.scheduler);
  }
}

inline std::string where(const std::source_location& site) {
  return std::string(site.file_name()) + ":" + std::to_string(site.line());
}

template <class T>
T shuffle(unsigned mask, T value, int source_lane, int width, const char* kind,
          const std::source_location& site) {
  static_assert(sizeof(T) <= sizeof(std::uint64_t) && std::is_trivially_copyable_v<T>);
  if (mask != 0xffffffffu || width != 32)
    throw std::logic_error("emulation: only full-warp shuffles (mask 0xffffffff, width 32), at " +
                           where(site));
  Fiber& f = *active().current;
  std::memcpy(&f.shuffle_value, &value, sizeof(T));
  f.shuffle_source = source_lane & 31;
  f.shuffle_site = site;
  f.shuffle_kind = kind;
  f.shuffle_bytes = sizeof(T);
  wait(Fiber::State::at_shuffle);
  T result;
  std::memcpy(&result, &f.shuffle_result, sizeof(T));
  return result;
}

inline std::string block_name(const Launch& l) {
  return "block (" + std::to_string(l.block.x) + ", " + std::to_string(l.block.y) + ", " +
         std::to_string(l.block.z) + ")";
}

// Runs the block's fibers until all have finished.
inline void run_block(Launch& l) {
  using State = Fiber::State;
  const int threads = int(l.fibers.size());
  for (bool reverse = false;; reverse = !reverse) {
    for (int n = 0; n < threads; ++n)
      if (Fiber& f = l.fibers[reverse ? threads - 1 - n : n]; f.state == State::runnable) {
        l.current = &f;
        switch_context(l.scheduler, f.context);
        if (l.error) std::rethrow_exception(l.error);
      }
    // Every fiber now waits or has finished. Whole warps at a shuffle exchange their values.
    bool released = false;
    for (int first = 0; first < threads; first += 32) {
      const int lanes = std::min(32, threads - first);
      int at_shuffle = 0, at_barrier = 0;
      for (int i = first; i < first + lanes; ++i) {
        at_shuffle += l.fibers[i].state == State::at_shuffle;
        at_barrier += l.fibers[i].state == State::at_barrier;
      }
      if (at_shuffle == 0) continue;
      if (at_shuffle != 32)
        throw std::logic_error(
            "emulation: " + block_name(l) + ", warp " + std::to_string(first / 32) + ": " +
            std::to_string(at_shuffle) + " of its " + std::to_string(lanes) +
            " lanes reached a shuffle, " + std::to_string(at_barrier) +
            " wait at __syncthreads and the others have returned: a divergent shuffle");
      const Fiber& lane0 = l.fibers[first];
      for (int i = first + 1; i < first + 32; ++i) {
        const Fiber& f = l.fibers[i];
        if (f.shuffle_site.line() != lane0.shuffle_site.line() ||
            f.shuffle_site.column() != lane0.shuffle_site.column() ||
            std::strcmp(f.shuffle_site.file_name(), lane0.shuffle_site.file_name()) != 0 ||
            std::strcmp(f.shuffle_kind, lane0.shuffle_kind) != 0 ||
            f.shuffle_bytes != lane0.shuffle_bytes)
          throw std::logic_error("emulation: " + block_name(l) + ", warp " +
                                 std::to_string(first / 32) + ": lane " +
                                 std::to_string(i - first) + " is at " + f.shuffle_kind + " (" +
                                 where(f.shuffle_site) + ") and lane 0 at " + lane0.shuffle_kind +
                                 " (" + where(lane0.shuffle_site) + ")");
      }
      for (int i = first; i < first + 32; ++i) {
        Fiber& f = l.fibers[i];
        f.shuffle_result = l.fibers[first + f.shuffle_source].shuffle_value;
      }
      for (int i = first; i < first + 32; ++i) l.fibers[i].state = State::runnable;
      released = true;
    }
    if (released) continue;
    int alive = 0;
    for (Fiber& f : l.fibers)
      if (f.state != State::finished) {
        ++alive;
        f.state = State::runnable;  // all of them are at __syncthreads
      }
    if (alive == 0) return;
  }
}

// Every block of the grid, in an order shuffled by a fixed seed. A GPU runs blocks in no set order,
// so a block that reads what another block of the same launch writes races with it; here it sees
// those writes only when the shuffle runs the writer first, and a test over several shapes fails.
inline std::vector<Dim3> shuffled_blocks(Dim3 grid) {
  std::vector<Dim3> blocks;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) blocks.push_back({x, y, z});
  std::shuffle(blocks.begin(), blocks.end(), std::mt19937(20261130));
  return blocks;
}

// Points the fiber's context at run_fiber, on its own stack.
#if defined(CTFORMER_EMULATION_SWITCH_STACKS)
// The stack as ctformer_emulation_switch leaves it, so that switching to it restores this thread's
// control words and six registers and returns into run_fiber, with the stack aligned as at a call
// (run_fiber never returns).
inline void start_fiber(Fiber& f) {
  auto* top = reinterpret_cast<void**>(
      (reinterpret_cast<std::uintptr_t>(f.stack.get() + kStackBytes) & ~std::uintptr_t(15)));
  top[-1] = nullptr;  // run_fiber's return address
  top[-2] = reinterpret_cast<void*>(&run_fiber);
  for (int r = 3; r <= 8; ++r) top[-r] = nullptr;
  const std::uint32_t mxcsr = __builtin_ia32_stmxcsr();
  std::uint16_t x87 = 0;
  asm("fnstcw %0" : "=m"(x87));
  std::memcpy(&top[-9], &mxcsr, 4);
  std::memcpy(reinterpret_cast<std::byte*>(&top[-9]) + 4, &x87, 2);
  f.context.stack_pointer = top - 9;
  f.context.stack_bottom = f.stack.get();
  f.context.stack_bytes = kStackBytes;
}
#else
// Not inlined: getcontext returns like setjmp, and GCC then warns (-Wclobbered) about the caller's
// loop variables, although this context is never resumed at the getcontext.
[[gnu::noinline]] inline void start_fiber(Fiber& f) {
  getcontext(&f.context.context);
  f.context.context.uc_stack.ss_sp = f.stack.get();
  f.context.context.uc_stack.ss_size = kStackBytes;
  f.context.context.uc_link = nullptr;
  makecontext(&f.context.context, run_fiber, 0);
}
#endif

// Runs `body` (a call of the kernel) once per thread of every block of `grid`.
inline void launch(Dim3 grid, Dim3 block, const std::function<void()>& body) {
  Launch l;
  l.grid_dim = grid;
  l.block_dim = block;
  l.body = &body;
  const unsigned threads = block.x * block.y * block.z;
  if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
      grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535)
    throw std::invalid_argument("emulation: a launch shape no GPU accepts");
  if (active_launch())  // the fibers are in use
    throw std::logic_error("emulation: a launch from inside a kernel");
  l.fibers = std::span(fiber_pool().fibers).first(threads);
  active_launch() = &l;
  try {
    for (const Dim3& block_index : shuffled_blocks(grid)) {
      l.block = block_index;
      for (unsigned i = 0; i < threads; ++i) {
        Fiber& f = l.fibers[i];
        f.thread = {i % block.x, i / block.x % block.y, i / (block.x * block.y)};
        f.lane = int(i % 32);
        f.state = Fiber::State::runnable;
        if (!f.started) {
          if (!f.stack) f.stack.reset(new std::byte[kStackBytes]);
          start_fiber(f);
          f.started = true;
        }
      }
      run_block(l);
    }
  } catch (...) {
    active_launch() = nullptr;
    // Fibers stopped inside the kernel cannot go on with another: they start afresh, on a stack
    // whose frames' redzones AddressSanitizer must forget.
    for (Fiber& f : l.fibers)
      if (f.started && f.state != Fiber::State::finished) {
        f.started = false;
#if defined(__SANITIZE_ADDRESS__)
        ASAN_UNPOISON_MEMORY_REGION(f.stack.get(), kStackBytes);
#endif
      }
    throw;
  }
  active_launch() = nullptr;
}

}  // namespace ctformer::emulation

// The device built-ins the kernels use, as host functions.
inline void __syncthreads() {
  ctformer::emulation::wait(ctformer::emulation::Fiber::State::at_barrier);
}
template <class T>
T __shfl_sync(unsigned mask, T value, int source_lane, int width = 32,
              std::source_location site = std::source_location::current()) {
  return ctformer::emulation::shuffle(mask, value, source_lane, width, "__shfl_sync", site);
}
template <class T>
T __shfl_xor_sync(unsigned mask, T value, int lane_mask, int width = 32,
                  std::source_location site = std::source_location::current()) {
  return ctformer::emulation::shuffle(mask, value,
                                      ctformer::emulation::active().current->lane ^ lane_mask,
                                      width, "__shfl_xor_sync", site);
}
template <class T>
T min(T a, T b) {
  return b < a ? b : a;
}
template <class T>
T max(T a, T b) {
  return a < b ? b : a;
}
// Blocks run one at a time and fibers switch only at the waits above, so every read-modify-write is
// atomic and every write is visible to the blocks that run after it.
inline unsigned atomicAdd(unsigned* address, unsigned value) {
  const unsigned old = *address;
  *address = old + value;
  return old;
}
inline void __threadfence() {}
inline float rsqrtf(float x) {
  return 1.0f / std::sqrt(x);
}
