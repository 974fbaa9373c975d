// Bounded busy-waiting for the request path between the frontend and a
// worker (docs/design.md, "Processes and paths": lanes).
//
// Waking a sleeping thread costs a futex or socket wake-up plus the
// scheduler's hand-off: 6-30 µs per wake on the 2-core VM of
// docs/benchmarks.md, several times what a tiny model's forward costs. A
// side that expects an answer within microseconds therefore polls for a
// short, bounded time first and only then sleeps in poll(2) or on a
// condition variable. The budget bounds the CPU time wasted when the
// answer is slow: at most `budget` per wait.
#pragma once

#include <chrono>
#include <cstdint>

namespace modelgrid::ipc {

// Requests whose inputs exceed this many bytes are not spun for, on either
// side. A thread that spins stays on its own core, so the model then reads
// the input from the cache of the core that wrote it; a thread that sleeps
// is usually woken on the waker's core, where the input is hot. On the
// 2-core VM (docs/benchmarks.md, "Dispatch cost") a 602,112-byte input read
// across cores cost about 35 µs more than on the writing core, more than
// the two wake-ups that spinning saves (about 25 µs); for a 256-byte input
// spinning saved about 25 µs. 64 KiB sits between the two.
inline constexpr uint64_t kSpinMaxInputBytes = uint64_t{64} << 10;

// Tells the CPU that this is a spin loop (x86 `pause`, ARM `yield`), which
// lets a hyper-thread sibling run and saves power; a no-op elsewhere.
inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
  asm volatile("yield");
#endif
}

// Calls `ready()` until it returns true or `budget` has passed, without
// sleeping; returns whether it became true. A budget of zero or less calls
// `ready()` once. `ready` must be cheap (an atomic load, a poll(2) with a
// zero timeout).
template <class Ready>
bool SpinUntil(std::chrono::microseconds budget, Ready&& ready) {
  if (ready()) return true;
  if (budget.count() <= 0) return false;
  const auto end = std::chrono::steady_clock::now() + budget;
  while (std::chrono::steady_clock::now() < end) {
    for (int i = 0; i < 16; ++i) CpuRelax();
    if (ready()) return true;
  }
  return false;
}

}  // namespace modelgrid::ipc
