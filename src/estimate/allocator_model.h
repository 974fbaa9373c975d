// Allocator rounding and caching: the bytes an allocator holds beyond the
// bytes requested (MemoryEstimate::allocator_slack), and the library
// workspaces a device kind adds.
//
// CPU: c10's CPU allocator aligns every allocation to gAlignment = 64 bytes
// (c10/core/alignment.h, c10/core/impl/alloc_cpu.cpp): at most 63 bytes lost
// per allocation.
//
// CUDA (and simulated GPUs, which stand for CUDA devices): PyTorch's caching
// allocator (c10/cuda/CUDACachingAllocator.cpp; ../shared/reference/
// gpu_runtime.md): a request is rounded up to a multiple of 512 bytes; a
// rounded size ≤ 1 MiB is served from the small pool, whose segments are
// 2 MiB; larger requests come from the large pool, whose new segments are
// 20 MiB for sizes below 10 MiB and the size rounded up to 2 MiB from 10 MiB
// on. A free block is taken best-fit from its pool and split when the rest is
// at least 512 bytes (small pool) or more than 1 MiB (large pool); freed
// memory stays reserved. CudaAllocatorModel replays that policy for tensors
// that stay alive (weights) and reports the reserved bytes.
#pragma once

#include <cstdint>
#include <set>
#include <vector>

#include "modelgrid/bytes.h"

namespace modelgrid::estimate {

inline constexpr uint64_t kCpuAlignment = 64;              // c10 gAlignment
inline constexpr uint64_t kCudaMinBlock = 512;             // kMinBlockSize
inline constexpr uint64_t kCudaSmallSize = 1 * kMiB;       // kSmallSize: largest small-pool request
inline constexpr uint64_t kCudaSmallBuffer = 2 * kMiB;     // kSmallBuffer: small-pool segment
inline constexpr uint64_t kCudaLargeBuffer = 20 * kMiB;    // kLargeBuffer: segment for 1–10 MiB
inline constexpr uint64_t kCudaMinLargeAlloc = 10 * kMiB;  // kMinLargeAlloc
inline constexpr uint64_t kCudaRoundLarge = 2 * kMiB;      // kRoundLarge

// The cuBLAS workspace charged to every CUDA instance: 32 MiB, the size
// PyTorch gives a (handle, stream) on Hopper GPUs (gpu_runtime.md: 8,519,680
// bytes on older architectures). The larger figure is taken because the
// estimate does not know the architecture and must not undercount; it is
// allocated through the caching allocator, so it is part of the instance's
// reserved bytes.
inline constexpr uint64_t kCublasWorkspaceBytes = 32 * kMiB;

// Live tensors assumed at an activation peak when bounding CPU alignment
// loss: 256 tensors × 63 bytes.
inline constexpr uint64_t kCpuActivationSlackBound = 256 * (kCpuAlignment - 1);

// Bytes lost to 64-byte alignment over allocations of the given sizes:
// Σ RoundUp(size, 64) − size.
uint64_t CpuAlignmentSlack(const std::vector<uint64_t>& sizes);

// The caching allocator's request rounding: max(512, RoundUp(size, 512)).
uint64_t CudaRoundedSize(uint64_t size);

// Size of the segment cudaMalloc'd for a rounded request that no cached
// block can serve: 2 MiB (≤ 1 MiB), 20 MiB (< 10 MiB), else RoundUp(size, 2 MiB).
uint64_t CudaSegmentSize(uint64_t rounded);

// Replays the caching allocator for allocations that are never freed.
// Not thread-safe; one instance per replay.
class CudaAllocatorModel {
 public:
  // Allocates `size` bytes (0 allocates nothing, as in PyTorch).
  void Allocate(uint64_t size);
  uint64_t requested_bytes() const { return requested_; }  // Σ sizes asked for
  uint64_t reserved_bytes() const { return reserved_; }    // Σ segments cudaMalloc'd
  uint64_t slack_bytes() const { return reserved_ - requested_; }

 private:
  std::multiset<uint64_t> small_free_;  // sizes of free blocks in the small pool
  std::multiset<uint64_t> large_free_;
  uint64_t requested_ = 0;
  uint64_t reserved_ = 0;
};

// Reserved-minus-allocated bytes of the CUDA caching allocator for the
// weights: CudaAllocatorModel over `sizes` in load order.
uint64_t CudaWeightSlack(const std::vector<uint64_t>& sizes);

// A bound on the caching allocator's extra bytes for activations whose peak
// live total is `activation_bytes`. Activations are freed and reallocated
// within a pass and between passes of the same shapes, and cached blocks are
// reused best-fit, so the reserved bytes settle at the peak plus the partly
// used segments: one 2 MiB small-pool segment, one 20 MiB segment when any
// activation can exceed 1 MiB (activation_bytes > 1 MiB), and the 2 MiB
// rounding of the large blocks (RoundUp(activation_bytes, 2 MiB) − activation_bytes).
// An engineering bound, not a derivation; a calibration run supersedes it.
uint64_t CudaActivationSlackBound(uint64_t activation_bytes);

}  // namespace modelgrid::estimate
