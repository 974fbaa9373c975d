// A client of ModelGrid's gRPC server (and of any KServe v2 / Triton gRPC
// server): the tests' client and the `modelgrid-grpc` tool's. A thin layer
// over the generated stub: calls carry a deadline and, when set, the admin
// token; inference converts with grpc_convert.h, so the client reads and
// writes the wire exactly as the server does. Thread-safe (gRPC stubs are).
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

#include "kserve_grpc.grpc.pb.h"
#include "modelgrid/kserve/infer_codec.h"
#include "modelgrid/status.h"

namespace modelgrid::grpc_internal {

class GrpcClient {
 public:
  // A client of `target` ("127.0.0.1:8001"); `token` (when not empty) is
  // sent as `authorization: Bearer <token>` on every call; each call may
  // take at most `timeout`. `max_message_bytes` bounds what it sends and
  // receives.
  explicit GrpcClient(const std::string& target, std::string token = "",
                      std::chrono::milliseconds timeout = std::chrono::seconds(60),
                      int max_message_bytes = 64 << 20);

  // A context with the deadline and the token, for calling stub() directly.
  std::unique_ptr<grpc::ClientContext> Context() const;
  inference::GRPCInferenceService::Stub& stub() { return *stub_; }

  // ModelInfer with `request` encoded with raw contents; the response
  // decoded. `trailing_retry_after` (optional) receives the retry-after
  // trailing metadata in seconds when the server sent one, else 0.
  // Errors: the server's status (FromGrpcStatus), or a decoding error.
  Result<InferResponse> Infer(const std::string& model, const std::string& version,
                              const InferRequest& request, int* trailing_retry_after = nullptr);

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
  std::string token_;
  std::chrono::milliseconds timeout_;
};

}  // namespace modelgrid::grpc_internal
