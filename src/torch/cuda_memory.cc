// CUDA caching-allocator control (cuda_memory.h): c10/cuda calls when the
// build has CUDA, stubs otherwise.
#include "modelgrid/torch/cuda_memory.h"

#include <algorithm>
#include <regex>

#if defined(MODELGRID_WITH_CUDA)
#include <ATen/Context.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <torch/version.h>
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

std::optional<uint64_t> CudaRequestedBytes(const std::string& message) {
  static const std::regex kTried("Tried to allocate ([0-9]+(\\.[0-9]+)?) ?(B|KiB|MiB|GiB|TiB)");
  std::smatch m;
  if (!std::regex_search(message, m, kTried)) return std::nullopt;
  const double value = std::stod(m[1].str());
  const std::string unit = m[3].str();
  double scale = 1.0;
  if (unit == "KiB") scale = 1024.0;
  if (unit == "MiB") scale = 1024.0 * 1024.0;
  if (unit == "GiB") scale = 1024.0 * 1024.0 * 1024.0;
  if (unit == "TiB") scale = 1024.0 * 1024.0 * 1024.0 * 1024.0;
  return static_cast<uint64_t>(value * scale + 0.5);
}

#if defined(MODELGRID_WITH_CUDA)

namespace {

// The caching allocator's per-device state exists only once ATen has
// initialized CUDA (CUDAHooks::init calls CUDACachingAllocator::init); before
// that, getDeviceStats and setMemoryFraction throw "Invalid device argument
// N: did you call init?" (seen on LibTorch 2.11, H200, 2026-12-04). The call
// is once per process (c10::call_once inside ATen).
Status InitCuda() {
  try {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 6)
    at::globalContext().lazyInitDevice(c10::DeviceType::CUDA);
#else
    at::globalContext().lazyInitCUDA();
#endif
  } catch (const std::exception& e) {
    return Status::Internal(std::string("initializing CUDA: ") + e.what());
  }
  return Status::Ok();
}

Status CheckIndex(int index) {
  const int count = static_cast<int>(c10::cuda::device_count());
  if (index < 0 || index >= count) {
    return Status::NotFound("cuda:" + std::to_string(index) + " does not exist (" +
                            std::to_string(count) + " GPU(s) visible)");
  }
  return InitCuda();
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
  CudaAllocatorStats out;
  try {
    out = AllocatorStats(index);
  } catch (const std::exception& e) {
    return Status::Internal("allocator stats of cuda:" + std::to_string(index) + ": " + e.what());
  }
  MG_ASSIGN_OR_RETURN(out.total_bytes, TotalBytes(index));
  return out;
}

Result<uint64_t> ReleaseCudaCache(int index, uint64_t keep_bytes) {
  MG_RETURN_IF_ERROR(CheckIndex(index));
  try {
    const uint64_t before = AllocatorStats(index).reserved_bytes;
    if (before <= keep_bytes + kCudaReleaseSlackBytes) return uint64_t{0};
    c10::cuda::CUDACachingAllocator::emptyCache();
    const uint64_t after = AllocatorStats(index).reserved_bytes;
    return before > after ? before - after : uint64_t{0};
  } catch (const std::exception& e) {
    return Status::Internal("emptyCache on cuda:" + std::to_string(index) + ": " + e.what());
  }
}

Result<uint64_t> EmptyCudaCache(int index) {
  MG_RETURN_IF_ERROR(CheckIndex(index));
  try {
    const uint64_t before = AllocatorStats(index).reserved_bytes;
    c10::cuda::CUDACachingAllocator::emptyCache();
    const uint64_t after = AllocatorStats(index).reserved_bytes;
    return before > after ? before - after : uint64_t{0};
  } catch (const std::exception& e) {
    return Status::Internal("emptyCache on cuda:" + std::to_string(index) + ": " + e.what());
  }
}

Result<std::unique_ptr<PinnedBuffer>> PinnedBuffer::Allocate(uint64_t bytes) {
  void* data = nullptr;
  const cudaError_t err = cudaHostAlloc(&data, bytes == 0 ? 1 : bytes, cudaHostAllocDefault);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();  // reset the thread's last-error state for later calls
    return Status::ResourceExhausted("cudaHostAlloc of " + std::to_string(bytes) +
                                     " pinned host bytes: " + cudaGetErrorString(err));
  }
  return std::unique_ptr<PinnedBuffer>(new PinnedBuffer(data, bytes));
}

PinnedBuffer::~PinnedBuffer() {
  if (data_ != nullptr) (void)cudaFreeHost(data_);
}

namespace {

Status CopyAsync(int index, void* dst, const void* src, uint64_t bytes, cudaMemcpyKind kind,
                 const char* what) {
  MG_RETURN_IF_ERROR(CheckIndex(index));
  if (bytes == 0) return Status::Ok();
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(index));
  const cudaStream_t stream =
      c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(index)).stream();
  const cudaError_t err = cudaMemcpyAsync(dst, src, bytes, kind, stream);
  if (err != cudaSuccess) {
    return Status::Internal(std::string(what) + " of " + std::to_string(bytes) + " bytes on cuda:" +
                            std::to_string(index) + ": " + cudaGetErrorString(err));
  }
  return Status::Ok();
}

}  // namespace

Status CopyDeviceToHostAsync(int index, void* host, const void* device, uint64_t bytes) {
  return CopyAsync(index, host, device, bytes, cudaMemcpyDeviceToHost, "device-to-host copy");
}

Status CopyHostToDeviceAsync(int index, void* device, const void* host, uint64_t bytes) {
  return CopyAsync(index, device, host, bytes, cudaMemcpyHostToDevice, "host-to-device copy");
}

Status SynchronizeCudaStream(int index) {
  MG_RETURN_IF_ERROR(CheckIndex(index));
  const cudaStream_t stream =
      c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(index)).stream();
  const cudaError_t err = cudaStreamSynchronize(stream);
  if (err != cudaSuccess) {
    return Status::Internal("cudaStreamSynchronize on cuda:" + std::to_string(index) + ": " +
                            cudaGetErrorString(err));
  }
  return Status::Ok();
}

Status ResetCudaPeak(int index) {
  MG_RETURN_IF_ERROR(CheckIndex(index));
  try {
    c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(index));
  } catch (const std::exception& e) {
    return Status::Internal("resetPeakStats on cuda:" + std::to_string(index) + ": " + e.what());
  }
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
Result<uint64_t> EmptyCudaCache(int index) { return NoCuda(index); }
Result<std::unique_ptr<PinnedBuffer>> PinnedBuffer::Allocate(uint64_t bytes) {
  return Status::Unsupported(
      "pinned host memory of " + std::to_string(bytes) +
      " bytes: this build's LibTorch has no CUDA (MODELGRID_WITH_CUDA is OFF)");
}
PinnedBuffer::~PinnedBuffer() = default;
Status CopyDeviceToHostAsync(int index, void*, const void*, uint64_t) { return NoCuda(index); }
Status CopyHostToDeviceAsync(int index, void*, const void*, uint64_t) { return NoCuda(index); }
Status SynchronizeCudaStream(int index) { return NoCuda(index); }

#endif

}  // namespace modelgrid
