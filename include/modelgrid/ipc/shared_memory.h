// SharedMemory: a memfd mapped read-write and shared, the storage behind a
// tensor arena. The frontend creates it; a worker maps the same memory from
// the descriptor it receives over its Channel (SCM_RIGHTS), so tensors are
// written once and read in place by the other process (zero copy).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "modelgrid/ipc/region_allocator.h"
#include "modelgrid/ipc/unique_fd.h"
#include "modelgrid/status.h"

namespace modelgrid::ipc {

// Owns a memfd and one MAP_SHARED mapping of its first capacity() bytes;
// unmaps and closes on destruction. Move-only.
//
// Thread-safety: the object itself is immutable after creation; the bytes are
// raw shared memory — who may touch which region is decided by the protocol
// (a region belongs to one side at a time; ownership passes by message), not
// by a lock. No lock is ever held across processes.
class SharedMemory {
 public:
  // Creates an anonymous memfd named "modelgrid-<name>" (visible in
  // /proc/PID/maps), sized to `capacity` bytes (zero-filled) and sealed
  // against shrinking and growing, so the other process cannot truncate it
  // under this one's mapping (which would raise SIGBUS here).
  // Errors: kInvalidArgument for capacity 0; kResourceExhausted when the
  // kernel refuses the memory (ENOMEM/ENOSPC); kInternal otherwise.
  static Result<SharedMemory> Create(const std::string& name, uint64_t capacity);

  // Maps the first `capacity` bytes of `fd` (e.g. received with
  // Channel::ReceiveWithFds), taking ownership of `fd`.
  // Errors: kInvalidArgument when `fd` is invalid, capacity is 0, or the
  // file is smaller than `capacity` (both sizes named); kInternal when
  // fstat/mmap fail.
  static Result<SharedMemory> MapFromFd(UniqueFd fd, uint64_t capacity);

  SharedMemory(SharedMemory&& other) noexcept;
  SharedMemory& operator=(SharedMemory&& other) noexcept;
  SharedMemory(const SharedMemory&) = delete;
  SharedMemory& operator=(const SharedMemory&) = delete;
  ~SharedMemory();

  // Start of the mapping (page aligned, so offsets aligned to
  // kRegionAlignment give aligned pointers). Valid while this object lives.
  std::byte* data() const { return data_; }
  // Mapped bytes.
  uint64_t capacity() const { return capacity_; }
  // The memfd, still owned by this object: pass it to Channel::Send to share
  // the memory; the receiver gets its own descriptor.
  int fd() const { return fd_.get(); }

  // The bytes of `region` inside this mapping (`region.size` bytes from
  // `region.offset`). Errors: kInvalidArgument when the region does not lie
  // within [0, capacity) — e.g. a corrupt or hostile offset in a message.
  Result<std::span<std::byte>> Bytes(const Region& region) const;

 private:
  SharedMemory(UniqueFd fd, std::byte* data, uint64_t capacity)
      : fd_(std::move(fd)), data_(data), capacity_(capacity) {}

  UniqueFd fd_;
  std::byte* data_ = nullptr;
  uint64_t capacity_ = 0;
};

}  // namespace modelgrid::ipc
