// Registered system shared-memory regions: Triton's system shared memory
// extension (docs/protocol/extension_shared_memory.md in triton-inference-
// server/server). A client creates a POSIX shared memory object
// (shm_open(key)), writes input tensors into it and registers it under a
// name with an offset and a byte size; an infer request then names the
// region, an offset inside it and a byte size instead of carrying the
// bytes. ModelGrid maps the object once, and passes its descriptor to each
// worker once (`attach_region`), so the bytes reach the model without any
// copy: the worker reads what the client wrote.
//
// A client that shrinks the object while it is registered (ftruncate) fails
// its own requests: Slice checks the object's size on every request (a read
// past its end would kill the reader with SIGBUS). A shrink during a
// request that already passed that check is not caught; the client must not
// do that, nor write a tensor while a request that reads it is in flight.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "modelgrid/ipc/shared_memory.h"
#include "modelgrid/kserve/tensor.h"
#include "modelgrid/status.h"

namespace modelgrid::ipc {

// What is registered under one name (the extension's status entry).
struct SharedMemoryRegion {
  std::string name;
  std::string key;         // the shm_open name, e.g. "/input_data"
  uint64_t offset = 0;     // where the region starts in the object, bytes
  uint64_t byte_size = 0;  // its length, bytes
  bool operator==(const SharedMemoryRegion&) const = default;
};

// The regions registered with one server or grid. Thread-safe.
class SharedMemoryRegistry {
 public:
  SharedMemoryRegistry() = default;
  SharedMemoryRegistry(const SharedMemoryRegistry&) = delete;
  SharedMemoryRegistry& operator=(const SharedMemoryRegistry&) = delete;

  // Opens the POSIX shared memory object `key` (shm_open, read-write as in
  // Triton: workers map the same descriptor) and maps its first offset +
  // byte_size bytes (SharedMemory::MapFromFd). Errors: kInvalidArgument for an
  // empty name or key, byte_size 0, or an object smaller than offset +
  // byte_size (sizes named); kNotFound when no object has that key;
  // kAlreadyExists when `name` is registered (unregister it first);
  // kInternal when fstat/mmap fail. Every message names the region.
  Status Register(const std::string& name, const std::string& key, uint64_t offset,
                  uint64_t byte_size);
  // Forgets `name` and returns its id (for the workers' mappings). Requests
  // that hold its bytes keep the mapping until they end. Errors: kNotFound
  // naming it.
  Result<uint64_t> Unregister(const std::string& name);
  // Forgets every region; returns their ids (for the workers' mappings).
  std::vector<uint64_t> UnregisterAll();

  // Every registered region, by name; or the one named (kNotFound).
  std::vector<SharedMemoryRegion> Regions() const;
  Result<SharedMemoryRegion> Region(const std::string& name) const;

  // The bytes [offset, offset + byte_size) of region `name` (offsets within
  // the region, as a request gives them), with what a worker needs to map
  // them. Errors: kNotFound for an unknown region; kInvalidArgument when
  // the range does not lie within the region, or when the object shrank
  // below it since it was registered (both named); kInternal when fstat
  // fails.
  Result<std::shared_ptr<const SharedTensorBytes>> Slice(const std::string& name, uint64_t offset,
                                                         uint64_t byte_size) const;
  // Copies `data` into region `name` at `offset` (bytes from the region's
  // start): how an output requested into shared memory reaches the client
  // (Triton's extension; the mapping is read-write). Errors: Slice's, for
  // the range [offset, offset + data.size()).
  Status Write(const std::string& name, uint64_t offset, std::string_view data) const;

 private:
  struct Entry {
    SharedMemoryRegion region;
    uint64_t id = 0;
    std::shared_ptr<const SharedMemory> mapping;  // [0, offset + byte_size) of the object
  };
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;  // guarded by mu_
  uint64_t next_id_ = 1;                  // guarded by mu_
};

}  // namespace modelgrid::ipc
