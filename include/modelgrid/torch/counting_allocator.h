// The counting CPU allocator: c10's CPU allocator replaced by one that counts
// live and peak bytes and can refuse growth past a limit (design.md, "Memory
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
// Thread-safety: all members may be called from any thread at any time.
#pragma once

#include <atomic>
#include <cstdint>
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
    uint64_t refusals = 0;               // allocations refused by the limit
  };

  CountingAllocator() = default;
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

  // Accounts for a block of `bytes` requested bytes. When a limit is set and
  // the aligned bytes in use plus this block's would pass it, nothing changes
  // and the result is kResourceExhausted with the message
  //   "memory limit exceeded: limit L bytes, in use U bytes, requested R bytes"
  // (U = aligned bytes in use, R = `bytes`). The c10 allocator throws
  // c10::OutOfMemoryError with this message.
  Status Reserve(uint64_t bytes);
  // Gives back a block that Reserve accepted.
  void Release(uint64_t bytes);

  Stats stats() const;
  uint64_t current_bytes() const { return current_.load(std::memory_order_relaxed); }
  uint64_t current_aligned_bytes() const { return current_aligned_.load(std::memory_order_relaxed); }
  uint64_t peak_aligned_bytes() const { return peak_aligned_.load(std::memory_order_relaxed); }

  // Sets both peaks to the bytes live now.
  void ResetPeak();

  // Limit on aligned bytes in use; nullopt (the default) means none.
  void SetLimit(std::optional<uint64_t> limit_bytes);
  std::optional<uint64_t> limit() const;

 private:
  static constexpr uint64_t kNoLimit = UINT64_MAX;

  std::atomic<uint64_t> current_{0};
  std::atomic<uint64_t> peak_{0};
  std::atomic<uint64_t> current_aligned_{0};
  std::atomic<uint64_t> peak_aligned_{0};
  std::atomic<uint64_t> allocations_{0};
  std::atomic<uint64_t> frees_{0};
  std::atomic<uint64_t> refusals_{0};
  std::atomic<uint64_t> limit_{kNoLimit};
};

}  // namespace modelgrid
