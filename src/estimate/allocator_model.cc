#include "estimate/allocator_model.h"

namespace modelgrid::estimate {

namespace {

// Takes the best-fitting free block of `pool` for `rounded` bytes, or a new
// segment; splits off the rest when `min_rest` allows (c10's shouldSplit).
void TakeBlock(std::multiset<uint64_t>* pool, uint64_t rounded, uint64_t min_rest, bool strict,
               uint64_t* reserved) {
  uint64_t block;
  auto it = pool->lower_bound(rounded);
  if (it != pool->end()) {
    block = *it;
    pool->erase(it);
  } else {
    block = CudaSegmentSize(rounded);
    *reserved += block;
  }
  const uint64_t rest = block - rounded;
  if (strict ? rest > min_rest : rest >= min_rest) pool->insert(rest);
}

}  // namespace

uint64_t CpuAlignmentSlack(const std::vector<uint64_t>& sizes) {
  uint64_t slack = 0;
  for (uint64_t s : sizes) slack += RoundUp(s, kCpuAlignment) - s;
  return slack;
}

uint64_t CudaRoundedSize(uint64_t size) {
  return size < kCudaMinBlock ? kCudaMinBlock : RoundUp(size, kCudaMinBlock);
}

uint64_t CudaSegmentSize(uint64_t rounded) {
  if (rounded <= kCudaSmallSize) return kCudaSmallBuffer;
  if (rounded < kCudaMinLargeAlloc) return kCudaLargeBuffer;
  return RoundUp(rounded, kCudaRoundLarge);
}

void CudaAllocatorModel::Allocate(uint64_t size) {
  if (size == 0) return;
  requested_ += size;
  const uint64_t rounded = CudaRoundedSize(size);
  if (rounded <= kCudaSmallSize) {
    TakeBlock(&small_free_, rounded, kCudaMinBlock, /*strict=*/false, &reserved_);
  } else {
    TakeBlock(&large_free_, rounded, kCudaSmallSize, /*strict=*/true, &reserved_);
  }
}

uint64_t CudaWeightSlack(const std::vector<uint64_t>& sizes) {
  CudaAllocatorModel m;
  for (uint64_t s : sizes) m.Allocate(s);
  return m.slack_bytes();
}

uint64_t CudaActivationSlackBound(uint64_t activation_bytes) {
  if (activation_bytes == 0) return 0;
  uint64_t slack = kCudaSmallBuffer;
  if (activation_bytes > kCudaSmallSize) slack += kCudaLargeBuffer;
  slack += RoundUp(activation_bytes, kCudaRoundLarge) - activation_bytes;
  return slack;
}

}  // namespace modelgrid::estimate
