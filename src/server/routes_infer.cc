// POST /v2/models/{m}[/versions/{v}]/infer: decode (JSON or Triton's binary
// data extension), run it through the InferenceService, encode the outputs.
// An asynchronous route (routes.h): no server thread waits for the model.
#include <charconv>
#include <memory>
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

// Requests whose JSON (the whole body, or the part before the binary data)
// is at most this long are decoded and queued on the event thread that read
// them: bounded work, cheaper than a hand-off to the handler pool. Longer
// JSON is decoded on the pool.
constexpr size_t kInlineJsonBytes = 16 << 10;
// Answers whose output tensors hold at most this many bytes are encoded on
// the thread that finished the model's batch (the grid's); larger ones on
// the handler pool, so that a model's next batch never waits for a large
// JSON encoding.
constexpr uint64_t kInlineEncodeBytes = 64 << 10;

bool StartInline(const HttpRequest& req) {
  auto header_length = JsonHeaderLength(req);
  if (!header_length.ok()) return true;  // answered at once
  return header_length->value_or(req.body.size()) <= kInlineJsonBytes;
}

HttpReply EncodeReply(const InferResponse& response, const std::vector<RequestedOutput>& requested,
                      bool binary_data_output) {
  auto encoded = EncodeInferResponse(response.model_name, response.model_version, response.id,
                                     response.outputs, requested, binary_data_output);
  if (!encoded.ok()) return ErrorReply(encoded.status());
  HttpReply reply;
  reply.body = std::move(encoded->body);
  if (encoded->json_header_length) {
    reply.content_type = "application/octet-stream";
    reply.headers.emplace_back(kHeaderLength, std::to_string(*encoded->json_header_length));
  }
  return reply;
}

// Decodes the request and queues it (InferenceService::InferAsync); the
// answer is encoded when the model has run.
void Infer(InferenceService* service, HttpRequest& req, ReplySink sink) {
  auto header_length = JsonHeaderLength(req);
  if (!header_length.ok()) return sink.send(ErrorReply(header_length.status()));
  // Large binary inputs stay in the body (no copy) until the worker copies
  // them into its arena.
  auto body = std::make_shared<const std::string>(std::move(req.body));
  DecodeOptions options;
  options.body_owner = body;
  auto request = DecodeInferRequest(*body, *header_length, options);
  if (!request.ok()) return sink.send(ErrorReply(request.status()));
  std::vector<RequestedOutput> requested = request->outputs;
  const bool binary_data_output = request->binary_data_output;
  service->InferAsync(
      req.Capture(0), req.Capture(1), std::move(*request),
      [sink = std::move(sink), requested = std::move(requested),
       binary_data_output](Result<InferResponse> response) mutable {
        if (!response.ok()) return sink.send(ErrorReply(response.status()));
        uint64_t bytes = 0;
        for (const InferTensor& t : response->outputs) bytes += t.data.size();
        if (bytes <= kInlineEncodeBytes) {
          return sink.send(EncodeReply(*response, requested, binary_data_output));
        }
        sink.build([response = std::make_shared<InferResponse>(std::move(*response)),
                    requested = std::move(requested), binary_data_output] {
          return EncodeReply(*response, requested, binary_data_output);
        });
      });
}

}  // namespace

std::vector<Route> InferRoutes(InferenceService* service) {
  Route infer;
  infer.method = "POST";
  infer.pattern = std::string(kModelPath) + "/infer";
  infer.async = [service](HttpRequest& r, ReplySink sink) { Infer(service, r, std::move(sink)); };
  infer.start_inline = StartInline;
  return {std::move(infer)};
}

}  // namespace modelgrid::server
