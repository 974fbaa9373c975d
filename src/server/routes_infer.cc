// POST /v2/models/{m}[/versions/{v}]/infer: decode (JSON or Triton's binary
// data extension), run the selected task on the grid, encode the outputs.
#include <charconv>
#include <string>

#include "modelgrid/kserve/infer_codec.h"
#include "server/infer_call.h"
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

HttpReply Infer(Grid* grid, const HttpRequest& req) {
  const std::string& model = req.Capture(0);
  auto status = FindModelVersion(*grid, model, req.Capture(1));
  if (!status.ok()) return ErrorReply(status.status());
  auto header_length = JsonHeaderLength(req);
  if (!header_length.ok()) return ErrorReply(header_length.status());
  auto request = DecodeInferRequest(req.body, *header_length);
  if (!request.ok()) return ErrorReply(request.status());

  const std::vector<RequestedOutput> requested = request->outputs;
  const bool binary_data_output = request->binary_data_output;
  const std::string id = request->id;
  auto call = MakeInferCall(std::move(*request));
  if (!call.ok()) return ErrorReply(call.status());
  auto outputs = grid->Infer(model, std::move(*call));
  if (!outputs.ok()) return ErrorReply(outputs.status());

  auto encoded =
      EncodeInferResponse(model, status->version, id, *outputs, requested, binary_data_output);
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

std::vector<Route> InferRoutes(Grid* grid) {
  return {{"POST", std::string(kModelPath) + "/infer",
           [grid](const HttpRequest& r) { return Infer(grid, r); }}};
}

}  // namespace modelgrid::server
