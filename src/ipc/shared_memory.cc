#include "modelgrid/ipc/shared_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "ipc/deadline.h"

namespace modelgrid::ipc {
namespace {

using internal::ErrnoText;

Result<std::byte*> Map(int fd, uint64_t capacity) {
  void* p = ::mmap(nullptr, capacity, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    return Status::Internal("mmap of " + std::to_string(capacity) +
                            " bytes failed: " + ErrnoText(errno));
  }
  return static_cast<std::byte*>(p);
}

}  // namespace

Result<SharedMemory> SharedMemory::Create(const std::string& name, uint64_t capacity) {
  if (capacity == 0) return Status::InvalidArgument("shared memory '" + name + "' of 0 bytes");
  const std::string memfd_name = "modelgrid-" + name;
  UniqueFd fd(::memfd_create(memfd_name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd.valid()) {
    return Status::Internal("memfd_create('" + memfd_name + "') failed: " + ErrnoText(errno));
  }
  if (::ftruncate(fd.get(), static_cast<off_t>(capacity)) != 0) {
    const int err = errno;
    const std::string what = "cannot size shared memory '" + name + "' to " +
                             std::to_string(capacity) + " bytes: " + ErrnoText(err);
    if (err == ENOMEM || err == ENOSPC || err == EFBIG || err == EINVAL) {
      return Status::ResourceExhausted(what);
    }
    return Status::Internal(what);
  }
  // After this, neither process can change the size under the other's mapping.
  if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    return Status::Internal("cannot seal shared memory '" + name + "': " + ErrnoText(errno));
  }
  MG_ASSIGN_OR_RETURN(std::byte * data, Map(fd.get(), capacity));
  return SharedMemory(std::move(fd), data, capacity);
}

Result<SharedMemory> SharedMemory::MapFromFd(UniqueFd fd, uint64_t capacity) {
  if (!fd.valid()) return Status::InvalidArgument("cannot map an invalid descriptor");
  if (capacity == 0) return Status::InvalidArgument("cannot map 0 bytes of shared memory");
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) {
    return Status::Internal("fstat of shared memory descriptor failed: " + ErrnoText(errno));
  }
  if (st.st_size < 0 || static_cast<uint64_t>(st.st_size) < capacity) {
    return Status::InvalidArgument("shared memory holds " + std::to_string(st.st_size) +
                                   " bytes, fewer than the " + std::to_string(capacity) +
                                   " bytes to map");
  }
  MG_ASSIGN_OR_RETURN(std::byte * data, Map(fd.get(), capacity));
  return SharedMemory(std::move(fd), data, capacity);
}

SharedMemory::SharedMemory(SharedMemory&& other) noexcept
    : fd_(std::move(other.fd_)),
      data_(std::exchange(other.data_, nullptr)),
      capacity_(std::exchange(other.capacity_, 0)) {}

SharedMemory& SharedMemory::operator=(SharedMemory&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) ::munmap(data_, capacity_);
    fd_ = std::move(other.fd_);
    data_ = std::exchange(other.data_, nullptr);
    capacity_ = std::exchange(other.capacity_, 0);
  }
  return *this;
}

SharedMemory::~SharedMemory() {
  if (data_ != nullptr) ::munmap(data_, capacity_);
}

Result<std::span<std::byte>> SharedMemory::Bytes(const Region& region) const {
  if (region.offset > capacity_ || region.size > capacity_ - region.offset) {
    return Status::InvalidArgument("region {offset " + std::to_string(region.offset) + ", size " +
                                   std::to_string(region.size) + "} lies outside the " +
                                   std::to_string(capacity_) + "-byte shared memory");
  }
  return std::span<std::byte>(data_ + region.offset, region.size);
}

}  // namespace modelgrid::ipc
