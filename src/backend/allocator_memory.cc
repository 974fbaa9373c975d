// The memory facts both backends report (allocator_memory.h).

#include "backend/allocator_memory.h"

#include <malloc.h>

#include <fstream>
#include <string>

#include "modelgrid/torch/counting_allocator.h"

namespace modelgrid::backend_internal {

uint64_t ResidentBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      uint64_t kib = 0;
      for (char c : line) {
        if (c >= '0' && c <= '9') kib = kib * 10 + static_cast<uint64_t>(c - '0');
      }
      return kib * 1024;
    }
  }
  return 0;
}

void TrimHeap() {
#if defined(__GLIBC__)
  ::malloc_trim(0);
#endif
}

BackendMemoryStats CpuMemoryStats() {
  BackendMemoryStats out;
  const CountingAllocator* alloc = CountingAllocator::Installed();
  if (!alloc) return out;
  const auto s = alloc->stats();
  out.current_bytes = s.current_aligned_bytes;
  out.peak_bytes = s.peak_aligned_bytes;
  out.limit_bytes = alloc->limit();
  out.refusals = s.refusals;
  return out;
}

Status SetCpuMemoryLimit(std::optional<uint64_t> limit_bytes) {
  CountingAllocator::Install().SetLimit(limit_bytes);
  return Status::Ok();
}

void ResetCpuPeak() {
  if (CountingAllocator* alloc = CountingAllocator::Installed()) alloc->ResetPeak();
}

}  // namespace modelgrid::backend_internal
