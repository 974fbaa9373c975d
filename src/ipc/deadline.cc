#include "ipc/deadline.h"

#include <poll.h>

#include <cerrno>
#include <climits>
#include <system_error>

namespace modelgrid::ipc::internal {

Deadline Deadline::After(std::chrono::milliseconds timeout) {
  Deadline d;
  if (timeout.count() >= 0) {
    d.bounded_ = true;
    // Saturate instead of overflowing on huge timeouts.
    const auto now = Clock::now();
    const auto room =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::time_point::max() - now);
    d.at_ = timeout >= room ? Clock::time_point::max() : now + timeout;
  }
  return d;
}

int Deadline::PollTimeoutMs() const {
  if (!bounded_) return -1;
  const auto now = Clock::now();
  if (now >= at_) return 0;
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(at_ - now).count();
  return left > INT_MAX ? INT_MAX : static_cast<int>(left);
}

Status WaitReady(int fd, short events, const Deadline& deadline, const std::string& what) {
  while (true) {
    const int timeout_ms = deadline.PollTimeoutMs();
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, timeout_ms);
    if (r > 0) return Status::Ok();
    if (r < 0 && errno != EINTR) {
      return Status::Internal("poll failed waiting for " + what + ": " + ErrnoText(errno));
    }
    if (r == 0 && deadline.expired()) return Status::Unavailable("timed out waiting for " + what);
  }
}

std::string ErrnoText(int err) {
  return std::error_code(err, std::generic_category()).message() + " (errno " +
         std::to_string(err) + ")";
}

}  // namespace modelgrid::ipc::internal
