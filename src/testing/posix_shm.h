// Test and benchmark helper: the client side of Triton's system shared
// memory extension, a POSIX shared memory object this process creates,
// sizes and maps read-write, and unlinks when done.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "modelgrid/status.h"

namespace modelgrid::testing {

// A created, mapped object; unmapped and unlinked on destruction.
class PosixSharedMemory {
 public:
  // Creates the object `key` ("/name", must not exist) of `bytes` bytes
  // (zero-filled) and maps it. Errors: kInternal naming the call and key.
  static Result<std::unique_ptr<PosixSharedMemory>> Create(const std::string& key, size_t bytes) {
    const int fd = ::shm_open(key.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0) return Status::Internal("shm_open " + key + ": " + std::strerror(errno));
    std::unique_ptr<PosixSharedMemory> shm(new PosixSharedMemory(key, bytes));
    const bool sized = ::ftruncate(fd, static_cast<off_t>(bytes)) == 0;
    void* data =
        sized ? ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
    const int err = errno;
    ::close(fd);
    if (data == MAP_FAILED) return Status::Internal("mapping " + key + ": " + std::strerror(err));
    shm->data_ = static_cast<char*>(data);
    return shm;
  }

  ~PosixSharedMemory() {
    if (data_ != nullptr) ::munmap(data_, bytes_);
    ::shm_unlink(key_.c_str());
  }
  PosixSharedMemory(const PosixSharedMemory&) = delete;
  PosixSharedMemory& operator=(const PosixSharedMemory&) = delete;

  const std::string& key() const { return key_; }
  char* data() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  PosixSharedMemory(std::string key, size_t bytes) : key_(std::move(key)), bytes_(bytes) {}
  std::string key_;
  size_t bytes_;
  char* data_ = nullptr;
};

}  // namespace modelgrid::testing
