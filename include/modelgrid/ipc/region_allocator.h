// Region bookkeeping for the shared tensor arena (tensor_arena.h): which byte
// ranges of a fixed capacity are handed out. Pure offsets; no memory behind it.
//
// Algorithm: first fit over a free list ordered by offset, with coalescing.
// Allocate walks the free blocks from the lowest offset and carves the request
// from the front of the first block large enough (O(free blocks)); Free puts
// the block back and merges it with free neighbours (O(log n)), so freeing
// every region always leaves one block spanning the whole capacity. First fit
// keeps long-lived regions (model-lifetime buffers) at low offsets and leaves
// a large tail for per-request tensors.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "modelgrid/status.h"

namespace modelgrid::ipc {

// Every region starts at a multiple of this many bytes and reserves a
// multiple of it (a cache line; also enough for every tensor datatype and for
// SIMD loads).
inline constexpr uint64_t kRegionAlignment = 64;

// A byte range of an arena: what messages carry instead of pointers.
// `offset` is from the start of the arena, a multiple of kRegionAlignment;
// `size` is the byte count the caller asked for (the arena reserves `size`
// rounded up to kRegionAlignment, at least kRegionAlignment).
struct Region {
  uint64_t offset = 0;
  uint64_t size = 0;

  bool operator==(const Region&) const = default;
};

// Bytes a region of `size` requested bytes actually reserves.
constexpr uint64_t ReservedBytes(uint64_t size) {
  return size == 0 ? kRegionAlignment
                   : (size + kRegionAlignment - 1) / kRegionAlignment * kRegionAlignment;
}

// Hands out aligned, non-overlapping regions of [0, capacity).
// Thread-compatible (no locking): TensorArena wraps it in a mutex.
class RegionAllocator {
 public:
  // `capacity` in bytes; must be a positive multiple of kRegionAlignment
  // (TensorArena checks; here a violating capacity is rounded down).
  explicit RegionAllocator(uint64_t capacity);

  // Reserves ReservedBytes(bytes) bytes at the lowest offset where they fit.
  // `purpose` names the requester (e.g. "request 17 input 'x'") for the error.
  // Errors: kResourceExhausted naming `purpose`, the bytes asked for, the free
  // bytes and the largest free block (fragmentation shows as free > largest).
  Result<Region> Allocate(uint64_t bytes, const std::string& purpose);

  // Returns `region` (exactly as Allocate gave it) to the free list.
  // Errors: kInvalidArgument when no live region has that offset and size
  // (double free, or a region of another arena); nothing changes then.
  Status Free(const Region& region);

  uint64_t capacity() const { return capacity_; }
  // Bytes reserved by live regions (sum of their ReservedBytes).
  uint64_t bytes_in_use() const { return in_use_; }
  uint64_t free_bytes() const { return capacity_ - in_use_; }
  // The largest single region that Allocate could return right now, in bytes.
  uint64_t largest_free_block() const;
  // Number of live regions.
  size_t live_regions() const { return live_.size(); }

 private:
  struct Live {
    uint64_t reserved;
    uint64_t requested;
  };
  uint64_t capacity_;
  uint64_t in_use_ = 0;
  std::map<uint64_t, uint64_t> free_;  // offset -> bytes, disjoint, never adjacent
  std::map<uint64_t, Live> live_;      // offset -> region
};

}  // namespace modelgrid::ipc
