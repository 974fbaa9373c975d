// Channel: framed messages (frame.h) over one connected Unix stream socket,
// with optional file descriptors attached (SCM_RIGHTS).
//
// Why SOCK_STREAM and not SOCK_SEQPACKET: a SEQPACKET record must fit the
// socket's send buffer in one piece (a few hundred KiB by default), so a
// payload near kMaxPayloadBytes would fail with EMSGSIZE unless the buffers
// were raised system-wide. A stream carries any length; the frame header
// restores the boundaries, and the Channel never reads past the end of the
// current frame, so descriptors sent with a frame arrive with that frame.
//
// A dead peer never hangs the other side: end of stream (the peer closed the
// socket or its process exited, for any reason including SIGKILL) makes
// Receive return kUnavailable at once, and Send reports EPIPE/ECONNRESET as
// kUnavailable instead of raising SIGPIPE. Every wait has a timeout.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "modelgrid/ipc/frame.h"
#include "modelgrid/ipc/unique_fd.h"
#include "modelgrid/status.h"

namespace modelgrid::ipc {

namespace internal {
class Deadline;
}  // namespace internal

// Pass as a timeout to wait without a deadline (only EOF, an error or
// Shutdown() ends the wait).
inline constexpr std::chrono::milliseconds kNoTimeout{-1};
// Most descriptors one frame may carry.
inline constexpr size_t kMaxFdsPerFrame = 4;

// A frame together with the descriptors that came with it (owned by the
// receiver; empty when none were attached).
struct ReceivedFrame {
  Frame frame;
  std::vector<UniqueFd> fds;
};

// Tunables of one Channel.
struct ChannelOptions {
  // Largest payload Send accepts and Receive believes, in bytes.
  // Must not exceed kMaxPayloadBytes (larger values are clamped to it).
  uint32_t max_payload_bytes = kMaxPayloadBytes;
};

// Sends and receives frames on a connected AF_UNIX SOCK_STREAM socket.
//
// Ownership: the Channel owns the socket and closes it when destroyed. It puts
// the socket in non-blocking mode (waits are done with poll(2)).
//
// Thread-safety: Send may be called from several threads at once (frames are
// written whole, never interleaved); Receive likewise (one caller at a time
// reads; the others wait for it, within their own timeout). A Send and a
// Receive may run concurrently. Shutdown may be called from any thread at any
// time.
//
// Partial progress: a Receive that times out in the middle of a frame keeps
// what it has read, and the next Receive continues the same frame. A Send
// that times out (or fails) after writing part of a frame leaves the stream
// without a frame boundary, so every later Send fails with kUnavailable.
// After kCorruption from Receive, every later Receive fails the same way.
class Channel {
 public:
  // Takes ownership of `socket`, a connected AF_UNIX SOCK_STREAM socket
  // (e.g. from SocketPair, ConnectUnix or AcceptUnix).
  explicit Channel(UniqueFd socket, ChannelOptions options = {});
  ~Channel() = default;
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // Writes `frame` whole, retrying partial writes and EINTR. `fds` (at most
  // kMaxFdsPerFrame, borrowed: the caller keeps and closes its copies) are
  // attached with SCM_RIGHTS; the receiver gets its own duplicates. Sets or
  // clears kFrameFlagFds in the flags sent.
  // `timeout` bounds the whole call (kNoTimeout: no bound).
  // Errors: kInvalidArgument for a payload over max_payload_bytes or too many
  // fds (nothing is written); kUnavailable when the peer has closed (EPIPE,
  // ECONNRESET), on timeout, or after an earlier partial Send; kInternal for
  // other socket errors.
  Status Send(const Frame& frame, std::span<const int> fds = {},
              std::chrono::milliseconds timeout = kNoTimeout);

  // Reads the next frame, waiting at most `timeout` (kNoTimeout: no bound).
  // Descriptors attached to the frame are closed; use ReceiveWithFds to keep them.
  // Errors: kUnavailable "peer closed" on end of stream (also mid-frame: the
  // message says how many bytes of the frame had arrived), on timeout ("timed
  // out"), after Shutdown, or on ECONNRESET; kCorruption for a bad magic, a
  // payload length over max_payload_bytes, kFrameFlagFds without descriptors
  // or more than kMaxFdsPerFrame descriptors; kInternal for other socket errors.
  Result<Frame> Receive(std::chrono::milliseconds timeout);

  // As Receive, but also returns the descriptors sent with the frame
  // (close-on-exec, owned by the caller).
  Result<ReceivedFrame> ReceiveWithFds(std::chrono::milliseconds timeout);

  // True when the socket has bytes to read or the peer has closed: Receive
  // would find something at once. One poll(2) with a zero timeout, for spin
  // waits (ipc/spin.h). The bytes may be only part of a frame.
  bool Readable() const;

  // Shuts the socket down in both directions: a Receive blocked in another
  // thread returns kUnavailable, later Sends fail, and the peer sees end of
  // stream. The descriptor stays open until the Channel is destroyed.
  void Shutdown();

  // The socket, still owned by the Channel: for poll/epoll readiness only.
  // Reading or writing it directly breaks framing.
  int fd() const { return socket_.get(); }

 private:
  // Receive state that survives a timeout in the middle of a frame.
  struct PendingFrame {
    uint8_t header_bytes[kFrameHeaderBytes] = {};
    uint64_t header_got = 0;
    bool have_header = false;
    FrameHeader header;
    std::string payload;
    uint64_t payload_got = 0;
    std::vector<UniqueFd> fds;
  };

  // Reads until `*got` == `len` into `dst`, advancing `*got` as bytes
  // arrive (so a timeout keeps the progress) and collecting descriptors into
  // pending_.fds. Requires recv_mu_.
  Status ReadExact(uint8_t* dst, uint64_t len, uint64_t* got, const internal::Deadline& deadline);

  UniqueFd socket_;
  ChannelOptions options_;
  std::atomic<bool> shut_down_{false};

  std::timed_mutex send_mu_;
  Status send_broken_;  // guarded by send_mu_: set once a Send stops mid-frame

  std::timed_mutex recv_mu_;
  PendingFrame pending_;  // guarded by recv_mu_
  Status recv_broken_;    // guarded by recv_mu_: corruption or end of stream seen
};

}  // namespace modelgrid::ipc
