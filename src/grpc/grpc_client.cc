// GrpcClient (grpc_client.h).
#include "grpc/grpc_client.h"

#include "grpc/grpc_convert.h"

namespace modelgrid::grpc_internal {

GrpcClient::GrpcClient(const std::string& target, std::string token,
                       std::chrono::milliseconds timeout, int max_message_bytes)
    : token_(std::move(token)), timeout_(timeout) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(max_message_bytes);
  args.SetMaxSendMessageSize(max_message_bytes);
  channel_ = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  stub_ = inference::GRPCInferenceService::NewStub(channel_);
}

std::unique_ptr<grpc::ClientContext> GrpcClient::Context() const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + timeout_);
  if (!token_.empty()) context->AddMetadata("authorization", "Bearer " + token_);
  return context;
}

Result<InferResponse> GrpcClient::Infer(const std::string& model, const std::string& version,
                                        const InferRequest& request, int* trailing_retry_after) {
  inference::ModelInferRequest message;
  MG_RETURN_IF_ERROR(EncodeModelInferRequest(model, version, request, &message));
  inference::ModelInferResponse reply;
  auto context = Context();
  const grpc::Status status = stub_->ModelInfer(context.get(), message, &reply);
  if (trailing_retry_after) {
    *trailing_retry_after = 0;
    const auto& md = context->GetServerTrailingMetadata();
    auto it = md.find("retry-after");
    if (it != md.end()) *trailing_retry_after = std::atoi(std::string(it->second.data(), it->second.size()).c_str());
  }
  MG_RETURN_IF_ERROR(FromGrpcStatus(status));
  return DecodeModelInferResponse(&reply);
}

}  // namespace modelgrid::grpc_internal
