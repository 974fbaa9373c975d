// TensorArena: the per-worker shared-memory arena in which the frontend places
// request inputs and hands the worker space for outputs. Messages name the
// places as Region {offset, size} (never pointers, which differ per process).
//
// Protocol (messages.h): the frontend owns the arena and is the only process
// that allocates or frees. It allocates input regions and an output region per
// request, writes the inputs, and sends `infer`; from then until the `result`
// arrives the worker owns those regions (reads the inputs, writes outputs
// inside the output region); then the frontend reads the outputs and frees.
// If the worker dies, the frontend frees the request's regions itself.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "modelgrid/ipc/region_allocator.h"
#include "modelgrid/ipc/shared_memory.h"
#include "modelgrid/status.h"

namespace modelgrid::ipc {

// A SharedMemory plus a RegionAllocator over it (first fit with coalescing;
// see region_allocator.h).
//
// Thread-safety: Allocate, Free and the byte counters are thread-safe (one
// mutex, in this process only; the worker never takes it). Bytes() takes no
// lock. Ownership: owns the memfd and mapping; fd() is borrowed.
class TensorArena {
 public:
  // Creates an arena of `capacity` bytes, a positive multiple of
  // kRegionAlignment. `name` appears in error messages and the memfd name.
  // Errors: kInvalidArgument for a bad capacity; as SharedMemory::Create.
  static Result<std::unique_ptr<TensorArena>> Create(const std::string& name, uint64_t capacity);

  TensorArena(const TensorArena&) = delete;
  TensorArena& operator=(const TensorArena&) = delete;

  // Reserves a region of at least `bytes` bytes (see Region), 64-byte aligned.
  // `purpose` names the requester for the error, e.g. "request 17 input 'x'".
  // Errors: kResourceExhausted "arena 'NAME': cannot allocate N bytes for
  // PURPOSE: F bytes free of C, largest free block L bytes".
  Result<Region> Allocate(uint64_t bytes, const std::string& purpose);

  // Returns a region from Allocate. Errors: kInvalidArgument for a region
  // that is not live (double free, foreign region).
  Status Free(const Region& region);

  // The bytes of a region in this process's mapping; see SharedMemory::Bytes.
  Result<std::span<std::byte>> Bytes(const Region& region) const { return memory_.Bytes(region); }

  const std::string& name() const { return name_; }
  uint64_t capacity() const { return memory_.capacity(); }
  // Bytes reserved by live regions.
  uint64_t bytes_in_use() const;
  // Highest bytes_in_use() seen since creation.
  uint64_t peak_bytes_in_use() const;
  // capacity() - bytes_in_use().
  uint64_t free_bytes() const;
  // The memfd to hand to the worker (with the capacity) via Channel::Send.
  int fd() const { return memory_.fd(); }
  const SharedMemory& memory() const { return memory_; }

 private:
  TensorArena(std::string name, SharedMemory memory);

  std::string name_;
  SharedMemory memory_;
  mutable std::mutex mu_;
  RegionAllocator allocator_;  // guarded by mu_
  uint64_t peak_ = 0;          // guarded by mu_
};

}  // namespace modelgrid::ipc
