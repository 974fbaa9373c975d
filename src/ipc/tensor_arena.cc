#include "modelgrid/ipc/tensor_arena.h"

#include <algorithm>
#include <utility>

namespace modelgrid::ipc {

Result<std::unique_ptr<TensorArena>> TensorArena::Create(const std::string& name,
                                                         uint64_t capacity) {
  if (capacity == 0 || capacity % kRegionAlignment != 0) {
    return Status::InvalidArgument("arena '" + name + "': capacity of " + std::to_string(capacity) +
                                   " bytes is not a positive multiple of " +
                                   std::to_string(kRegionAlignment));
  }
  MG_ASSIGN_OR_RETURN(SharedMemory memory, SharedMemory::Create("arena-" + name, capacity));
  return std::unique_ptr<TensorArena>(new TensorArena(name, std::move(memory)));
}

TensorArena::TensorArena(std::string name, SharedMemory memory)
    : name_(std::move(name)), memory_(std::move(memory)), allocator_(memory_.capacity()) {}

Result<Region> TensorArena::Allocate(uint64_t bytes, const std::string& purpose) {
  std::lock_guard<std::mutex> lock(mu_);
  Result<Region> region = allocator_.Allocate(bytes, purpose);
  if (!region.ok()) return region.status().WithPrefix("arena '" + name_ + "'");
  peak_ = std::max(peak_, allocator_.bytes_in_use());
  return region;
}

Status TensorArena::Free(const Region& region) {
  std::lock_guard<std::mutex> lock(mu_);
  return allocator_.Free(region).WithPrefix("arena '" + name_ + "'");
}

uint64_t TensorArena::bytes_in_use() const {
  std::lock_guard<std::mutex> lock(mu_);
  return allocator_.bytes_in_use();
}

uint64_t TensorArena::peak_bytes_in_use() const {
  std::lock_guard<std::mutex> lock(mu_);
  return peak_;
}

uint64_t TensorArena::free_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return allocator_.free_bytes();
}

}  // namespace modelgrid::ipc
