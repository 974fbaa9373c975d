// Helpers shared by the ipc tests: socket pairs, raw frame bytes, child
// processes with a bounded wait, a scratch directory.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "modelgrid/ipc/channel.h"
#include "modelgrid/ipc/frame.h"
#include "modelgrid/ipc/unix_socket.h"

namespace modelgrid::ipc::testing {

// Timeout for waits that must end early for another reason (EOF, data):
// long enough never to fire on a loaded machine, and bounding the test if
// the code under test is wrong.
inline constexpr std::chrono::milliseconds kGenerous{10000};

// A connected pair of sockets, aborting the test on failure.
inline std::pair<UniqueFd, UniqueFd> RawPair() {
  auto pair = SocketPair();
  if (!pair.ok()) std::abort();
  return std::move(pair).value();
}

struct ChannelPair {
  std::unique_ptr<Channel> a;
  std::unique_ptr<Channel> b;
};

inline ChannelPair MakeChannelPair(ChannelOptions options = {}) {
  auto [x, y] = RawPair();
  return {std::make_unique<Channel>(std::move(x), options),
          std::make_unique<Channel>(std::move(y), options)};
}

// The encoded header of a frame with these fields.
inline std::array<uint8_t, kFrameHeaderBytes> HeaderBytes(uint16_t type, uint64_t request_id,
                                                          uint32_t payload_bytes,
                                                          uint16_t flags = 0) {
  FrameHeader h;
  h.type = type;
  h.flags = flags;
  h.request_id = request_id;
  h.payload_bytes = payload_bytes;
  std::array<uint8_t, kFrameHeaderBytes> bytes{};
  EncodeFrameHeader(h, bytes);
  return bytes;
}

// Writes all of `data` to a (possibly non-blocking) socket; false on error.
inline bool WriteAll(int fd, const void* data, size_t len) {
  const char* p = static_cast<const char*>(data);
  for (int tries = 0; len > 0 && tries < 10000; ++tries) {
    const ssize_t n = ::send(fd, p, len, MSG_NOSIGNAL);
    if (n > 0) {
      p += n;
      len -= static_cast<size_t>(n);
    } else if (n < 0 && errno == EAGAIN) {
      pollfd pfd{fd, POLLOUT, 0};
      ::poll(&pfd, 1, 1000);
    } else if (n < 0 && errno != EINTR) {
      return false;
    }
  }
  return len == 0;
}

// Waits for child `pid` to end, at most `limit`; kills it if it has not.
// Returns the wait status, or -1 if it had to be killed.
inline int WaitChild(pid_t pid, std::chrono::milliseconds limit = kGenerous) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (true) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0) return -1;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// Number of descriptors open in this process.
inline int CountOpenFds() {
  int count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    ++count;
  }
  return count;
}

// A fresh directory under /tmp, removed with its contents on destruction.
class ScratchDir {
 public:
  ScratchDir() {
    char tmpl[] = "/tmp/mg-ipc-XXXXXX";
    const char* dir = ::mkdtemp(tmpl);
    path_ = dir != nullptr ? dir : "";
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace modelgrid::ipc::testing
