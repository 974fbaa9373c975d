// The modelgrid-worker service: serves the control protocol of
// modelgrid/ipc/messages.h on one socket (README.md). Only the
// modelgrid-worker executable uses it, so it is declared here and not under
// include/.
#pragma once

#include <chrono>
#include <string>

#include "modelgrid/ipc/unique_fd.h"
#include "modelgrid/status.h"

namespace modelgrid::worker {

// How a worker serves.
struct WorkerServiceOptions {
  // The worker's name, in error messages sent to the frontend ("worker
  // 'NAME': ...").
  std::string name;
  // LibTorch intra-op threads (ModelBackend::Load's `threads`);
  // 0 keeps LibTorch's default.
  int threads = 0;
  // How long a request whose outputs did not fit waits for `output_region`
  // before it is answered with an UNAVAILABLE error.
  std::chrono::milliseconds output_region_timeout{60'000};
  // At shutdown or end of stream: how long to let models finish the request
  // they are computing. Past it the process ends at once (std::_Exit(0)),
  // since a LibTorch call cannot be interrupted.
  std::chrono::milliseconds drain_timeout{1'000};
  // How long a model's thread polls for its next job before it sleeps
  // (ipc/spin.h; the frontend's WorkerOptions::spin says why). 0 = never.
  std::chrono::microseconds spin{0};
};

// Serves frames arriving on `socket` (a connected AF_UNIX stream socket,
// owned from now on) until `shutdown` or end of stream (the frontend is
// gone), then stops every model and returns. Installs the counting
// allocator (modelgrid/torch/counting_allocator.h) before anything else.
// Blocks the calling thread; models run on threads of their own (one per
// model). Logs through spdlog's default logger.
//
// Never ends on a malformed message: it answers with an error where the
// message carries a request id and logs otherwise.
// Returns OK after `shutdown` or end of stream; kCorruption when the stream
// itself is corrupt (framing lost: nothing more can be read), kInternal for
// other socket failures. May end the process itself with exit code 0 (see
// WorkerServiceOptions::drain_timeout).
Status RunWorker(ipc::UniqueFd socket, const WorkerServiceOptions& options);

}  // namespace modelgrid::worker
