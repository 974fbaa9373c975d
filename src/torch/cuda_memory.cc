// CUDA caching-allocator control (cuda_memory.h): c10/cuda calls when the
// build has CUDA, stubs otherwise.
#include "modelgrid/torch/cuda_memory.h"

#include <algorithm>
#include <regex>

#if defined(MODELGRID_WITH_CUDA)
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>
#endif

namespace modelgrid {

int CudaIndex(const std::string& device) {
  static const std::regex kCuda("cuda:([0-9]{1,3})");
  std::smatch m;
  if (!std::regex_match(device, m, kCuda)) return -1;
  return std::stoi(m[1].str());
}

bool IsCudaOutOfMemory(const std::string& message) {
  return message.find("CUDA out of memory") != std::string::npos ||
         message.find("CUDA error: out of memory") != std::string::npos;
}

#if defined(MODELGRID_WITH_CUDA)

namespace {

Status CheckIndex(int index) {
  const int count = static_cast<int>(c10::cuda::device_count());
  if (index < 0 || index >= count) {
    return Status::NotFound("cuda:" + std::to_string(index) + " does not exist (" +
                            std::to_string(count) + " GPU(s) visible)");
  }
  return Status::Ok();
}

Result<uint64_t> TotalBytes(int index) {
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(index));
  size_t free = 0, total = 0;
  const cudaError_t err = cudaMemGetInfo(&free, &total);
  if (err != cudaSuccess) {
    return Status::Internal("cudaMemGetInfo on cuda:" + std::to_string(index) + ": " +
                            cudaGetErrorString(err));
  }
  return static_cast<uint64_t>(total);
}

}  // namespace

bool CudaBuild() { return true; }

Status SetCudaLimit(int index, uint64_t limit_bytes) {
  MG_RETURN_IF_ERROR(CheckIndex(index));
  MG_ASSIGN_OR_RETURN(const uint64_t total, TotalBytes(index));
  double fraction = 1.0;
  if (limit_bytes > 0 && total > 0) {
    fraction = std::clamp(static_cast<double>(limit_bytes) / static_cast<double>(total), 0.0, 1.0);
  }
  try {
    c10::cuda::CUDACachingAllocator::setMemoryFraction(fraction,
                                                       static_cast<c10::DeviceIndex>(index));
  } catch (const std::exception& e) {
    return Status::Internal("setMemoryFraction on cuda:" + std::to_string(index) + ": " + e.what());
  }
  return Status::Ok();
}

// The allocator's counters for `index` (total_bytes left 0: no driver call).
static CudaAllocatorStats AllocatorStats(int index) {
  CudaAllocatorStats out;
  const auto stats =
      c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(index));
  constexpr size_t kAggregate = 0;  // StatType::AGGREGATE in every LibTorch since 1.8
  out.allocated_bytes = static_cast<uint64_t>(stats.allocated_bytes[kAggregate].current);
  out.reserved_bytes = static_cast<uint64_t>(stats.reserved_bytes[kAggregate].current);
  out.peak_allocated_bytes = static_cast<uint64_t>(stats.allocated_bytes[kAggregate].peak);
  out.peak_reserved_bytes = static_cast<uint64_t>(stats.reserved_bytes[kAggregate].peak);
  return out;
}

Result<CudaAllocatorStats> CudaStats(int index) {
  MG_RETURN_IF_ERROR(CheckIndex(index));
  CudaAllocatorStats out = AllocatorStats(index);
  MG_ASSIGN_OR_RETURN(out.total_bytes, TotalBytes(index));
  return out;
}

Result<uint64_t> ReleaseCudaCache(int index, uint64_t keep_bytes) {
  MG_RETURN_IF_ERROR(CheckIndex(index));
  const uint64_t before = AllocatorStats(index).reserved_bytes;
  if (before <= keep_bytes + kCudaReleaseSlackBytes) return uint64_t{0};
  c10::cuda::CUDACachingAllocator::emptyCache();
  const uint64_t after = AllocatorStats(index).reserved_bytes;
  return before > after ? before - after : uint64_t{0};
}

Status ResetCudaPeak(int index) {
  MG_RETURN_IF_ERROR(CheckIndex(index));
  c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(index));
  return Status::Ok();
}

Status SynchronizeCuda(int index) {
  MG_RETURN_IF_ERROR(CheckIndex(index));
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(index));
  const cudaError_t err = cudaDeviceSynchronize();
  if (err != cudaSuccess) {
    return Status::Internal("cudaDeviceSynchronize on cuda:" + std::to_string(index) + ": " +
                            cudaGetErrorString(err));
  }
  return Status::Ok();
}

#else  // no CUDA in this build

namespace {
Status NoCuda(int index) {
  return Status::Unsupported("cuda:" + std::to_string(index) +
                             ": this build's LibTorch has no CUDA (MODELGRID_WITH_CUDA is OFF)");
}
}  // namespace

bool CudaBuild() { return false; }
Status SetCudaLimit(int index, uint64_t) { return NoCuda(index); }
Result<CudaAllocatorStats> CudaStats(int index) { return NoCuda(index); }
Result<uint64_t> ReleaseCudaCache(int index, uint64_t) { return NoCuda(index); }
Status ResetCudaPeak(int index) { return NoCuda(index); }
Status SynchronizeCuda(int index) { return NoCuda(index); }

#endif

}  // namespace modelgrid
