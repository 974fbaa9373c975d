// Internal: a point in time that bounds a wait, and poll(2) on one descriptor
// against it. Shared by channel.cc and unix_socket.cc.
#pragma once

#include <chrono>
#include <string>

#include "modelgrid/status.h"

namespace modelgrid::ipc::internal {

class Deadline {
 public:
  using Clock = std::chrono::steady_clock;
  // A deadline `timeout` from now; negative means none.
  static Deadline After(std::chrono::milliseconds timeout);

  bool expired() const { return bounded_ && Clock::now() >= at_; }
  // Milliseconds left for poll(2), rounded up: -1 without a deadline, 0 once past.
  int PollTimeoutMs() const;

 private:
  bool bounded_ = false;
  Clock::time_point at_;
};

// Waits until `fd` reports one of `events` (or an error/hang-up condition,
// which the caller's next syscall will surface), retrying EINTR.
// Errors: kUnavailable "timed out waiting for WHAT"; kInternal if poll fails.
Status WaitReady(int fd, short events, const Deadline& deadline, const std::string& what);

// "strerror(err) (errno err)", thread-safe.
std::string ErrnoText(int err);

}  // namespace modelgrid::ipc::internal
