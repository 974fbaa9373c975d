#include "modelgrid/ipc/unix_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "ipc/deadline.h"

namespace modelgrid::ipc {
namespace {

using internal::ErrnoText;

Result<sockaddr_un> MakeAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty()) return Status::InvalidArgument("empty Unix socket path");
  if (path.size() >= sizeof(addr.sun_path)) {
    return Status::InvalidArgument("Unix socket path '" + path + "' has " +
                                   std::to_string(path.size()) + " bytes; at most " +
                                   std::to_string(sizeof(addr.sun_path) - 1) + " fit");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

// One connect attempt; returns the socket, or -1 with errno set.
int TryConnect(const sockaddr_un& addr) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) return fd;
  const int err = errno;
  ::close(fd);
  errno = err;
  return -1;
}

// Removes a socket file nobody listens on. Errors: kAlreadyExists when the
// path is live or not a socket.
Status RemoveStaleSocket(const std::string& path, const sockaddr_un& addr) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return Status::Internal("cannot stat '" + path + "': " + ErrnoText(errno));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return Status::AlreadyExists("'" + path + "' exists and is not a socket; not removing it");
  }
  const int probe = TryConnect(addr);
  if (probe >= 0 || errno == EAGAIN) {
    if (probe >= 0) ::close(probe);
    return Status::AlreadyExists("another process is listening on '" + path + "'");
  }
  if (errno != ECONNREFUSED) {
    return Status::Internal("cannot probe socket '" + path + "': " + ErrnoText(errno));
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Status::Internal("cannot remove stale socket '" + path + "': " + ErrnoText(errno));
  }
  return Status::Ok();
}

}  // namespace

Result<UniqueFd> ListenUnix(const std::string& path, int backlog) {
  MG_ASSIGN_OR_RETURN(const sockaddr_un addr, MakeAddress(path));
  MG_RETURN_IF_ERROR(RemoveStaleSocket(path, addr));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return Status::Internal("socket(AF_UNIX) failed: " + ErrnoText(errno));
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno == EADDRINUSE) {
      return Status::AlreadyExists("'" + path + "' was created by someone else meanwhile");
    }
    return Status::Internal("cannot bind '" + path + "': " + ErrnoText(errno));
  }
  // Nobody can connect before listen(2), so setting the mode here leaves no
  // window in which another user could connect.
  if (::chmod(path.c_str(), 0600) != 0 || ::listen(fd.get(), backlog) != 0) {
    const int err = errno;
    ::unlink(path.c_str());
    return Status::Internal("cannot set up listener '" + path + "': " + ErrnoText(err));
  }
  return fd;
}

Result<UniqueFd> AcceptUnix(int listen_fd, std::chrono::milliseconds timeout) {
  const internal::Deadline deadline = internal::Deadline::After(timeout);
  while (true) {
    MG_RETURN_IF_ERROR(internal::WaitReady(listen_fd, POLLIN, deadline, "a worker to connect"));
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) return UniqueFd(fd);
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED) {
      continue;
    }
    return Status::Internal("accept failed: " + ErrnoText(errno));
  }
}

Result<UniqueFd> ConnectUnix(const std::string& path, const ConnectRetry& retry) {
  MG_ASSIGN_OR_RETURN(const sockaddr_un addr, MakeAddress(path));
  std::chrono::milliseconds delay = retry.initial_delay;
  int last_errno = 0;
  const int attempts = std::max(1, retry.max_attempts);
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    const int fd = TryConnect(addr);
    if (fd >= 0) return UniqueFd(fd);
    last_errno = errno;
    const bool retryable = last_errno == ENOENT || last_errno == ECONNREFUSED ||
                           last_errno == EAGAIN || last_errno == EINTR;
    if (!retryable) {
      return Status::Internal("cannot connect to '" + path + "': " + ErrnoText(last_errno));
    }
    if (attempt == attempts) break;
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, retry.max_delay);
  }
  return Status::Unavailable("cannot connect to '" + path + "' after " + std::to_string(attempts) +
                             " attempts: " + ErrnoText(last_errno));
}

Result<std::pair<UniqueFd, UniqueFd>> SocketPair() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0) {
    return Status::Internal("socketpair failed: " + ErrnoText(errno));
  }
  return std::make_pair(UniqueFd(sv[0]), UniqueFd(sv[1]));
}

}  // namespace modelgrid::ipc
