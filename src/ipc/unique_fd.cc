#include "modelgrid/ipc/unique_fd.h"

#include <unistd.h>

namespace modelgrid::ipc {

void UniqueFd::reset(int fd) {
  // Linux releases the descriptor even when close(2) fails (EINTR included),
  // so close is never retried: that could close a descriptor reused by
  // another thread.
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

}  // namespace modelgrid::ipc
