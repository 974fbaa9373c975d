#include "modelgrid/ipc/region_allocator.h"

#include <algorithm>
#include <iterator>
#include <string>

namespace modelgrid::ipc {

RegionAllocator::RegionAllocator(uint64_t capacity)
    : capacity_(capacity / kRegionAlignment * kRegionAlignment) {
  if (capacity_ > 0) free_.emplace(0, capacity_);
}

Result<Region> RegionAllocator::Allocate(uint64_t bytes, const std::string& purpose) {
  // Beyond capacity the rounding could overflow; such a request never fits.
  const uint64_t need = bytes > capacity_ ? 0 : ReservedBytes(bytes);
  auto block = need == 0 ? free_.end()
                         : std::find_if(free_.begin(), free_.end(),
                                        [need](const auto& b) { return b.second >= need; });
  if (block == free_.end()) {
    return Status::ResourceExhausted(
        "cannot allocate " + std::to_string(bytes) + " bytes for " + purpose + ": " +
        std::to_string(free_bytes()) + " bytes free of " + std::to_string(capacity_) +
        ", largest free block " + std::to_string(largest_free_block()) + " bytes");
  }
  const uint64_t offset = block->first;
  const uint64_t left = block->second - need;
  free_.erase(block);
  if (left > 0) free_.emplace(offset + need, left);
  live_.emplace(offset, Live{need, bytes});
  in_use_ += need;
  return Region{offset, bytes};
}

Status RegionAllocator::Free(const Region& region) {
  auto live = live_.find(region.offset);
  if (live == live_.end() || live->second.requested != region.size) {
    return Status::InvalidArgument(
        "region {offset " + std::to_string(region.offset) + ", size " +
        std::to_string(region.size) + "} is not a live region of this arena" +
        (live == live_.end()
             ? ""
             : " (the live one there has size " + std::to_string(live->second.requested) + ")"));
  }
  uint64_t offset = region.offset;
  uint64_t size = live->second.reserved;
  in_use_ -= size;
  live_.erase(live);

  // Merge with the free block that ends where this one starts, and with the
  // one that starts where this one ends.
  auto next = free_.lower_bound(offset);
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == offset) {
      offset = prev->first;
      size += prev->second;
      free_.erase(prev);
    }
  }
  if (next != free_.end() && offset + size == next->first) {
    size += next->second;
    free_.erase(next);
  }
  free_.emplace(offset, size);
  return Status::Ok();
}

uint64_t RegionAllocator::largest_free_block() const {
  uint64_t largest = 0;
  for (const auto& [offset, size] : free_) largest = std::max(largest, size);
  return largest;
}

}  // namespace modelgrid::ipc
