// Control and figures of the PyTorch CUDA caching allocator on one device,
// for the worker's per-device cap and for modelgrid-probe's CUDA peaks
// (issue 4 §3; reference/gpu_runtime.md, "PyTorch CUDA caching allocator").
// Torch-free declarations; src/torch/cuda_memory.cc calls c10/cuda when the
// build's LibTorch has CUDA (MODELGRID_WITH_CUDA) and is a set of
// kUnsupported stubs otherwise. The CUDA code is also compiled (not linked) on machines whose
// LibTorch lacks CUDA but whose CUDA toolkit is present (the
// modelgrid_cuda_compile_check target), so it cannot rot unseen.
//
// Model: a worker's models on device N share one caching allocator, so the
// worker caps it at the sum of their limits (setMemoryFraction(limit /
// total, N)): growth past it raises the allocator's OutOfMemoryError in the
// request that asked, which the worker answers with 507, and the process
// lives on. After a request, cached blocks above the sum of the requests are
// given back (emptyCache) so a burst does not keep the device's memory.
// The cap does not cover the CUDA context, cuBLAS/cuDNN workspaces or raw
// cudaMalloc calls (reference/gpu_runtime.md); the context is measured by
// the frontend through NVML and charged apart.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "modelgrid/status.h"

namespace modelgrid {

// The caching allocator's figures for one device, integer bytes
// (c10::cuda::CUDACachingAllocator::getDeviceStats, aggregate pool).
struct CudaAllocatorStats {
  uint64_t allocated_bytes = 0;       // held by live tensors
  uint64_t reserved_bytes = 0;        // allocated + cached segments (what the GPU sees)
  uint64_t peak_allocated_bytes = 0;  // since the last ResetCudaPeak
  uint64_t peak_reserved_bytes = 0;
  uint64_t total_bytes = 0;           // the device's memory (cudaMemGetInfo)
};

// True when this build can run CUDA (LibTorch with CUDA).
bool CudaBuild();

// The device index of "cuda:N" (N >= 0), or -1 for any other string.
int CudaIndex(const std::string& device);

// Caps device `index`'s caching allocator at `limit_bytes` (0 = no cap: the
// fraction goes back to 1.0). The fraction is limit / total device memory,
// clamped to [0, 1]. Errors: kUnsupported without CUDA; kNotFound for a
// device index that does not exist; kInternal with the CUDA error text.
Status SetCudaLimit(int index, uint64_t limit_bytes);

// The allocator's figures for device `index`. Errors: as SetCudaLimit.
Result<CudaAllocatorStats> CudaStats(int index);

// How far reserved bytes may exceed what a worker keeps before a burst is
// given back: 32 MiB, above the caching allocator's 2 MiB and 20 MiB
// segments (reference/gpu_runtime.md), so that a model whose steady state
// sits a little above its request is not made to cudaMalloc every request.
inline constexpr uint64_t kCudaReleaseSlackBytes = uint64_t{32} << 20;

// Gives cached (reserved but unallocated) blocks back to the driver when
// device `index` reserves more than `keep_bytes` + kCudaReleaseSlackBytes.
// Returns the bytes released (0 when it was not above that). emptyCache
// releases every unused cached block of the process, on every device. Reads
// only the allocator's own counters (no driver call) when there is nothing to
// release: the worker calls it after every request. Errors: as SetCudaLimit.
Result<uint64_t> ReleaseCudaCache(int index, uint64_t keep_bytes);

// Sets the peaks of device `index` to the current figures. Errors: as SetCudaLimit.
Status ResetCudaPeak(int index);

// Waits for every kernel queued on device `index` (cudaDeviceSynchronize),
// so that a measured forward has really finished. Errors: as SetCudaLimit.
Status SynchronizeCuda(int index);

// Gives every cached (reserved but unallocated) block of the caching
// allocator back to the driver (emptyCache), whatever the amount; returns the
// bytes device `index` released. Used after a swap-out, whose freed weights
// must leave the device. Errors: as SetCudaLimit.
Result<uint64_t> EmptyCudaCache(int index);

// Page-locked ("pinned") host memory from cudaHostAlloc: the host tier that
// CUDA models swap their weights to (docs/design.md, "Memory model" → swap), so
// copies to and from it run asynchronously at full bus speed. Freed with
// cudaFreeHost on destruction, so the bytes return to the system at once
// (ATen's caching host allocator would keep them cached in the process).
class PinnedBuffer {
 public:
  // `bytes` > 0 bytes of pinned host memory. Errors: kUnsupported without
  // CUDA; kResourceExhausted with the CUDA error text when cudaHostAlloc
  // fails (not enough lockable host memory).
  static Result<std::unique_ptr<PinnedBuffer>> Allocate(uint64_t bytes);
  ~PinnedBuffer();
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  void* data() const { return data_; }
  uint64_t bytes() const { return bytes_; }

 private:
  PinnedBuffer(void* data, uint64_t bytes) : data_(data), bytes_(bytes) {}
  void* data_;
  uint64_t bytes_;
};

// Queue a copy of `bytes` bytes between memory of device `index` and host
// memory on that device's current CUDA stream (cudaMemcpyAsync: it returns
// at once when the host side is pinned). Neither side may be used or freed
// before SynchronizeCudaStream(index) returned. Errors: kUnsupported without
// CUDA; kNotFound for a device index that does not exist; kInternal with
// the CUDA error text.
Status CopyDeviceToHostAsync(int index, void* host, const void* device, uint64_t bytes);
Status CopyHostToDeviceAsync(int index, void* device, const void* host, uint64_t bytes);
// Waits for every copy and kernel queued on device `index`'s current stream
// (cudaStreamSynchronize). Errors: as CopyDeviceToHostAsync.
Status SynchronizeCudaStream(int index);

// True when `message` is the CUDA caching allocator's out-of-memory text
// ("CUDA out of memory" / "out of memory" raised as c10::OutOfMemoryError).
// Only for where the text is all there is: the TorchScript interpreter
// rethrows an error raised inside a scripted method that has a
// serialized-code traceback as a plain std::runtime_error carrying the
// original text (seen with LibTorch 1.13 on the zoo's gpt2 and bert-base; a
// traced resnet18 keeps the c10::OutOfMemoryError type), so the type is
// lost by the time the backend sees it. The CPU counting allocator's
// refusals are then recognised by its record instead
// (CountingAllocator::ThreadRefusals); the CUDA caching allocator keeps no
// record a caller could read.
bool IsCudaOutOfMemory(const std::string& message);

// The byte count in the caching allocator's out-of-memory text "Tried to
// allocate 20.00 MiB" (rounded: the text has two decimals), or nullopt when
// the text has none. Same caveat as IsCudaOutOfMemory.
std::optional<uint64_t> CudaRequestedBytes(const std::string& message);

}  // namespace modelgrid
