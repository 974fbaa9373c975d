#include "modelgrid/ipc/channel.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "ipc/deadline.h"

namespace modelgrid::ipc {
namespace {

using internal::Deadline;
using internal::ErrnoText;

constexpr size_t kControlBytes = CMSG_SPACE(sizeof(int) * kMaxFdsPerFrame);

std::string Describe(const FrameHeader& h) {
  return "type " + std::to_string(h.type) + ", request " + std::to_string(h.request_id);
}

// Moves every descriptor of SCM_RIGHTS messages in `msg` into `fds`.
void CollectFds(msghdr* msg, std::vector<UniqueFd>* fds) {
  for (cmsghdr* c = CMSG_FIRSTHDR(msg); c != nullptr; c = CMSG_NXTHDR(msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      fds->emplace_back(fd);
    }
  }
}

// Takes `lock` within `timeout` (negative: waits as long as it takes).
bool LockWithin(std::unique_lock<std::timed_mutex>& lock, std::chrono::milliseconds timeout) {
  if (timeout.count() < 0) {
    lock.lock();
    return true;
  }
  return lock.try_lock_for(timeout);
}

}  // namespace

Channel::Channel(UniqueFd socket, ChannelOptions options)
    : socket_(std::move(socket)), options_(options) {
  if (options_.max_payload_bytes > kMaxPayloadBytes) options_.max_payload_bytes = kMaxPayloadBytes;
  if (socket_.valid()) {
    const int flags = ::fcntl(socket_.get(), F_GETFL);
    if (flags >= 0) ::fcntl(socket_.get(), F_SETFL, flags | O_NONBLOCK);
  }
}

Status Channel::Send(const Frame& frame, std::span<const int> fds,
                     std::chrono::milliseconds timeout) {
  if (!socket_.valid()) return Status::InvalidArgument("channel has no socket");
  if (frame.payload.size() > options_.max_payload_bytes) {
    return Status::InvalidArgument("frame payload of " + std::to_string(frame.payload.size()) +
                                   " bytes exceeds the limit of " +
                                   std::to_string(options_.max_payload_bytes) + " bytes (type " +
                                   std::to_string(frame.type) + ")");
  }
  if (fds.size() > kMaxFdsPerFrame) {
    return Status::InvalidArgument("a frame carries at most " + std::to_string(kMaxFdsPerFrame) +
                                   " descriptors, got " + std::to_string(fds.size()));
  }
  for (int fd : fds) {
    if (fd < 0)
      return Status::InvalidArgument("cannot send invalid descriptor " + std::to_string(fd));
  }
  const Deadline deadline = Deadline::After(timeout);

  FrameHeader header;
  header.type = frame.type;
  header.flags = fds.empty() ? (frame.flags & ~kFrameFlagFds) : (frame.flags | kFrameFlagFds);
  header.request_id = frame.request_id;
  header.payload_bytes = static_cast<uint32_t>(frame.payload.size());
  uint8_t header_bytes[kFrameHeaderBytes];
  EncodeFrameHeader(header, header_bytes);

  std::unique_lock<std::timed_mutex> lock(send_mu_, std::defer_lock);
  if (!LockWithin(lock, timeout)) {
    return Status::Unavailable("timed out waiting for another thread's send to finish");
  }
  if (!send_broken_.ok()) return send_broken_;

  const uint64_t total = kFrameHeaderBytes + frame.payload.size();
  uint64_t sent = 0;
  alignas(cmsghdr) char control[kControlBytes];
  while (sent < total) {
    iovec iov[2];
    int iov_count = 0;
    if (sent < kFrameHeaderBytes) {
      iov[iov_count++] = {header_bytes + sent, kFrameHeaderBytes - sent};
      if (!frame.payload.empty()) {
        iov[iov_count++] = {const_cast<char*>(frame.payload.data()), frame.payload.size()};
      }
    } else {
      iov[iov_count++] = {const_cast<char*>(frame.payload.data()) + (sent - kFrameHeaderBytes),
                          total - sent};
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = iov_count;
    if (sent == 0 && !fds.empty()) {
      // The descriptors ride on the first byte of the frame; the receiver
      // reads frames exactly, so they arrive with this frame's header.
      std::memset(control, 0, sizeof(control));
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    const ssize_t n = ::sendmsg(socket_.get(), &msg, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<uint64_t>(n);
      continue;
    }
    Status error;
    if (n == 0 || errno == EAGAIN || errno == EWOULDBLOCK) {
      error = internal::WaitReady(socket_.get(), POLLOUT, deadline,
                                  "room to send a frame (" + Describe(header) + ")");
      if (error.ok()) continue;
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN) {
      error = Status::Unavailable("peer closed the connection: " + ErrnoText(errno));
    } else {
      error = Status::Internal("sendmsg failed: " + ErrnoText(errno));
    }
    if (sent > 0) {
      send_broken_ = Status::Unavailable("channel unusable for sending: a frame stopped after " +
                                         std::to_string(sent) + " of " + std::to_string(total) +
                                         " bytes (" + error.message() + ")");
    }
    return error.WithPrefix("sending frame (" + Describe(header) + ")");
  }
  return Status::Ok();
}

Result<Frame> Channel::Receive(std::chrono::milliseconds timeout) {
  // Descriptors that came along are closed when `received` goes away.
  MG_ASSIGN_OR_RETURN(ReceivedFrame received, ReceiveWithFds(timeout));
  return std::move(received.frame);
}

Result<ReceivedFrame> Channel::ReceiveWithFds(std::chrono::milliseconds timeout) {
  if (!socket_.valid()) return Status::InvalidArgument("channel has no socket");
  const Deadline deadline = Deadline::After(timeout);
  std::unique_lock<std::timed_mutex> lock(recv_mu_, std::defer_lock);
  if (!LockWithin(lock, timeout)) {
    return Status::Unavailable("timed out waiting for another thread's receive to finish");
  }
  if (!recv_broken_.ok()) return recv_broken_;
  PendingFrame& p = pending_;

  if (!p.have_header) {
    MG_RETURN_IF_ERROR(ReadExact(p.header_bytes, kFrameHeaderBytes, &p.header_got, deadline));
    Result<FrameHeader> header = DecodeFrameHeader(
        std::span<const uint8_t, kFrameHeaderBytes>(p.header_bytes), options_.max_payload_bytes);
    if (!header.ok()) {
      recv_broken_ = header.status();
      return recv_broken_;
    }
    p.header = *header;
    p.have_header = true;
    p.payload.resize(p.header.payload_bytes);
  }
  MG_RETURN_IF_ERROR(ReadExact(reinterpret_cast<uint8_t*>(p.payload.data()), p.payload.size(),
                               &p.payload_got, deadline));

  if ((p.header.flags & kFrameFlagFds) != 0 && p.fds.empty()) {
    recv_broken_ = Status::Corruption("frame (" + Describe(p.header) +
                                      ") is flagged as carrying descriptors but none arrived");
    return recv_broken_;
  }
  ReceivedFrame out;
  out.frame.type = p.header.type;
  out.frame.flags = p.header.flags;
  out.frame.request_id = p.header.request_id;
  out.frame.payload = std::move(p.payload);
  out.fds = std::move(p.fds);
  pending_ = PendingFrame{};
  return out;
}

Status Channel::ReadExact(uint8_t* dst, uint64_t len, uint64_t* got,
                          const internal::Deadline& deadline) {
  alignas(cmsghdr) char control[kControlBytes];
  while (*got < len) {
    iovec iov{dst + *got, len - *got};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    const ssize_t n = ::recvmsg(socket_.get(), &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n > 0) {
      *got += static_cast<uint64_t>(n);
      CollectFds(&msg, &pending_.fds);
      if ((msg.msg_flags & MSG_CTRUNC) != 0 || pending_.fds.size() > kMaxFdsPerFrame) {
        pending_.fds.clear();
        recv_broken_ = Status::Corruption("a frame carried more than " +
                                          std::to_string(kMaxFdsPerFrame) + " descriptors");
        return recv_broken_;
      }
      continue;
    }
    if (n == 0) {
      const uint64_t frame_got = pending_.header_got + pending_.payload_got;
      std::string what = shut_down_.load() ? "channel was shut down" : "peer closed the connection";
      if (frame_got > 0) {
        what += " mid-frame after " + std::to_string(frame_got) + " of " +
                (pending_.have_header
                     ? std::to_string(kFrameHeaderBytes + pending_.header.payload_bytes)
                     : "at least " + std::to_string(kFrameHeaderBytes)) +
                " bytes";
      }
      recv_broken_ = Status::Unavailable(what);
      return recv_broken_;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      MG_RETURN_IF_ERROR(internal::WaitReady(socket_.get(), POLLIN, deadline, "a frame"));
      continue;
    }
    if (errno == ECONNRESET) {
      recv_broken_ = Status::Unavailable("peer reset the connection: " + ErrnoText(errno));
      return recv_broken_;
    }
    return Status::Internal("recvmsg failed: " + ErrnoText(errno));
  }
  return Status::Ok();
}

bool Channel::Readable() const {
  if (!socket_.valid()) return false;
  pollfd p{socket_.get(), POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

void Channel::Shutdown() {
  shut_down_.store(true);
  if (socket_.valid()) ::shutdown(socket_.get(), SHUT_RDWR);
}

}  // namespace modelgrid::ipc
