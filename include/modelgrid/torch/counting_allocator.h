// The counting CPU allocator: c10's CPU allocator replaced by one that counts
// live and peak bytes and can refuse growth past a limit (docs/design.md, "Memory
// model" → Enforcement inside a worker). Declared without LibTorch headers.
//
// Every allocation is 64-byte aligned, like c10's default CPU allocator
// (c10/core/alignment.h, gAlignment). Two figures are kept:
//   requested — the bytes callers asked for (a tensor's storage nbytes);
//   aligned   — each request rounded up to 64 bytes, what the allocator model
//               of the estimator adds up (src/torch/graph_walk.h).
// The 64-byte header in front of each block (it holds the size and the owner,
// see src/torch/counting_allocator.cc) is bookkeeping and is not counted.
//
// Per-model counters (a worker hosting several models, src/worker/README.md):
// counters may have a parent, the process-wide counters of Install(). A
// block charged to child counters is charged to the parent too, and each
// applies its own limit (the child's first). Which counters a block is
// charged to is chosen per thread: a ScopedCharge on a thread makes that
// thread's allocations go to the given child counters; allocations of
// threads without one (LibTorch's intra-op pool among them: at::parallel_for
// workers do not inherit the caller's thread-locals) go to the process-wide
// counters alone. A block is always given back to the counters it was
// charged to (the block header records them), whichever thread frees it.
//
// Thread-safety: all members may be called from any thread at any time.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "modelgrid/status.h"

namespace modelgrid {

class CountingAllocator {
 public:
  static constexpr uint64_t kAlignment = 64;

  struct Stats {
    uint64_t current_bytes = 0;          // requested bytes live now
    uint64_t peak_bytes = 0;             // most requested bytes live at once since the last ResetPeak
    uint64_t current_aligned_bytes = 0;  // the same, each block rounded up to kAlignment
    uint64_t peak_aligned_bytes = 0;
    uint64_t allocations = 0;            // blocks handed out (non-zero sizes) since construction
    uint64_t frees = 0;                  // blocks given back
    uint64_t refusals = 0;               // allocations charged here that a limit refused
                                         // (these counters' own, or a parent's)
  };

  // One refused allocation: the limit that refused it and the figures at
  // that moment (integer bytes).
  struct Refusal {
    uint64_t limit_bytes = 0;      // the limit in force (aligned bytes)
    uint64_t in_use_bytes = 0;     // aligned bytes in use under that limit when it refused
    uint64_t requested_bytes = 0;  // the block's requested bytes
    // Whose limit refused: the counters charged, or their parent (the
    // process-wide total). Identity only: never dereferenced by readers.
    const CountingAllocator* by = nullptr;
  };

  // Process-wide counters (no parent).
  CountingAllocator() = default;
  // Counters whose blocks are also charged to `parent`, which must outlive
  // them (Install()'s counters live until the process exits).
  explicit CountingAllocator(CountingAllocator* parent) : parent_(parent) {}
  CountingAllocator(const CountingAllocator&) = delete;
  CountingAllocator& operator=(const CountingAllocator&) = delete;

  // Installs the process-wide counting allocator as c10's CPU allocator
  // (c10::SetAllocator with the highest priority) and returns it. Idempotent.
  // Call it before any model is loaded: only blocks allocated after this call
  // are counted (blocks of the previous allocator are still freed by their
  // own deleter). The returned object lives until the process exits.
  static CountingAllocator& Install();
  // The installed allocator, or nullptr before Install().
  static CountingAllocator* Installed();

  // Counters for one model: a child of Install()'s counters (installing it
  // when needed), with no limit and zero figures. They are never destroyed,
  // because blocks may outlive the model and their headers point at them;
  // ReleaseModelCounters hands them back for reuse once none of their blocks
  // is live any more.
  static CountingAllocator* AcquireModelCounters();
  // Gives counters of AcquireModelCounters back (the model is gone). Blocks
  // still live stay charged to them (and their parent) until freed.
  static void ReleaseModelCounters(CountingAllocator* counters);

  // Charges the calling thread's allocations to `counters` (a child of the
  // installed counters; nullptr = the installed ones) while it lives, then
  // restores what was charged before. Nests.
  class ScopedCharge {
   public:
    explicit ScopedCharge(CountingAllocator* counters);
    ~ScopedCharge();
    ScopedCharge(const ScopedCharge&) = delete;
    ScopedCharge& operator=(const ScopedCharge&) = delete;

   private:
    CountingAllocator* previous_;
  };
  // The counters the calling thread's allocations are charged to: its
  // ScopedCharge's, else the installed ones (nullptr before Install()).
  static CountingAllocator* Charged();
  // The child counters of the calling thread's ScopedCharge; nullptr when
  // none is active.
  static CountingAllocator* ThreadCharge();

  // Refusals of allocations made on the calling thread since it started
  // (any counters), and the last of them (nullopt before the first). What a
  // caller compares before and after a call to learn, without reading any
  // error text, that the allocator refused during it.
  static uint64_t ThreadRefusals();
  static std::optional<Refusal> LastThreadRefusal();

  // Accounts for a block of `bytes` requested bytes, here and in the parent.
  // When a limit (these counters', then the parent's) would be passed by
  // the aligned bytes in use plus this block's, nothing changes, the refusal
  // is recorded (here, in every ancestor, and on the calling thread) and the
  // result is kResourceExhausted with the message
  //   "memory limit exceeded: limit L bytes, in use U bytes, requested R bytes"
  // (U = aligned bytes in use under the refusing limit, R = `bytes`). The c10
  // allocator throws c10::OutOfMemoryError with this message.
  Status Reserve(uint64_t bytes);
  // The same without building a message: false when refused, with `*refusal`
  // (may be null) filled.
  bool TryReserve(uint64_t bytes, Refusal* refusal);
  // Gives back a block that Reserve accepted (here and in the parent).
  void Release(uint64_t bytes);

  Stats stats() const;
  uint64_t current_bytes() const { return current_.load(std::memory_order_relaxed); }
  uint64_t current_aligned_bytes() const { return current_aligned_.load(std::memory_order_relaxed); }
  uint64_t peak_aligned_bytes() const { return peak_aligned_.load(std::memory_order_relaxed); }
  CountingAllocator* parent() const { return parent_; }
  // The last refusal of an allocation charged here; nullopt before the first.
  std::optional<Refusal> last_refusal() const;

  // Sets both peaks to the bytes live now.
  void ResetPeak();

  // Limit on aligned bytes in use; nullopt (the default) means none.
  void SetLimit(std::optional<uint64_t> limit_bytes);
  std::optional<uint64_t> limit() const;

 private:
  static constexpr uint64_t kNoLimit = UINT64_MAX;

  // Counts the block here and in every ancestor, or refuses it (nothing
  // changed, `*refusal` filled, nothing recorded).
  bool Take(uint64_t bytes, Refusal* refusal);
  // Records `refusal` here and in every ancestor.
  void NoteRefusal(const Refusal& refusal);
  // Zero figures, no limit, no refusal (a reused child with no live block).
  void Reset();

  CountingAllocator* const parent_ = nullptr;
  std::atomic<uint64_t> current_{0};
  std::atomic<uint64_t> peak_{0};
  std::atomic<uint64_t> current_aligned_{0};
  std::atomic<uint64_t> peak_aligned_{0};
  std::atomic<uint64_t> allocations_{0};
  std::atomic<uint64_t> frees_{0};
  std::atomic<uint64_t> refusals_{0};
  std::atomic<uint64_t> limit_{kNoLimit};
  mutable std::mutex refusal_mu_;        // refusals are rare: a lock is fine
  std::optional<Refusal> last_refusal_;  // guarded by refusal_mu_
};

}  // namespace modelgrid
