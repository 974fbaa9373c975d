// Creating connected AF_UNIX stream sockets for Channel: a listening socket at
// a filesystem path (frontend side), a connect with bounded retry (worker
// side), and a socketpair (tests, fork without a path).
//
// Every descriptor returned is close-on-exec and non-blocking, and owned by
// the caller. All functions are thread-safe (they share no state).
#pragma once

#include <chrono>
#include <string>
#include <utility>

#include "modelgrid/ipc/unique_fd.h"
#include "modelgrid/status.h"

namespace modelgrid::ipc {

// Creates a listening socket bound at `path` with permissions 0600 (only the
// owning user may connect). The mode is set before listen(2), so no other
// user can connect in between. A stale socket file at `path` (one nobody
// listens on, e.g. left by a crashed frontend) is unlinked first. The caller
// should unlink `path` when done; closing the descriptor does not.
// Errors: kInvalidArgument when `path` is empty or longer than sun_path
// allows (107 bytes); kAlreadyExists when a live listener is at `path` or
// `path` is not a socket (nothing is removed); kInternal for other failures,
// naming the path and errno.
Result<UniqueFd> ListenUnix(const std::string& path, int backlog = 16);

// Waits up to `timeout` (negative: no bound) for a connection on
// `listen_fd` (borrowed) and returns the connected socket.
// Errors: kUnavailable on timeout; kInternal for other failures.
Result<UniqueFd> AcceptUnix(int listen_fd, std::chrono::milliseconds timeout);

// How ConnectUnix retries while the listener is not up yet (ENOENT,
// ECONNREFUSED, EAGAIN): at most `max_attempts` tries, sleeping
// `initial_delay` after the first failure and doubling up to `max_delay`.
// With the defaults the sleeps add up to about 3.3 seconds at most.
struct ConnectRetry {
  int max_attempts = 40;
  std::chrono::milliseconds initial_delay{1};
  std::chrono::milliseconds max_delay{100};
};

// Connects to the listener at `path`, retrying as `retry` says.
// Errors: kInvalidArgument for a bad path; kUnavailable when every attempt
// failed (the message gives the attempts and the last errno); kInternal for
// errors retrying cannot fix (e.g. EACCES).
Result<UniqueFd> ConnectUnix(const std::string& path, const ConnectRetry& retry = {});

// A connected pair of sockets (socketpair(2)): one end for each side of a
// fork, or both ends in one process for tests. Both are close-on-exec: a
// launcher that execs the worker dup2()s the worker's end onto the number it
// passes on the command line (dup2 clears the flag). Errors: kInternal.
Result<std::pair<UniqueFd, UniqueFd>> SocketPair();

}  // namespace modelgrid::ipc
