// Internal to src/torch and src/backend: moving a loaded TorchScript
// module's weights off its device and back, for TorchScriptBackend::SwapOut
// and SwapIn (modelgrid/backend/backend.h; docs/design.md, "Memory model" →
// swap). Includes LibTorch: never include it from a public header.
//
// What moves is the bytes of each distinct storage behind the module's
// tensor attributes (parameters, buffers, other tensor attributes, in every
// submodule). The StorageImpl objects and the tensors viewing them stay: a
// swap-out replaces each storage's data pointer by an empty one (the block
// goes back to its allocator), a swap-in installs a freshly allocated block
// holding the same bytes. So the module, its TorchScript graph and every
// alias (tied weights, views) see the same tensor objects, and outputs after
// a swap-in are bit-identical to those before.
#pragma once

#include <torch/script.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "modelgrid/status.h"
#include "modelgrid/torch/cuda_memory.h"

namespace modelgrid::weight_swap {

// One storage of a module's weights, with the first tensor attribute found
// viewing it (what the swap file's entry table records).
struct WeightStorage {
  c10::Storage storage;  // holds the StorageImpl the tensors share
  c10::Device device{c10::kCPU};
  uint64_t nbytes = 0;
  std::string name;  // e.g. "layer1.0.conv1.weight"
  c10::ScalarType dtype = c10::ScalarType::Float;
  std::vector<int64_t> shape;
};

// The distinct storages (by StorageImpl) with bytes on `device` of every
// tensor attribute of `module` and its submodules, tensor lists included, in
// attribute order. Storages on another device (a CPU buffer of a CUDA model)
// and empty ones are left out.
std::vector<WeightStorage> CollectWeights(const torch::jit::Module& module,
                                          const c10::Device& device);

// Sum of the storages' bytes.
uint64_t TotalBytes(const std::vector<WeightStorage>& weights);

// Frees the bytes of every storage: its data pointer becomes an empty one
// on the same device (the old block goes back to the allocator it came
// from; counting-allocator blocks to the counters that were charged).
// Tensors keep their sizes, strides, offsets and storage objects; reading
// them before a restore is a bug (the backend refuses to run then).
void ReleaseAll(std::vector<WeightStorage>& weights);

// ---- file tier (CPU models) ----

// Writes the storages' bytes to `path`, through "<path>.tmp" and a rename
// so that the file is either complete or absent. Layout (little-endian):
//   header  48 bytes: magic "MGSWAP01", u32 version (1), u32 entry count,
//           u64 payload bytes, u64 XXH64 of the payload, u64 entry-table
//           bytes, u64 XXH64 of the entry table;
//   entries per storage: u8 dtype (c10::ScalarType), u8 0, u16 name bytes,
//           u32 rank, u64 bytes, i64 shape[rank], the name;
//   payload the storages' bytes back to back, in entry order.
// Errors: kUnavailable naming the file and the system error (a missing or
// unwritable folder, a full disk).
Status WriteSwapFile(const std::filesystem::path& path, const std::vector<WeightStorage>& weights);

// Reads a file of WriteSwapFile back into freshly allocated blocks (through
// c10's allocator for each storage's device, so the counting allocator
// charges the calling thread's counters) and installs them, all or none:
// first the header, the entry table's hash, each entry against `weights`
// (count, dtype, shape, bytes, name) and the file's size, then the payload
// while hashing it. Errors: kNotFound when the file is missing; kCorruption
// naming what is wrong (magic, version, size, an entry, a hash), with the
// storages left released; c10::OutOfMemoryError (thrown) when the memory
// limit refuses the blocks.
Status ReadSwapFile(const std::filesystem::path& path, std::vector<WeightStorage>& weights);

// ---- pinned tier (CUDA models) ----

// The weights of a CUDA model in pinned host memory (one buffer; each
// storage's bytes at its offset, in order).
struct PinnedCopy {
  std::unique_ptr<PinnedBuffer> buffer;
  std::vector<uint64_t> offsets;
};

// Copies every storage's bytes into one pinned host buffer: asynchronous
// copies on the device's current stream, then one synchronize. The device
// blocks are left in place (ReleaseAll frees them). Errors: PinnedBuffer's
// and the copy's (kUnsupported without CUDA, kResourceExhausted, kInternal).
Result<PinnedCopy> CopyToPinned(const std::vector<WeightStorage>& weights);

// Allocates a fresh device block per storage (the caching allocator, under
// its cap), copies the bytes back asynchronously, synchronizes, and installs
// the blocks (all or none). Errors: as CopyToPinned; c10::OutOfMemoryError
// (thrown) when the caching allocator refuses.
Status RestoreFromPinned(std::vector<WeightStorage>& weights, const PinnedCopy& copy);

}  // namespace modelgrid::weight_swap
