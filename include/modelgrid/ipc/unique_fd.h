// UniqueFd: sole owner of one POSIX file descriptor (a socket, a memfd).
#pragma once

#include <utility>

namespace modelgrid::ipc {

// Owns a file descriptor and closes it when destroyed or reset. Move-only.
// -1 means "no descriptor". Thread-compatible: one object must not be used by
// two threads at once without outside synchronization.
class UniqueFd {
 public:
  UniqueFd() = default;
  // Takes ownership of `fd` (-1 for none).
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }

  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  // The descriptor, still owned by this object; -1 when empty.
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives up ownership without closing; the caller must close the result.
  int release() { return std::exchange(fd_, -1); }
  // Closes the owned descriptor (if any) and takes ownership of `fd`.
  // close(2) errors are ignored: the descriptor is released either way.
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

}  // namespace modelgrid::ipc
