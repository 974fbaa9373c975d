// POST /v2/models/{m}[/versions/{v}]/infer: decode (JSON or Triton's binary
// data extension), run it through the InferenceService, encode the outputs.
#include <charconv>
#include <string>

#include "modelgrid/kserve/infer_codec.h"
#include "server/routes.h"

namespace modelgrid::server {

namespace {

constexpr const char* kHeaderLength = "Inference-Header-Content-Length";

// The Inference-Header-Content-Length value, when the request has one.
Result<std::optional<size_t>> JsonHeaderLength(const HttpRequest& req) {
  auto value = req.Header(kHeaderLength);
  if (!value) return std::optional<size_t>();
  size_t length = 0;
  const char* last = value->data() + value->size();
  auto [end, ec] = std::from_chars(value->data(), last, length);
  if (value->empty() || ec != std::errc() || end != last) {
    return Status::InvalidArgument(std::string(kHeaderLength) + " must be a byte count, got '" +
                                   *value + "'");
  }
  if (length > req.body.size()) {
    return Status::InvalidArgument(std::string(kHeaderLength) + " " + std::to_string(length) +
                                   " exceeds the body's " + std::to_string(req.body.size()) +
                                   " bytes");
  }
  return std::optional<size_t>(length);
}

HttpReply Infer(InferenceService* service, const HttpRequest& req) {
  auto header_length = JsonHeaderLength(req);
  if (!header_length.ok()) return ErrorReply(header_length.status());
  auto request = DecodeInferRequest(req.body, *header_length);
  if (!request.ok()) return ErrorReply(request.status());
  const std::vector<RequestedOutput> requested = request->outputs;
  const bool binary_data_output = request->binary_data_output;
  auto response = service->Infer(req.Capture(0), req.Capture(1), std::move(*request));
  if (!response.ok()) return ErrorReply(response.status());
  auto encoded = EncodeInferResponse(response->model_name, response->model_version, response->id,
                                     response->outputs, requested, binary_data_output);
  if (!encoded.ok()) return ErrorReply(encoded.status());
  HttpReply reply;
  reply.body = std::move(encoded->body);
  if (encoded->json_header_length) {
    reply.content_type = "application/octet-stream";
    reply.headers.emplace_back(kHeaderLength, std::to_string(*encoded->json_header_length));
  }
  return reply;
}

}  // namespace

std::vector<Route> InferRoutes(InferenceService* service) {
  return {{"POST", std::string(kModelPath) + "/infer",
           [service](const HttpRequest& r) { return Infer(service, r); }}};
}

}  // namespace modelgrid::server
