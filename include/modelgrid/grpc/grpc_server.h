// The KServe v2 / Open Inference Protocol gRPC server
// (inference.GRPCInferenceService, src/grpc/kserve_grpc.proto) over an
// InferenceService (modelgrid/service/inference_service.h): a thin
// transport, like the HTTP server. Every RPC decodes its message into the
// service's structs, calls the service and encodes the answer; errors are
// gRPC statuses mapped from ModelGrid's (grpc_convert.h ToGrpcStatus: e.g.
// a memory limit RESOURCE_EXHAUSTED, an unknown model NOT_FOUND), and a
// queue-full or restarting model's UNAVAILABLE carries trailing metadata
// `retry-after` (seconds). Management RPCs (repository load/unload, shared
// memory register/unregister) read the admin token from the `authorization`
// metadata ("Bearer <token>"). Also serves grpc.health.v1.Health (gRPC's
// standard health service: SERVING once started).
//
// Lifecycle: construct, Start() (listening and serving on gRPC's own
// threads from then on), Stop() from any thread (waits for RPCs in flight,
// at most `shutdown_grace`). The service is not owned and must outlive the
// server. Thread-safety: Start once; Stop any number of times.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "modelgrid/status.h"

namespace modelgrid {

class InferenceService;

struct GrpcServerOptions {
  std::string host = "127.0.0.1";  // address to listen on
  int port = 8001;                 // TCP port; 0 = let the kernel pick a free one
  // The largest message accepted or sent, in bytes (a ModelInfer request
  // with its raw contents). Larger ones fail with RESOURCE_EXHAUSTED.
  uint64_t max_message_bytes = uint64_t{64} << 20;
  // RPCs served at once (gRPC's synchronous server threads); further calls
  // wait for a thread. 0 = 2 x the machine's cores, at least 8.
  int threads = 0;
  // How long Stop waits for RPCs in flight before cancelling them.
  std::chrono::milliseconds shutdown_grace{5'000};
};

class GrpcServer {
 public:
  // `service` is not owned and must outlive the server.
  GrpcServer(InferenceService* service, GrpcServerOptions options);
  // Stops the server (as Stop).
  ~GrpcServer();
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  // Opens options.host:options.port and starts serving. Returns the bound
  // port. Errors: kUnavailable "cannot listen for gRPC on HOST:PORT" (port
  // taken, bad address); kInvalidArgument for a port outside 0..65535;
  // kInternal when called twice.
  Result<int> Start();
  // Stops accepting calls, lets calls in flight finish (up to
  // shutdown_grace) and returns. Safe before Start and more than once.
  void Stop();
  // The bound port, or 0 before a successful Start().
  int port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace modelgrid
